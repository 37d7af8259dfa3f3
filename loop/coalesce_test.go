package loop

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// tripleHandler answers each message with three, on the loop.
type tripleHandler struct{ onLoop chan bool }

func (tripleHandler) OnOpen(*Conn)         {}
func (tripleHandler) OnClose(*Conn, error) {}
func (tripleHandler) LoopSafe() bool       { return true }
func (h tripleHandler) OnMessage(c *Conn, op OpCode, b []byte) {
	select {
	case h.onLoop <- c.loop.busy.Load(): // inside the loop's OnTraffic
	default:
	}
	for i := range 3 {
		_ = c.Send(op, fmt.Appendf(nil, "%s-%d", b, i))
	}
}

// A LoopSafe handler runs on the loop, and the frames it queues for one
// connection in one loop pass leave in one write.
func TestCoalesceRepliesOfOnePass(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = -1
	h := tripleHandler{onLoop: make(chan bool, 1)}
	s := newTestServer(t, cfg, h)
	if !s.inline {
		t.Fatal("a LoopSafe handler is not run inline")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	waitUntil(t, func() bool { return s.Stats().WSConns == 1 })
	l := s.eventLoops()[0]
	writes := func() int64 {
		ch := make(chan int64)
		l.enqueue(command{kind: cmdFunc, fn: func() { ch <- l.writeCalls }})
		return <-ch
	}
	before := writes()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("m")); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range 3 {
		_, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m-%d", i); string(got) != want {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	if n := writes() - before; n != 1 {
		t.Fatalf("%d writes for three frames queued in one pass, want 1", n)
	}
	if !<-h.onLoop {
		t.Fatal("OnMessage of a LoopSafe handler did not run on the loop")
	}
	if st := s.Stats(); st.MessagesOut != 3 || st.PoolRunning != 0 {
		t.Fatalf("messages out %d, pool running %d", st.MessagesOut, st.PoolRunning)
	}
}

// connRecorder keeps the Conns the server opens.
type connRecorder struct{ conns chan *Conn }

func (h connRecorder) OnOpen(c *Conn)                { h.conns <- c }
func (connRecorder) OnMessage(*Conn, OpCode, []byte) {}
func (connRecorder) OnClose(*Conn, error)            {}

// Sends to two connections queued interleaved in one loop pass (from
// another goroutine, while the loop is busy) leave in one write per
// connection, each connection's frames in order; a close queued after a
// connection's frames stays after them.
func TestCoalesceInterleavedSends(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = -1
	h := connRecorder{conns: make(chan *Conn, 2)}
	s := newTestServer(t, cfg, h)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	var clients [2]*websocket.Conn
	var conns [2]*Conn
	for i := range clients {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		clients[i] = ws
		conns[i] = <-h.conns
	}
	l := conns[0].loop
	if conns[1].loop != l {
		t.Fatal("one loop expected")
	}
	hold, held := make(chan struct{}), make(chan int64)
	l.enqueue(command{kind: cmdFunc, fn: func() { held <- l.writeCalls; <-hold }})
	before := <-held
	// The loop is held: everything below lands in one batch.
	for i := range 3 {
		for k, c := range conns {
			if err := c.Send(OpText, fmt.Appendf(nil, "c%d-%d", k, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := conns[1].Close(1000, "done"); err != nil {
		t.Fatal(err)
	}
	close(hold)
	for k, ws := range clients {
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		for i := range 3 {
			_, got, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("client %d message %d: %v", k, i, err)
			}
			if want := fmt.Sprintf("c%d-%d", k, i); string(got) != want {
				t.Fatalf("client %d: %q, want %q", k, got, want)
			}
		}
	}
	if _, _, err := clients[1].ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Fatalf("after its frames, client 1 read %v, want close 1000", err)
	}
	writes := make(chan int64)
	l.enqueue(command{kind: cmdFunc, fn: func() { writes <- l.writeCalls }})
	// Two runs of three frames, and client 1's close frame.
	if n := <-writes - before; n != 3 {
		t.Fatalf("%d writes, want 3 (one per connection's frames, one close)", n)
	}
}
