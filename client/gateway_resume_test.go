package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// The client with Options.Resume against the real gateway's sessions
// (docs/resume.md, phase 2), through real sockets and a TCP proxy that
// cuts connections without a close frame.

// A cut while pushes flow: the client resumes, every push arrives once
// and in order, the handler saw one OnOpen and no OnClose.
func TestGatewayResumeAfterCut(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	lb := startProxy(t, g.addr())
	r := &recorder{}
	c := dial(t, lb.url(), Options{Resume: true}, r)
	until(t, "the gateway's OnOpen", func() bool { return g.open() == 1 })
	r.get(func() {
		if len(r.opens) != 1 || !r.opens[0].Resumable {
			t.Fatalf("opens: %+v", r.opens)
		}
	})
	const total = 300
	for i := 1; i <= total; i++ {
		if g.push("p"+strconv.Itoa(i)) != 1 {
			t.Fatalf("push %d reached no connection", i)
		}
		if i == 100 || i == 200 {
			lb.cut() // no close frame: the session is suspended
		}
	}
	until(t, "every push", r.count(func() int { return len(r.texts) / total }))
	r.get(func() {
		for i, s := range r.texts {
			if s != "p"+strconv.Itoa(i+1) {
				t.Fatalf("message %d is %q: %q", i, s, r.texts)
			}
		}
		if len(r.texts) != total {
			t.Fatalf("%d messages, want %d", len(r.texts), total)
		}
		if len(r.misses) != 0 || len(r.resumes) == 0 {
			t.Fatalf("resumes %+v misses %+v", r.resumes, r.misses)
		}
	})
	if g.open() != 1 {
		t.Fatalf("the handler saw the session close: %d open", g.open())
	}
	st := g.srv.Stats().Sessions
	if st.Resumes < 1 || st.Missed["unknown"] != 0 {
		t.Fatalf("stats: %+v", st)
	}
	// Echo still works on the resumed session, both ways counted.
	if err := c.Send(Text, []byte("echo")); err != nil {
		t.Fatal(err)
	}
	until(t, "the echo", r.count(func() int { return len(r.texts) / (total + 1) }))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	until(t, "OnClose", func() bool { return g.open() == 0 })
}

// Past the window the client is told it missed messages, and the
// handler sees exactly one OnClose for the old session.
func TestGatewayResumeExpired(t *testing.T) {
	g := startGateway(t, gateway.Config{ResumeWindow: 300 * time.Millisecond, TimerTick: 10 * time.Millisecond})
	lb := startProxy(t, g.addr())
	r := &recorder{}
	lb.set(g.addr(), false)
	dial(t, lb.url(), Options{Resume: true, Backoff: Backoff{Base: time.Second}}, r)
	until(t, "the gateway's OnOpen", func() bool { return g.open() == 1 })
	lb.set(g.addr(), true) // refuse reconnects until the window has passed
	lb.cut()
	until(t, "the session's expiry", func() bool { return g.srv.Stats().Sessions.Expired == 1 })
	until(t, "its OnClose", func() bool { return g.open() == 0 })
	lb.set(g.addr(), false)
	until(t, "the missed event", r.count(func() int { return len(r.misses) }))
	r.get(func() {
		if r.misses[0].Reason != "expired" {
			t.Fatalf("missed: %+v", r.misses)
		}
	})
	until(t, "the new session's OnOpen", func() bool { return g.open() == 1 })
}

// The test: 1,000 resumable connections receive a push every
// 100 ms; 300 of them lose their TCP connection abruptly (RST, no close
// frame) and reconnect after 1-3 s. Every client gets every push exactly
// once and in order, and the handler saw 1,000 OnOpen and no OnClose.
func TestGatewayResumeThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const n, dropped, rounds = 1000, 300, 40
	g := startGateway(t, gateway.Config{})
	type peer struct {
		r    *recorder
		mu   sync.Mutex
		tcp  net.Conn
		cuts int
	}
	peers := make([]*peer, n)
	for i := range peers {
		p := &peer{r: &recorder{}}
		peers[i] = p
		o := Options{Resume: true, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				p.mu.Lock()
				p.tcp = c
				p.mu.Unlock()
			}
			return c, err
		}}
		o = p.r.options(o)
		// Reconnect after 1-3 s, as a phone out of a tunnel would.
		o.Backoff.Sleep = func(ctx context.Context, d time.Duration) error {
			return sleep(ctx, time.Second+time.Duration(rand.Int64N(int64(2*time.Second))))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		c, err := Dial(ctx, g.url(), o)
		cancel()
		if err != nil {
			t.Fatalf("Dial %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	until(t, "1,000 OnOpen", func() bool { return g.open() == n })
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for round := 1; round <= rounds; round++ {
		<-tick.C
		if got := g.push("m" + strconv.Itoa(round)); got != n {
			t.Fatalf("round %d reached %d sessions", round, got)
		}
		if round == 5 {
			for _, p := range peers[:dropped] {
				p.mu.Lock()
				if tc, ok := p.tcp.(*net.TCPConn); ok {
					tc.SetLinger(0) // RST: no FIN, no close frame
					tc.Close()
					p.cuts++
				}
				p.mu.Unlock()
			}
		}
	}
	for i, p := range peers {
		until(t, "every push at client "+strconv.Itoa(i), p.r.count(func() int { return len(p.r.texts) / rounds }))
		p.r.get(func() {
			if len(p.r.texts) != rounds {
				t.Fatalf("client %d: %d messages, want %d", i, len(p.r.texts), rounds)
			}
			for j, s := range p.r.texts {
				if s != "m"+strconv.Itoa(j+1) {
					t.Fatalf("client %d: message %d is %q", i, j, s)
				}
			}
			if len(p.r.misses) != 0 {
				t.Fatalf("client %d missed: %+v", i, p.r.misses)
			}
			if i < dropped && len(p.r.resumes) != 1 {
				t.Fatalf("client %d: %d resumes", i, len(p.r.resumes))
			}
		})
	}
	st := g.srv.Stats().Sessions
	if st.Resumes != dropped || st.Suspends != dropped || st.Expired != 0 {
		t.Fatalf("sessions: %+v", st)
	}
	if g.open() != n {
		t.Fatalf("the handler saw %d sessions close", n-g.open())
	}
	t.Logf("sessions: %+v", st)
}

// A gateway at --max-conns answers an envelope request with 101 and a
// close 1013 "try again later; retry-after=N": the client honours the
// hint as it does a 503's Retry-After, and connects once there is room.
func TestGatewayTryAgainLater(t *testing.T) {
	g := startGateway(t, gateway.Config{MaxConns: 1})
	hold, _, err := dialRaw(g.url())
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	type result struct {
		c   *Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Dial(context.Background(), g.url(), r.options(Options{Resume: true}))
		done <- result{c, err}
	}()
	until(t, "two refusals", r.count(func() int { return len(r.reconnects) / 2 }))
	hold.Close()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Cleanup(func() { res.c.Close() })
	r.get(func() {
		for _, rc := range r.reconnects {
			var ce *CloseError
			if !errors.As(rc.Cause, &ce) || ce.Code != 1013 || rc.RetryAfter != 5*time.Second || rc.Delay < 5*time.Second {
				t.Fatalf("reconnect %+v (cause %v)", rc, rc.Cause)
			}
		}
		if len(r.opens) != 1 || !r.opens[0].Resumable {
			t.Fatalf("opens %+v", r.opens)
		}
	})
}
