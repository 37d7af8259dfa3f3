package gateway

import "github.com/wsgate/wsgate/loop"

// Echo is a Handler that sends every message back with its opcode: the
// default application of cmd/gateway.
type Echo struct{}

// OnOpen implements Handler.
func (Echo) OnOpen(*Conn) {}

// OnMessage implements Handler.
func (Echo) OnMessage(c *Conn, op OpCode, data []byte) { _ = c.Send(op, data) }

// OnClose implements Handler.
func (Echo) OnClose(*Conn, error) {}

// LoopSafe implements LoopSafe: Echo only calls Send, so its events run on
// the event loops, with no hand-off to the worker pool.
func (Echo) LoopSafe() bool { return true }

// LoopSafe is an optional interface of a Handler whose methods never block
// (they only compute and call Conn.Send or Conn.Close): returning true runs
// its events on the event loops instead of the worker pool, which saves the
// hand-off and a wakeup per message. A handler that blocks while claiming
// this stalls every connection of its loop.
type LoopSafe = loop.LoopSafe

// Broadcast is a Handler that sends every message to every connected
// client, the sender included, as the chat examples of Node's ws do: in a
// cluster, every node's clients. Set Server before the server starts.
//
// It goes at the pace of the slowest reader: a message waits while more
// than a quarter of MaxOutbound of broadcasts is not yet written, or a
// client's outbound queue is over half of MaxOutbound, so a client that
// publishes faster than the others read is slowed (its input pauses, then
// TCP), not cut, and a reading client gets everything. What it publishes
// within that window queues up, and each client gets it in one write.
// A client whose queue stays that full for a second has stopped reading:
// it paces no one, and SlowPolicy applies to it.
type Broadcast struct {
	Server *Server
}

// OnOpen implements Handler.
func (*Broadcast) OnOpen(*Conn) {}

// OnMessage implements Handler.
func (b *Broadcast) OnMessage(_ *Conn, op OpCode, data []byte) {
	s := b.Server
	if s.cluster == nil {
		_, _ = s.srv.BroadcastPaced(op, data)
		return
	}
	// In a cluster every node's clients get it, numbered (a session that
	// moves between nodes gets it once: moves.go); the pace is that of
	// this node's readers.
	if n, _ := s.Broadcast(op, data); n > 0 {
		s.srv.Pace()
	}
}

// OnClose implements Handler.
func (*Broadcast) OnClose(*Conn, error) {}

// HandlerFuncs adapts functions to Handler; nil fields do nothing.
type HandlerFuncs struct {
	Open    func(c *Conn)
	Message func(c *Conn, op OpCode, data []byte)
	Close   func(c *Conn, err error)
}

// OnOpen implements Handler.
func (h HandlerFuncs) OnOpen(c *Conn) {
	if h.Open != nil {
		h.Open(c)
	}
}

// OnMessage implements Handler.
func (h HandlerFuncs) OnMessage(c *Conn, op OpCode, data []byte) {
	if h.Message != nil {
		h.Message(c, op, data)
	}
}

// OnClose implements Handler.
func (h HandlerFuncs) OnClose(c *Conn, err error) {
	if h.Close != nil {
		h.Close(c, err)
	}
}
