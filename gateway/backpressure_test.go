package gateway_test

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// heapAlloc is the live heap: two collections, since the first only moves
// sync.Pool's buffers (the message buffer pool) to its victim cache and
// they would count as held.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A client that stops reading while its handler tries to push 100 MiB
// stops the flood with ErrSlowConsumer once its outbound bound is full
// (the bytes accepted are the bound plus what the kernel's buffers took,
// far from 100 MiB), is closed with 1008, and another client on the same
// loop keeps its echo round trips meanwhile. The heap's growth, which
// counts this process's clients and buffer pools too, stays within the
// bound plus 2 MiB.
func TestSlowReaderBounded(t *testing.T) {
	const (
		maxOut = 1 << 20
		chunk  = 64 << 10
		total  = 100 << 20
	)
	type result struct {
		sent int
		err  error
	}
	done := make(chan result, 1)
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		if string(data) != "flood me" {
			c.Send(op, data)
			return
		}
		msg := bytes.Repeat([]byte("x"), chunk)
		sent := 0
		for sent < total {
			if err := c.Send(gateway.OpBinary, msg); err != nil {
				done <- result{sent, err}
				return
			}
			sent += chunk
		}
		done <- result{sent, nil}
	}}
	srv := startServer(t, gateway.Config{Loops: 1, MaxOutbound: maxOut, CloseTimeout: 30 * time.Second, PingInterval: -1}, h)

	fast := dialRaw(t, srv)
	slow := dialRaw(t, srv)
	slow.conn.(interface{ SetReadBuffer(int) error }).SetReadBuffer(64 << 10)
	before := heapAlloc()
	slow.frame(ws.OpText, true, []byte("flood me"))

	// Echo on the other connection of the same loop while the flood runs.
	var rtts []time.Duration
	for i := range 200 {
		start := time.Now()
		fast.frame(ws.OpBinary, true, []byte{byte(i)})
		if _, msg := fast.readMessage(); msg[0] != byte(i) {
			t.Fatalf("echo %d: got %v", i, msg)
		}
		rtts = append(rtts, time.Since(start))
	}
	r := <-done
	growth := int64(heapAlloc()) - int64(before)
	if !errors.Is(r.err, gateway.ErrSlowConsumer) {
		t.Fatalf("Send after %d bytes: %v, want ErrSlowConsumer", r.sent, r.err)
	}
	if r.sent < maxOut-chunk || r.sent > total/10 { // the chunk that would not fit is refused
		t.Fatalf("the flood stopped after %d bytes: before the %d-byte bound was full, or not near it", r.sent, maxOut)
	}
	slices.Sort(rtts)
	t.Logf("flood stopped after %d KiB; heap grew %d KiB (bound %d KiB); echo rtt p50 %v p99 %v max %v",
		r.sent>>10, growth>>10, maxOut>>10, rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1])
	const slackBytes = 2 << 20
	if growth > maxOut+slackBytes {
		t.Fatalf("heap grew %d bytes, bound %d + %d", growth, maxOut, slackBytes)
	}
	// The slow client reads again: behind the queued data comes 1008.
	slow.expectCloseAfterData(ws.StatusPolicyViolation)
	if n := srv.Stats().Closes["slow_consumer"]; n != 1 {
		t.Fatalf("slow_consumer closes: %d", n)
	}
}

// Under SlowDrop a full queue drops messages (counted) and keeps the
// connection: every message is either delivered or counted.
func TestSlowDropPolicy(t *testing.T) {
	const sends = 1000
	var refused atomic.Int64
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		if string(data) != "flood me" {
			c.Send(op, data)
			return
		}
		msg := make([]byte, 32<<10)
		for range sends { // 32 MiB
			if err := c.Send(gateway.OpBinary, msg); errors.Is(err, gateway.ErrSlowConsumer) {
				refused.Add(1)
			}
		}
		// The end marker must not be dropped itself: retry until the
		// client has drained enough.
		for c.Send(gateway.OpText, []byte("done")) == gateway.ErrSlowConsumer {
			time.Sleep(time.Millisecond)
		}
	}}
	srv := startServer(t, gateway.Config{MaxOutbound: 256 << 10, SlowPolicy: gateway.SlowDrop, PingInterval: -1}, h)
	c := dialRaw(t, srv)
	c.conn.(interface{ SetReadBuffer(int) error }).SetReadBuffer(64 << 10)
	c.frame(ws.OpText, true, []byte("flood me"))
	waitFor(t, func() bool { return refused.Load() > 0 })
	received := 0
	for {
		op, msg := c.readMessage()
		if op == ws.OpText && string(msg) == "done" {
			break
		}
		received++
	}
	st := srv.Stats()
	if int64(received)+refused.Load() != sends {
		t.Fatalf("received %d + refused %d != %d sent", received, refused.Load(), sends)
	}
	if st.SlowDropped < refused.Load() || st.Closes["slow_consumer"] != 0 {
		t.Fatalf("SlowDropped %d (Send refused %d), slow_consumer closes %d", st.SlowDropped, refused.Load(), st.Closes["slow_consumer"])
	}
	t.Logf("%d delivered, %d dropped and counted", received, refused.Load())
	c.frame(ws.OpText, true, []byte("still open"))
	if _, msg := c.readMessage(); string(msg) != "still open" {
		t.Fatalf("got %q", msg)
	}
}

// Over --max-msg-rate the connection is closed with 1008.
func TestMessageRateLimit(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxMsgRate: 10, MaxMsgBurst: 5}, gateway.Echo{})
	ok := dialRaw(t, srv)
	for i := range 5 { // within the burst
		ok.frame(ws.OpText, true, []byte{'a' + byte(i)})
		ok.readMessage()
	}
	c := dialRaw(t, srv)
	var burst []byte
	for range 30 {
		burst = codec.AppendFrameMasked(burst, ws.OpText, true, []byte("x"), c.key)
	}
	c.writeRaw(burst)
	for {
		h, p, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpClose {
			code, reason, _ := codec.ParseCloseUnsafe(p)
			if code != ws.StatusPolicyViolation {
				t.Fatalf("close %d %q, want 1008", code, reason)
			}
			c.writeRaw(codec.AppendCloseMasked(nil, code, "", c.key))
			break
		}
	}
	waitFor(t, func() bool { return srv.Stats().Closes["rate_limit"] == 1 })
}
