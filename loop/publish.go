package loop

import (
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/codec"
)

// Publishing. Publish and Broadcast encode a frame once into a
// sharedFrame and hand it to each loop with subscribers, one command per
// loop (fanOut); each loop writes it to its own subscribers (publishRun),
// coalescing the publishes queued together. Subscriptions are topics.go.

// sharedFrame is a pre-encoded frame shared by the loops of one publish.
// The last loop to finish with it returns it to the pool.
type sharedFrame struct {
	buf  *buffer
	refs atomic.Int32
	mem  *memBudget // the frame is charged to it (budget.go); nil if not
	// z is the frame compressed once for every deflating subscriber
	// (deflate.go), nil if not; plainLen and zLen are its payload sizes.
	z              *buffer
	plainLen, zLen int32
	// env is its resume-envelope encoding, made by the first loop with an
	// envelope subscriber (session_frames.go); f holds one reference.
	env atomic.Pointer[sharedFrame]
	// id is the cluster's number of the message (PublishID), zero if it
	// has none; a session that moved between nodes skips those it has
	// (session_move.go).
	id MsgID
}

var sharedFrames = sync.Pool{New: func() any { return new(sharedFrame) }}

func (f *sharedFrame) release() {
	if f.refs.Add(-1) == 0 {
		if e := f.env.Swap(nil); e != nil {
			e.release()
		}
		if f.mem != nil {
			f.mem.total.Add(-f.cost())
			f.mem = nil
		}
		putBuffer(f.buf)
		putBuffer(f.z)
		f.buf, f.z, f.id = nil, nil, MsgID{}
		sharedFrames.Put(f)
	}
}

// Publish sends one message to every subscriber of topic name and returns
// how many subscribers there were (see Subscribers). The frame is encoded once; each
// subscriber whose outbound queue is full is handled by the slow-consumer
// policy and counted in Stats.DeliveriesDropped. Messages published from
// one goroutine reach each subscriber in order. With the memory budget
// exhausted, Publish returns ErrMemoryBudget, and a subscriber whose
// socket would not take the frame at once does not get it (counted in
// Stats.DeliveriesDropped and MemoryRefusals).
func (s *Server) Publish(name string, op OpCode, data []byte) (int, error) {
	return s.PublishID(MsgID{}, name, op, data)
}

// PublishID is Publish for a message the cluster numbered id
// (session_move.go).
func (s *Server) PublishID(id MsgID, name string, op OpCode, data []byte) (int, error) {
	if err := checkSend(op, data); err != nil {
		return 0, err
	}
	s.counters.publishes.Add(1)
	// The read lock is held while the commands are queued, so a
	// concurrent unsubscribe cannot remove the topic's loops mid-way.
	s.topics.mu.RLock()
	defer s.topics.mu.RUnlock()
	t := s.topics.topics[name]
	if t == nil {
		return 0, nil
	}
	var buf [64]*eventLoop
	targets := buf[:0]
	loops := s.eventLoops()
	for idx, n := range t.loops {
		if n > 0 && idx < len(loops) {
			targets = append(targets, loops[idx])
		}
	}
	return t.subs, s.fanOut(id, op, data, t, targets)
}

// Subscribers returns the number of connections subscribed to topic name,
// as far as their loops have processed Subscribe and Unsubscribe.
func (s *Server) Subscribers(name string) int {
	s.topics.mu.RLock()
	defer s.topics.mu.RUnlock()
	if t := s.topics.topics[name]; t != nil {
		return t.subs
	}
	return 0
}

// Broadcast sends one message to every open connection and returns how many
// were open when it was called.
func (s *Server) Broadcast(op OpCode, data []byte) (int, error) {
	return s.BroadcastID(MsgID{}, op, data)
}

// BroadcastID is Broadcast for a message the cluster numbered id.
func (s *Server) BroadcastID(id MsgID, op OpCode, data []byte) (int, error) {
	if err := checkSend(op, data); err != nil {
		return 0, err
	}
	s.counters.publishes.Add(1)
	var buf [64]*eventLoop
	targets := buf[:0]
	var n int64
	for _, l := range s.eventLoops() {
		if open := l.stats.connsOpen.Load(); open > 0 {
			n += open
			targets = append(targets, l)
		}
	}
	return int(n), s.fanOut(id, op, data, nil, targets)
}

