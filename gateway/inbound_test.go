package gateway_test

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// Inbound flow control (loop/inbound.go): a client that outruns its
// handler is paused and slowed by TCP, never closed, and everything it
// sent reaches the handler in order.

// peakHeld samples Stats.InboundBytesMax (a gauge over the last tick)
// until the returned function is called, which returns the most seen.
func peakHeld(srv *gateway.Server) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if v := srv.Stats().InboundBytesMax; v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

// burst returns n masked text frames "m<i>", concatenated for one write.
func burst(n int) []byte {
	var b []byte
	for i := range n {
		b = codec.AppendFrameMasked(b, ws.OpText, true, fmt.Appendf(nil, "m%d", i), codec.NewMaskKey())
	}
	return b
}

// sendBurst dials with gorilla, then writes frames in one write on its
// socket: gorilla writes one message per call.
func sendBurst(t *testing.T, srv *gateway.Server, frames []byte) *gorilla.Conn {
	t.Helper()
	c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		c.NetConn().SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.NetConn().Write(frames); err != nil {
			t.Errorf("burst write: %v", err)
		}
	}()
	return c
}

// expectReplies reads n replies "m<i>" in order with prefix.
func expectReplies(t *testing.T, c *gorilla.Conn, n int, prefix string) {
	t.Helper()
	for i := range n {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, n, err)
		}
		if want := fmt.Sprintf("%sm%d", prefix, i); string(msg) != want {
			t.Fatalf("reply %d: %q, want %q", i, msg, want)
		}
	}
}

// A phone back online flushes its queue: 300 messages in one write,
// through a backend that takes 3 ms per message. Every reply arrives, in
// order, and the connection stays open.
func TestBurstThroughSlowBackend(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) {
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			time.Sleep(3 * time.Millisecond)
			w.Header().Set("Content-Type", "text/plain")
			w.Write(append([]byte("re:"), body...))
		}
	})
	srv := startServer(t, gateway.Config{Backend: b.URL, PingInterval: -1}, nil)
	peak := peakHeld(srv)
	const n = 300
	frames := burst(n)
	c := sendBurst(t, srv, frames)
	expectReplies(t, c, n, "re:")
	held := peak()
	st := srv.Stats()
	t.Logf("%d messages (%d bytes in one write): %d pauses, %v paused; at most %d bytes held", n, len(frames),
		st.InboundPauses, time.Duration(st.InboundPausedNanos), held)
	if st.Closes["inbound_overflow"] != 0 || st.DroppedIn != 0 || st.InboundPauses == 0 {
		t.Fatalf("closes %v, DroppedIn %d, pauses %d: want no close and the burst paused", st.Closes, st.DroppedIn, st.InboundPauses)
	}
	if c.WriteMessage(gorilla.TextMessage, []byte("after")) != nil || func() string { _, m, _ := c.ReadMessage(); return string(m) }() != "re:after" {
		t.Fatal("the connection did not survive the burst")
	}
}

// 20,000 small messages in one write to the echo app: every echo, in
// order, no close.
func TestBurstEcho(t *testing.T) {
	srv := startServer(t, gateway.Config{PingInterval: -1}, gateway.Echo{})
	peak := peakHeld(srv)
	const n = 20000
	frames := burst(n)
	c := sendBurst(t, srv, frames)
	expectReplies(t, c, n, "")
	held := peak()
	st := srv.Stats()
	t.Logf("%d messages (%d bytes in one write): %d pauses; at most %d bytes held", n, len(frames), st.InboundPauses, held)
	if st.Closes["inbound_overflow"] != 0 || st.Closes["slow_consumer"] != 0 {
		t.Fatalf("closes %v", st.Closes)
	}
}

