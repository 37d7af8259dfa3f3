package client

import (
	"strconv"
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
