package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Interest: the node subscribes to a topic's subject while the gateway has
// a subscriber to it, and to a user's while the user has a connection.
//
// The gateway reports changes from event loops and under its own locks
// (loop.Observer), so mark only records the name and wakes the
// reconciler, a goroutine of the node's own, which reads the gateway's
// state back (HasTopic, HasUser) and makes the subscriptions agree with
// it. Level-triggered, it cannot be confused by the order of a burst of
// changes: it acts on the state, not the events. After each batch it
// flushes, so that the NATS server has the batch's subscriptions before
// Stats.Pending counts them applied.
//
// While NATS is unreachable NATS's client keeps the subscriptions and
// sends them again when it reconnects; the reconciler goes on recording
// them meanwhile.

type ikey struct {
	kind byte // kindTopic or kindUser
	name string
}

type interest struct {
	n    *Node
	wake chan struct{}

	mu      sync.Mutex
	dirty   map[ikey]struct{}
	failed  map[ikey]struct{} // NATS refused: retried at the next heartbeat
	pending atomic.Int64      // marked, not yet applied and flushed
	marks   atomic.Uint64     // marks made (under mu)
	applied atomic.Uint64     // of them, applied and flushed (SyncInterest)

	smu  sync.Mutex // subs: written by the reconciler, read by stats
	subs map[ikey]*nats.Subscription
}

func (in *interest) init(n *Node) {
	in.n = n
	in.wake = make(chan struct{}, 1)
	in.dirty = make(map[ikey]struct{})
	in.failed = make(map[ikey]struct{})
	in.subs = make(map[ikey]*nats.Subscription)
}

// mark records that interest in name may have changed. It never blocks.
func (in *interest) mark(kind byte, name string) {
	k := ikey{kind, name}
	in.mu.Lock()
	if _, ok := in.dirty[k]; !ok {
		in.dirty[k] = struct{}{}
		in.pending.Add(1)
	}
	in.marks.Add(1)
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// retry marks again what NATS refused.
func (in *interest) retry() {
	in.mu.Lock()
	failed := in.failed
	in.failed = make(map[ikey]struct{})
	in.mu.Unlock()
	for k := range failed {
		in.mark(k.kind, k.name)
	}
}

func (in *interest) run() {
	defer in.n.wg.Done()
	for {
		select {
		case <-in.n.quit:
			return
		case <-in.wake:
		}
		in.apply()
	}
}

// apply makes the subscriptions agree with the gateway's state for every
// marked name.
func (in *interest) apply() {
	n := in.n
	in.mu.Lock()
	batch := in.dirty
	in.dirty = make(map[ikey]struct{})
	gen := in.marks.Load()
	in.mu.Unlock()
	defer in.applied.Store(gen)
	if len(batch) == 0 {
		return
	}
	for k := range batch {
		var want bool
		if k.kind == kindTopic {
			want = n.local.HasTopic(k.name)
		} else {
			want = n.local.HasUser(k.name)
		}
		in.smu.Lock()
		sub := in.subs[k]
		in.smu.Unlock()
		switch {
		case want && sub == nil:
			subject := n.subj.topic(k.name)
			if k.kind == kindUser {
				subject = n.subj.user(k.name)
			}
			s, err := n.nc.ChanSubscribe(subject, n.in)
			if err != nil {
				in.refused(k, err)
				continue
			}
			in.smu.Lock()
			in.subs[k] = s
			in.smu.Unlock()
		case !want && sub != nil:
			in.smu.Lock()
			delete(in.subs, k)
			in.smu.Unlock()
			n.slow.retire(sub, &n.ctr.retired)
			if err := sub.Unsubscribe(); err != nil {
				in.refused(ikey{}, err)
			}
		}
	}
	if n.nc.IsConnected() {
		_ = n.nc.FlushTimeout(n.timeout)
	}
	in.pending.Add(-int64(len(batch)))
}

func (in *interest) refused(k ikey, err error) {
	in.n.ctr.subErrors.Add(1)
	in.n.log.Warn("cluster: NATS refused a subscription change; retrying", "name", k.name, "err", err)
	if k.name != "" {
		in.mu.Lock()
		in.failed[k] = struct{}{}
		in.mu.Unlock()
	}
}

// SyncInterest waits until the node's subscriptions agree with every
// interest change the gateway reported before the call (loop.Observer)
// and the NATS server has them (the reconciler flushes each batch): from
// then on a message published to those names reaches this node. With NATS
// servers in a cluster of their own, a subscription reaches the other
// servers a little later (their routes carry it). It returns ctx's error,
// or ErrUnavailable when NATS is unreachable.
func (n *Node) SyncInterest(ctx context.Context) error {
	want := n.interest.marks.Load()
	if n.interest.applied.Load() < want {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for n.interest.applied.Load() < want {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-n.quit:
				return ErrClosed
			case <-t.C:
			}
		}
	}
	if !n.nc.IsConnected() {
		return ErrUnavailable
	}
	return nil
}

// stats returns the subscriptions, the pending changes and the messages
// the subscriptions dropped.
func (in *interest) stats() (subs, pending int, dropped int64) {
	in.smu.Lock()
	subs = len(in.subs)
	in.smu.Unlock()
	return subs, int(in.pending.Load()), in.n.slow.dropped()
}

// slowSubs are the subscriptions NATS's client reported as slow
// consumers: the only ones that can have dropped messages, so Stats sums
// their counts and no others.
type slowSubs struct {
	mu   sync.Mutex
	subs map[*nats.Subscription]struct{}
}

func (s *slowSubs) add(sub *nats.Subscription) {
	s.mu.Lock()
	if s.subs == nil {
		s.subs = make(map[*nats.Subscription]struct{})
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
}

// retire moves the count of sub, about to be unsubscribed, to total.
func (s *slowSubs) retire(sub *nats.Subscription, total *atomic.Int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		if d, err := sub.Dropped(); err == nil {
			total.Add(int64(d))
		}
		delete(s.subs, sub)
	}
}

func (s *slowSubs) dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for sub := range s.subs {
		if d, err := sub.Dropped(); err == nil {
			n += int64(d)
		}
	}
	return n
}