// While the handler is stuck, a client that keeps sending is paused: the
// server holds at most the mailbox bound, a message and one read, while
// the client's own writes block (TCP), and nothing is lost once the
// handler moves again.
func TestPausedClientIsSlowedByTCP(t *testing.T) {
	const (
		size     = 64 << 10
		count    = 1024 // 64 MiB: more than the kernel's buffers hold
		mailbox  = 256 << 10
		maxBound = mailbox + size + 64<<10 + 4<<10
	)
	release := make(chan struct{})
	var got atomic.Int64
	var bad atomic.Int64
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		<-release
		if i := got.Add(1) - 1; len(data) != size || binary.BigEndian.Uint64(data) != uint64(i) {
			bad.Add(1)
		}
	}}
	srv := startServer(t, gateway.Config{MailboxBytes: mailbox, PingInterval: -1}, h)
	c := dialRaw(t, srv)
	var written atomic.Int64
	writeDone := make(chan error, 1)
	go func() {
		// A zero masking key leaves the payload as it is (RFC 6455 §5.3
		// allows any key): the frames cost no masking to build.
		frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, make([]byte, size), [4]byte{})
		hdr := len(frame) - size
		c.conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
		for i := range count {
			binary.BigEndian.PutUint64(frame[hdr:], uint64(i))
			if _, err := c.conn.Write(frame); err != nil {
				writeDone <- err
				return
			}
			written.Add(int64(len(frame)))
		}
		writeDone <- nil
	}()
	waitFor(t, func() bool { return srv.Stats().InboundPaused == 1 })
	// Wait for the kernel's buffers to fill: the client's writes stop.
	peak := peakHeld(srv)
	for last := int64(-1); ; {
		time.Sleep(100 * time.Millisecond)
		if w := written.Load(); w == last {
			break
		} else {
			last = w
		}
	}
	held := peak()
	select {
	case err := <-writeDone:
		t.Fatalf("the client wrote all %d MiB while its handler was stuck (%v): reads did not pause", count*size>>20, err)
	default:
	}
	if held > maxBound {
		t.Fatalf("the server held %d bytes for the paused client, bound %d", held, maxBound)
	}
	t.Logf("paused: the client's writes stopped after %d KiB; the server held at most %d KiB", written.Load()>>10, held>>10)
	close(release)
	if err := <-writeDone; err != nil {
		t.Fatalf("write after the pause: %v", err)
	}
	waitFor(t, func() bool { return got.Load() == count })
	if bad.Load() != 0 {
		t.Fatalf("%d messages out of order or damaged", bad.Load())
	}
	waitFor(t, func() bool { return srv.Stats().InboundPaused == 0 })
	if st := srv.Stats(); st.InboundPausedNanos == 0 || st.Closes["inbound_overflow"] != 0 {
		t.Fatalf("paused for %d ns, closes %v", st.InboundPausedNanos, st.Closes)
	}
}

// A paused connection is not dead: while its input is paused it cannot
// answer pings, so it is not pinged, and the liveness check does not drop
// it however long its handler takes.
func TestPausedConnectionIsNotDead(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		once.Do(func() { <-release })
		c.Send(op, data)
	}}
	srv := startServer(t, gateway.Config{MailboxMessages: 8, PingInterval: 50 * time.Millisecond,
		PongTimeout: 50 * time.Millisecond, TimerTick: 10 * time.Millisecond}, h)
	const n = 40
	c := sendBurst(t, srv, burst(n))
	waitFor(t, func() bool { return srv.Stats().InboundPaused == 1 })
	// Many ping intervals and pong timeouts go by.
	time.Sleep(time.Second)
	close(release)
	expectReplies(t, c, n, "")
	if st := srv.Stats(); st.Closes["liveness"] != 0 {
		t.Fatalf("a paused connection was dropped for liveness: %v", st.Closes)
	}
}

// A close that starts while the input is paused (here a drain) resumes
// reading, so that the peer's answer is found and the closing handshake
// completes.
func TestCloseWhilePaused(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) { <-release }}
	srv := startServer(t, gateway.Config{MailboxMessages: 4, PingInterval: -1}, h)
	c := dialRaw(t, srv)
	c.writeRaw(burst(50))
	waitFor(t, func() bool { return srv.Stats().InboundPaused == 1 })
	conns, _, _ := srv.List(t.Context(), gateway.ListOptions{})
	if len(conns) != 1 {
		t.Fatalf("%d connections listed", len(conns))
	}
	srv.Lookup(conns[0].ID).Close(4000, "bye")
	c.expectClose(4000)
	waitFor(t, func() bool { return srv.Stats().InboundPaused == 0 })
}
