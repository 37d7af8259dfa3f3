package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/loop"
)

// Sessions that move between nodes (docs/cluster.md, "Sessions that
// move"; loop/session_move.go has the steps). Every message of a user,
// topic or broadcast that this node hands to its connections passes
// through here, under moves.mu's read lock, with its cluster number:
//
//   - seen records, by origin, the highest number handed on (the node's
//     own messages are numbered under the same lock, so the node's last
//     number is its own high-water mark). A session leaving for another
//     node is released under the write lock: the floor it takes along is
//     then exact, no numbered message being half-way to a connection.
//   - merges hold, for each session on its way here, the messages for
//     its user, its topics and everyone, numbered, until the session is
//     in place on its loop (Attach, under the write lock, so that nothing
//     is both held and delivered, or neither).
//   - unsent has the numbers of this node's own messages delivered here
//     but not yet handed to NATS. A message numbered before a merge began
//     is not held for it, so the node it comes from must have it by the
//     release: fetchSession waits for those to be handed to NATS before
//     it asks for the release, which NATS then carries behind them.
//
// Without a cluster none of this runs: messages carry no number.

// maxOrigins bounds seen. Past it seen starts again empty: a move then
// takes a lower floor, which can only make the new node keep a copy the
// old one had (a duplicate), never drop one.
const maxOrigins = 4096

type moves struct {
	mu   sync.RWMutex
	seen map[uint64]uint64 // written by the cluster's dispatch goroutine only, under mu.RLock
	// merges by token; written under mu, read under mu.RLock.
	merges map[string]*merge
	// drop counts held messages lost: over a merge's bound, or held for
	// an import that never came (Stats.Sessions.MoveDropped).
	drop func(n int64)

	unsentMu sync.Mutex
	unsent   map[uint64]struct{} // Seq of own messages not yet published
	wake     []chan struct{}     // closed at the next sent
}

// merge is a session on its way to this node.
type merge struct {
	token, user string
	topics      map[string]struct{}
	limit       int64
	started     time.Time

	mu      sync.Mutex // held, bytes, over: appended to under moves.mu.RLock
	held    []loop.HeldMessage
	bytes   int64
	over    int64 // messages not held: over limit
	stopped bool
}

func (m *moves) init(drop func(n int64)) {
	m.drop = drop
	m.seen = make(map[uint64]uint64)
	m.merges = make(map[string]*merge)
	m.unsent = make(map[uint64]struct{})
}

// numbered records an own message, numbered seq and delivered here, that
// the caller is about to hand to NATS. The caller holds mu.RLock, so a
// merge begun after it holds the message, and one begun before it finds
// it in unsent.
func (m *moves) numbered(seq uint64) {
	m.unsentMu.Lock()
	m.unsent[seq] = struct{}{}
	m.unsentMu.Unlock()
}

// sent records that the own message numbered seq was handed to NATS, or
// will never be.
func (m *moves) sent(seq uint64) {
	m.unsentMu.Lock()
	delete(m.unsent, seq)
	wake := m.wake
	m.wake = nil
	m.unsentMu.Unlock()
	for _, c := range wake {
		close(c)
	}
}

// published waits until every own message numbered upTo or lower has
// been handed to NATS, or ctx ends.
func (m *moves) published(ctx context.Context, upTo uint64) error {
	for {
		m.unsentMu.Lock()
		busy := false
		for s := range m.unsent {
			if s <= upTo {
				busy = true
				break
			}
		}
		if !busy {
			m.unsentMu.Unlock()
			return nil
		}
		c := make(chan struct{})
		m.wake = append(m.wake, c)
		m.unsentMu.Unlock()
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// saw records that the message numbered id was handed to this node's
// connections. The caller holds mu.RLock and is the dispatch goroutine.
func (m *moves) saw(id cluster.MsgID) {
	if id.Origin == 0 {
		return
	}
	if len(m.seen) >= maxOrigins {
		if _, ok := m.seen[id.Origin]; !ok {
			clear(m.seen)
		}
	}
	m.seen[id.Origin] = id.Seq // in order for each origin
}

// hold keeps a copy of a message for every session on its way here that
// it is for: kind 'u' user name, 't' topic name, 'a' everyone. The caller
// holds mu.RLock.
func (m *moves) hold(kind byte, name string, id cluster.MsgID, op OpCode, data []byte) {
	if len(m.merges) == 0 {
		return
	}
	for _, g := range m.merges {
		switch kind {
		case 'u':
			if g.user != name {
				continue
			}
		case 't':
			if _, ok := g.topics[name]; !ok {
				continue
			}
		}
		g.mu.Lock()
		if !g.stopped {
			if int64(len(data)) > g.limit-g.bytes {
				g.over++
			} else {
				g.bytes += int64(len(data))
				g.held = append(g.held, loop.HeldMessage{ID: loop.MsgID(id), Op: op, Data: append([]byte(nil), data...)})
			}
		}
		g.mu.Unlock()
	}
}

// wants reports whether a session on its way here needs the user's or the
// topic's messages (the interest reconciler asks).
func (m *moves) wants(kind byte, name string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, g := range m.merges {
		if kind == 'u' && g.user == name {
			return true
		}
		if _, ok := g.topics[name]; kind == 't' && ok {
			return true
		}
	}
	return false
}

// begin starts holding for a session on its way here.
func (m *moves) begin(token, user string, topics []string, limit int64) *merge {
	g := &merge{token: token, user: user, topics: make(map[string]struct{}, len(topics)), limit: limit, started: time.Now()}
	for _, t := range topics {
		g.topics[t] = struct{}{}
	}
	m.mu.Lock()
	if old := m.merges[token]; old != nil {
		m.stopLocked(old)
	}
	m.merges[token] = g
	m.mu.Unlock()
	return g
}

// older returns the merges begun before t.
func (m *moves) older(t time.Time) []*merge {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*merge
	for _, g := range m.merges {
		if g.started.Before(t) {
			out = append(out, g)
		}
	}
	return out
}

// stopLocked stops holding for g and returns what it held (nil if g had stopped
// already). The caller holds mu.
func (m *moves) stopLocked(g *merge) (held []loop.HeldMessage, over int64) {
	if m.merges[g.token] == g {
		delete(m.merges, g.token)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil, 0
	}
	g.stopped = true
	held, over = g.held, g.over
	g.held = nil
	return held, over
}

// abandon stops holding for g, whose import did not happen, and counts
// what it held as dropped.
func (m *moves) abandon(g *merge) int {
	m.mu.Lock()
	held, over := m.stopLocked(g)
	m.mu.Unlock()
	n := int64(len(held)) + over
	if n > 0 {
		m.drop(n)
	}
	return int(n)
}

// floorLocked returns, by origin, the highest number this node has handed to
// its connections, its own messages included. The caller holds mu.
func (m *moves) floorLocked(self cluster.MsgID) map[uint64]uint64 {
	f := make(map[uint64]uint64, len(m.seen)+1)
	for o, s := range m.seen {
		f[o] = s
	}
	f[self.Origin] = self.Seq
	return f
}
