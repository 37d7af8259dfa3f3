package client

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// These tests run the client against the real gateway as it is today
// (plain connections: the gateway has no resume yet), through real
// sockets and, where the network must misbehave, a TCP proxy.

func TestEchoThroughGatewayKeepsOpcodes(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	r := &recorder{}
	c := dial(t, g.url(), Options{}, r)
	if err := c.Send(Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(Binary, []byte{0, 1, 255}); err != nil {
		t.Fatal(err)
	}
	until(t, "two echoes", r.count(func() int { return len(r.texts) * len(r.binaries) }))
	r.get(func() {
		if r.texts[0] != "hello" || string(r.binaries[0]) != "\x00\x01\xff" {
			t.Fatalf("echo: %q %q", r.texts, r.binaries)
		}
		if len(r.opens) != 1 || r.opens[0].Resumable {
			t.Fatalf("opens: %+v", r.opens)
		}
	})
}

// A drain closes with 1001 "going away; retry-after=N": the client waits
// N s (plus at most one Base), reconnects where the balancer now sends it,
// and every push arrives once and in order.
func TestDrainHonoursRetryHint(t *testing.T) {
	a := startGateway(t, gateway.Config{DrainWindow: time.Second, DrainGrace: 2 * time.Second})
	b := startGateway(t, gateway.Config{})
	lb := startProxy(t, a.addr())
	r := &recorder{}
	dial(t, lb.url(), Options{Backoff: Backoff{Base: 500 * time.Millisecond}}, r)
	until(t, "the gateway's OnOpen", func() bool { return a.open() == 1 }) // it runs on the worker pool
	for i := 1; i <= 3; i++ {
		if a.push("p"+strconv.Itoa(i)) != 1 {
			t.Fatal("push to A reached no connection")
		}
	}
	until(t, "pushes from A", r.count(func() int { return len(r.texts) / 3 }))
	lb.set(b.addr(), false)
	drained := make(chan error, 1)
	go func() { drained <- a.srv.Drain(t.Context()) }()
	until(t, "open on B", func() bool { return b.open() == 1 })
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	for i := 4; i <= 6; i++ {
		if b.push("p"+strconv.Itoa(i)) != 1 {
			t.Fatal("push to B reached no connection")
		}
	}
	until(t, "pushes from B", r.count(func() int { return len(r.texts) / 6 }))
	r.get(func() {
		if want := []string{"p1", "p2", "p3", "p4", "p5", "p6"}; !slices.Equal(r.texts, want) {
			t.Fatalf("pushes %q, want %q", r.texts, want)
		}
		if len(r.reconnects) != 1 {
			t.Fatalf("reconnects: %+v", r.reconnects)
		}
		rc := r.reconnects[0]
		var ce *CloseError
		if !errors.As(rc.Cause, &ce) || ce.Code != 1001 {
			t.Fatalf("cause %v, want a 1001 close", rc.Cause)
		}
		hint, ok := RetryHint(ce.Reason)
		if !ok || hint < time.Second || hint > 2*time.Second {
			t.Fatalf("reason %q: hint %v", ce.Reason, hint)
		}
		if rc.RetryAfter != hint || rc.Delay < hint || rc.Delay >= hint+500*time.Millisecond {
			t.Fatalf("delay %v for a hint of %v", rc.Delay, hint)
		}
	})
}

// A connection cut without a close frame is noticed (EOF) and replaced.
func TestAbruptKillReconnects(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	p := startProxy(t, g.addr())
	r := &recorder{}
	c := dial(t, p.url(), Options{}, r)
	p.cut()
	until(t, "reopen", r.count(func() int { return len(r.opens) - 1 }))
	r.get(func() {
		if len(r.reconnects) != 1 {
			t.Fatalf("reconnects: %+v", r.reconnects)
		}
		// 1006: the connection ended without a close frame (RFC 6455 §7.1.5).
		var ce *CloseError
		if !errors.As(r.reconnects[0].Cause, &ce) || ce.Code != 1006 {
			t.Fatalf("cause %v, want 1006 (no close frame)", r.reconnects[0].Cause)
		}
	})
	if err := c.Send(Text, []byte("after")); err != nil {
		t.Fatal(err)
	}
	until(t, "echo", r.count(func() int { return len(r.texts) }))
}

// With --max-conns 1 taken, upgrades get 503 with Retry-After: 5; the
// client waits at least that long each time, and connects once the slot
// is free.
func TestRetryAfterOn503(t *testing.T) {
	g := startGateway(t, gateway.Config{MaxConns: 1})
	holder, _, err := websocket.DefaultDialer.Dial(g.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	o := r.options(Options{Backoff: Backoff{Base: 100 * time.Millisecond, Cap: time.Second}})
	type result struct {
		c   *Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Dial(t.Context(), g.url(), o)
		done <- result{c, err}
	}()
	until(t, "three refusals", r.count(func() int { return len(r.reconnects) / 3 }))
	holder.Close()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.c.Close()
	r.get(func() {
		for _, rc := range r.reconnects {
			var he *HandshakeError
			if !errors.As(rc.Cause, &he) || he.Status != 503 || he.RetryAfter != 5*time.Second {
				t.Fatalf("cause %v, want 503 with Retry-After 5", rc.Cause)
			}
			if rc.RetryAfter != 5*time.Second || rc.Delay < 5*time.Second || rc.Delay >= 5*time.Second+100*time.Millisecond {
				t.Fatalf("delay %v for Retry-After 5s", rc.Delay)
			}
		}
	})
}

// A refusal that retrying cannot fix (401 without a token) ends Dial at
// once: no reconnect loop.
func TestFinalRefusalEndsDial(t *testing.T) {
	g := startGateway(t, gateway.Config{JWTSecret: "s3cret-s3cret-s3cret-s3cret-s3cret"})
	r := &recorder{}
	_, err := Dial(t.Context(), g.url(), r.options(Options{}))
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("Dial: %v, want a 401 HandshakeError", err)
	}
	r.get(func() {
		if len(r.reconnects) != 0 || len(r.closes) != 1 {
			t.Fatalf("reconnects %d closes %d", len(r.reconnects), len(r.closes))
		}
	})
}

// While disconnected, Send queues up to the bound and then fails with
// ErrQueueFull; on reconnect the queue goes out first, in order.
func TestOfflineQueueBound(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	p := startProxy(t, g.addr())
	r := &recorder{}
	c := dial(t, p.url(), Options{QueueMessages: 5, QueueBytes: 1000}, r)
	p.set("", true)
	p.cut()
	until(t, "offline", r.count(func() int { return len(r.reconnects) }))
	for i := 1; i <= 5; i++ {
		if err := c.Send(Text, []byte("q"+strconv.Itoa(i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := c.Send(Text, []byte("q6")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("sixth send: %v, want ErrQueueFull", err)
	}
	p.set(g.addr(), false)
	until(t, "five echoes", r.count(func() int { return len(r.texts) / 5 }))
	r.get(func() {
		if want := []string{"q1", "q2", "q3", "q4", "q5"}; !slices.Equal(r.texts, want) {
			t.Fatalf("echoes %q, want %q", r.texts, want)
		}
	})

	// The byte bound, and Close counting what was never sent.
	p.set("", true)
	p.cut()
	until(t, "offline again", r.count(func() int { return len(r.reconnects) - 1 }))
	c2 := c
	if err := c2.Send(Text, make([]byte, 600)); err != nil {
		t.Fatal(err)
	}
	if err := c2.Send(Text, make([]byte, 401)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("over the byte bound: %v", err)
	}
	if err := c2.Send(Text, make([]byte, 400)); err != nil {
		t.Fatalf("at the byte bound: %v", err)
	}
	var end *EndError
	if err := c2.Close(); !errors.As(err, &end) || end.Unsent != 2 {
		t.Fatalf("Close: %v, want 2 unsent", err)
	}
	if err := c2.Send(Text, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

// A path that stops forwarding without closing is detected by silence:
// the client pings after PingInterval and gives up PongTimeout later.
func TestSilenceDetected(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	p := startProxy(t, g.addr())
	r := &recorder{}
	c := dial(t, p.url(), Options{PingInterval: 200 * time.Millisecond, PongTimeout: 200 * time.Millisecond}, r)
	time.Sleep(600 * time.Millisecond) // longer than both: pongs keep a live path open
	r.get(func() {
		if len(r.reconnects) != 0 {
			t.Fatalf("a live connection was dropped: %+v", r.reconnects)
		}
	})
	p.freeze()
	until(t, "reopen", r.count(func() int { return len(r.opens) - 1 }))
	r.get(func() {
		if !errors.Is(r.reconnects[0].Cause, ErrSilence) {
			t.Fatalf("cause %v, want ErrSilence", r.reconnects[0].Cause)
		}
	})
	if err := c.Send(Text, []byte("alive")); err != nil {
		t.Fatal(err)
	}
	until(t, "echo", r.count(func() int { return len(r.texts) }))
}

// MaxAttempts ends the client after that many failed attempts, and
// OnClose says so.
func TestMaxAttemptsGivesUp(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	p := startProxy(t, g.addr())
	r := &recorder{}
	c := dial(t, p.url(), Options{Backoff: Backoff{MaxAttempts: 3}}, r)
	p.set("", true)
	p.cut()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the client did not give up")
	}
	r.get(func() {
		if len(r.reconnects) != 3 || len(r.closes) != 1 || !errors.Is(r.closes[0], ErrGaveUp) {
			t.Fatalf("reconnects %d, closes %v", len(r.reconnects), r.closes)
		}
	})
}

// Close from a callback returns (it cannot wait for the goroutine it runs
// on) and ends the client.
func TestCloseFromACallback(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	var c *Client
	closed := make(chan error, 1)
	ready := make(chan struct{})
	r := &recorder{}
	o := r.options(Options{})
	o.OnMessage = func(MessageType, []byte) { <-ready; closed <- c.Close() }
	c, err := Dial(t.Context(), g.url(), o)
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	must(t, c.Send(Text, []byte("bye")))
	if err := <-closed; err != nil {
		t.Fatalf("Close from OnMessage: %v", err)
	}
	<-c.Done()
	if _, err := Dial(t.Context(), "http://"+g.addr()+"/ws", Options{}); !errors.Is(err, ErrBadURL) {
		t.Fatalf("an http URL: %v", err)
	}
}