// fanOut encodes the frame once and hands it to each target loop; t nil
// means every open connection of the loop.
func (s *Server) fanOut(id MsgID, op OpCode, data []byte, t *topic, targets []*eventLoop) error {
	if len(targets) == 0 {
		return nil
	}
	f := sharedFrames.Get().(*sharedFrame)
	f.buf = getBuffer(codec.MaxHeaderSize + len(data))
	f.buf.b = codec.AppendFrame(f.buf.b, op, true, data)
	f.id = id
	s.compressShared(f, op, data, targets)
	if !s.chargeFrame(f) {
		putBuffer(f.buf)
		putBuffer(f.z)
		f.buf, f.z, f.id = nil, nil, MsgID{}
		sharedFrames.Put(f)
		return ErrMemoryBudget
	}
	f.refs.Store(int32(len(targets)) + 1) // +1 held until all are queued
	size := int64(len(f.buf.b))
	s.pace.unwritten.Add(size * int64(len(targets))) // until each loop wrote it (pacing.go)
	var err error
	for _, l := range targets {
		if !l.enqueue(command{kind: cmdPublish, topic: t, shared: f}) {
			s.pace.unwritten.Add(-size)
			f.release()
			err = ErrServerClosed
		}
	}
	f.release()
	return err
}

// maxCoalesce bounds how many queued publishes to one topic a loop writes
// to each subscriber with a single writev.
const maxCoalesce = 64

// publishRun runs on the loop for a run of consecutive cmdPublish commands
// to the same topic (t nil: broadcast): each subscriber gets all their
// frames in one writev, so a burst of publishes costs one system call per
// subscriber rather than one per message.
func (l *eventLoop) publishRun(cmds []command) {
	t := cmds[0].topic
	l.sess.pub = cmds // for envelope subscribers (session_frames.go)
	iov := l.iov[:0]
	var size int64
	for i := range cmds {
		iov = append(iov, cmds[i].shared.buf.b)
		size += int64(len(cmds[i].shared.buf.b))
	}
	defer l.srv.pace.unwritten.Add(-size) // written, or refused (pacing.go)
	hasZ := l.zRun(cmds)                  // compressed frames (deflate.go)
	if t == nil {
		for c := range l.conns {
			l.deliverShared(c, l.framesFor(c, iov, hasZ, cmds))
		}
	} else if lt := l.topics[t]; lt != nil {
		for c := range lt.subs {
			l.deliverShared(c, l.framesFor(c, iov, hasZ, cmds))
		}
	}
	l.zRunDone()
	clear(iov)
	l.iov = iov[:0]
	l.sess.pub = nil
	for i := range cmds {
		cmds[i].shared.release()
	}
}

// deliverShared writes the frames of a publish run to c, those that fit
// its outbound queue; the others go to the slow-consumer policy.
func (l *eventLoop) deliverShared(c *Conn, frames [][]byte) {
	if ss := c.session(); ss != nil {
		l.deliverSession(c, ss, frames) // session_frames.go
		return
	}
	if c.state != stateOpen {
		return
	}
	total := 0
	for _, f := range frames {
		total += len(f)
	}
	if l.srv.mem != nil && c.gp != nil && c.gc().OutboundBuffered() > 0 && !l.mayTake(int64(total)) {
		// gnet would only buffer them (its buffer is not empty), and the
		// memory budget cannot take that: dropped and counted.
		l.stats.deliveriesDropped.Add(int64(len(frames)))
		l.stats.budgetRefused[budgetDelivery].Add(int64(len(frames)))
		l.askShed()
		return
	}
	if !l.fits(c, total) {
		// Deliver what fits, one frame at a time, then refuse the rest.
		for i, f := range frames {
			if !l.fits(c, len(f)) {
				l.stats.deliveriesDropped.Add(int64(len(frames) - i))
				l.refusedOnLoop(c)
				return
			}
			if !l.writeDelivered(c, frames[i:i+1]) {
				return
			}
		}
		return
	}
	l.writeDelivered(c, frames)
}

// writeDelivered writes frames to c with one writev (coalesce.go) and
// counts them.
func (l *eventLoop) writeDelivered(c *Conn, frames [][]byte) bool {
	// Summed first: on success gnet has written or buffered all of them,
	// and it may reslice frames as it writes.
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if !l.writev(c, frames) {
		return false
	}
	l.stats.deliveries.Add(int64(len(frames)))
	l.stats.messagesOut.Add(int64(len(frames)))
	c.countOut(int64(len(frames)), n, l.srv.now())
	l.wrote(c)
	return true
}
