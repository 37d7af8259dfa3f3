package loop

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Within the pacing window BroadcastPaced does not wait for the loops:
// broadcasts made while the loop is busy queue up in its mailbox, and
// each subscriber gets them in order with one writev. Past the window it
// waits until the loop has written them.
func TestBroadcastPacedCoalesces(t *testing.T) {
	const subs, frames, size = 20, 8, 256
	cfg := testConfig()
	cfg.PingInterval = -1
	cfg.MaxOutbound = 64 << 10 // a window of 16 KiB: 8 frames of 256 B fit
	h := connRecorder{conns: make(chan *Conn, subs)}
	s := newTestServer(t, cfg, h)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	var clients []*websocket.Conn
	var l *eventLoop
	for range subs {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		clients = append(clients, ws)
		l = (<-h.conns).loop
	}
	if len(s.eventLoops()) != 1 {
		t.Fatal("one loop expected")
	}
	waitUntil(t, func() bool { return s.Stats().WSConns == subs })
	payload := func(i int) []byte { return fmt.Appendf(make([]byte, 0, size), "%0*d", size, i) }

	hold, held := make(chan struct{}), make(chan int64)
	l.enqueue(command{kind: cmdFunc, fn: func() { held <- l.writeCalls; <-hold }})
	before := <-held
	done := make(chan error, 1)
	go func() {
		for i := range frames {
			if _, err := s.BroadcastPaced(OpBinary, payload(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(hold)
		t.Fatal("BroadcastPaced waited for a held loop within its window")
	}
	if n, w := s.pace.unwritten.Load(), int64(frames*(size+4)); n != w {
		t.Fatalf("%d bytes unwritten, want %d", n, w)
	}
	close(hold)
	for k, ws := range clients {
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		for i := range frames {
			_, got, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("subscriber %d message %d: %v", k, i, err)
			}
			if string(got) != string(payload(i)) {
				t.Fatalf("subscriber %d message %d: %.20q..., want %d", k, i, got, i)
			}
		}
	}
	writes := make(chan int64)
	l.enqueue(command{kind: cmdFunc, fn: func() { writes <- l.writeCalls }})
	if n := <-writes - before; n != subs {
		t.Fatalf("%d writes for %d broadcasts to %d subscribers, want one each", n, frames, subs)
	}
	if n := s.pace.unwritten.Load(); n != 0 {
		t.Fatalf("%d bytes still counted unwritten", n)
	}

	// Past the window a broadcast waits for the held loop: 15 frames of
	// 1 KiB (1,028 B framed) fit in its 16 KiB, the 16th does not.
	hold = make(chan struct{})
	l.enqueue(command{kind: cmdFunc, fn: func() { held <- 0; <-hold }})
	<-held
	big := make([]byte, 1024)
	returned := make(chan int, 40)
	go func() {
		defer close(returned)
		for i := range 40 {
			if _, err := s.BroadcastPaced(OpBinary, big); err != nil {
				return
			}
			returned <- i
		}
	}()
	waitUntil(t, func() bool { return s.pace.unwritten.Load() == 16*1028 })
	time.Sleep(50 * time.Millisecond)
	if got := len(returned); got != 15 {
		t.Fatalf("%d broadcasts returned with the loop held, want the 15 within the window", got)
	}
	close(hold)
	n := 0
	for range returned {
		n++
	}
	if n != 40 {
		t.Fatalf("%d of 40 broadcasts returned", n)
	}
	for k, ws := range clients {
		for i := range 40 {
			if _, got, err := ws.ReadMessage(); err != nil || len(got) != 1024 {
				t.Fatalf("subscriber %d, 1 KiB message %d: %d bytes, %v", k, i, len(got), err)
			}
		}
	}
}
