package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Client-side protocol tests of the resume envelope, against the fake
// server of fake_test.go: what the real gateway must do (phase 2) is
// docs/resume.md; these check that the client does its part.

func seqOf(prefix string, a, b int) []string {
	var out []string
	for i := a; i <= b; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestResumeReplaysMissedOnceInOrder(t *testing.T) {
	f := startFake(t, &fake{})
	r := &recorder{}
	dial(t, f.url(), Options{Resume: true}, r)
	r.get(func() {
		if len(r.opens) != 1 || !r.opens[0].Resumable {
			t.Fatalf("opens %+v", r.opens)
		}
	})
	f.push(10, "m")
	until(t, "first ten", r.count(func() int { return len(r.texts) / 10 }))
	f.cut()
	f.push(10, "m") // into the suspended session's buffer
	until(t, "resumed", r.count(func() int { return len(r.resumes) }))
	f.push(5, "m")
	until(t, "all 25", r.count(func() int { return len(r.texts) / 25 }))
	r.get(func() {
		if !slices.Equal(r.texts, seqOf("m", 1, 25)) {
			t.Fatalf("got %q", r.texts)
		}
		if r.resumes[0].Replay != 10 || len(r.opens) != 1 || len(r.misses) != 0 {
			t.Fatalf("resumes %+v opens %d misses %+v", r.resumes, len(r.opens), r.misses)
		}
	})
	offers := f.offerLog()
	if !slices.Contains(offers[1], "wsgate.session.tok1.10") {
		t.Fatalf("second offer %q lacks the session entry", offers[1])
	}
}

func TestResumeResendsWhatTheServerNeverTook(t *testing.T) {
	f := startFake(t, &fake{})
	r := &recorder{}
	c := dial(t, f.url(), Options{Resume: true}, r)
	must(t, c.Send(Text, []byte("c1")))
	until(t, "c1 taken", func() bool { n := 0; f.with(func(s *fsession) { n = int(s.in) }); return n == 1 })
	f.with(func(s *fsession) { s.dropIncoming = true }) // c2-c4 are lost in flight
	must(t, c.Send(Text, []byte("c2")))
	must(t, c.Send(Text, []byte("c3")))
	must(t, c.Send(Binary, []byte{4}))
	until(t, "three lost", func() bool { n := 0; f.with(func(s *fsession) { n = s.ignored }); return n == 3 })
	f.cut()
	until(t, "resumed", r.count(func() int { return len(r.resumes) }))
	must(t, c.Send(Text, []byte("c5")))
	until(t, "five taken", func() bool { n := 0; f.with(func(s *fsession) { n = int(s.in) }); return n == 5 })
	f.with(func(s *fsession) {
		if want := []string{"t:c1", "t:c2", "t:c3", "b:\x04", "t:c5"}; !slices.Equal(s.received, want) {
			t.Fatalf("server got %q, want %q", s.received, want)
		}
	})
	r.get(func() {
		if r.resumes[0].LostSends != 0 {
			t.Fatalf("resumes %+v", r.resumes)
		}
	})
}

func TestResumeReportsSendsBeyondRetention(t *testing.T) {
	f := startFake(t, &fake{})
	r := &recorder{}
	c := dial(t, f.url(), Options{Resume: true, RetainMessages: 2}, r)
	f.with(func(s *fsession) { s.dropIncoming = true })
	for _, m := range []string{"c1", "c2", "c3"} {
		must(t, c.Send(Text, []byte(m)))
	}
	until(t, "three lost", func() bool { n := 0; f.with(func(s *fsession) { n = s.ignored }); return n == 3 })
	f.cut()
	until(t, "resumed", r.count(func() int { return len(r.resumes) }))
	until(t, "two re-sent", func() bool { n := 0; f.with(func(s *fsession) { n = int(s.in) }); return n == 2 })
	f.with(func(s *fsession) {
		if want := []string{"t:c2", "t:c3"}; !slices.Equal(s.received, want) {
			t.Fatalf("server got %q", s.received)
		}
	})
	r.get(func() {
		if r.resumes[0].LostSends != 1 {
			t.Fatalf("LostSends %d, want 1 (c1 had left the retention buffer)", r.resumes[0].LostSends)
		}
	})
}

func TestMissedWhenExpired(t *testing.T) {
	f := startFake(t, &fake{})
	r := &recorder{}
	c := dial(t, f.url(), Options{Resume: true}, r)
	f.push(3, "m")
	until(t, "three", r.count(func() int { return len(r.texts) / 3 }))
	must(t, c.Send(Text, []byte("unconfirmed"))) // taken, but no BEAT confirms it
	until(t, "taken", func() bool { n := 0; f.with(func(s *fsession) { n = int(s.in) }); return n == 1 })
	f.cut()
	f.expire()
	until(t, "a new session", r.count(func() int { return len(r.opens) - 1 }))
	f.push(2, "m")
	until(t, "two more", r.count(func() int { return len(r.texts) / 5 }))
	r.get(func() {
		if len(r.misses) != 1 || r.misses[0].Reason != "expired" || r.misses[0].UnconfirmedSends != 1 {
			t.Fatalf("misses %+v", r.misses)
		}
		if i, j := slices.Index(r.order, "missed"), slices.Index(r.order[1:], "open")+1; i < 0 || i > j {
			t.Fatalf("missed must come before the new open: %q", r.order)
		}
		if !slices.Equal(r.texts[3:], []string{"m1", "m2"}) {
			t.Fatalf("new session: %q", r.texts[3:])
		}
	})
	if offers := f.offerLog(); !slices.Contains(offers[2-1], "wsgate.session.tok1.3") {
		t.Fatalf("offers %q", offers)
	}
}

func TestMissedOnOverflow(t *testing.T) {
	f := startFake(t, &fake{buffer: 20})
	r := &recorder{}
	dial(t, f.url(), Options{Resume: true}, r)
	f.cut()
	f.push(10, "xxxxxxxx")
	until(t, "missed", r.count(func() int { return len(r.misses) }))
	r.get(func() {
		if r.misses[0].Reason != "overflow" {
			t.Fatalf("misses %+v", r.misses)
		}
	})
}

func TestBeatAckAndSilence(t *testing.T) {
	f := startFake(t, &fake{beat: 100 * time.Millisecond, timeout: 200 * time.Millisecond})
	r := &recorder{}
	dial(t, f.url(), Options{Resume: true}, r)
	f.push(2, "m")
	until(t, "ACKs of seq 2 in answer to BEATs", func() bool {
		n := 0
		f.with(func(s *fsession) {
			for _, a := range s.acks {
				if a == 2 {
					n++
				}
			}
		})
		return n >= 2
	})
	f.with(func(s *fsession) { s.frozen = true }) // the socket stays open; nothing comes
	until(t, "resumed after silence", r.count(func() int { return len(r.resumes) }))
	f.push(1, "m")
	until(t, "live after resume", r.count(func() int { return len(r.texts) / 3 }))
	r.get(func() {
		if !errors.Is(r.reconnects[0].Cause, ErrSilence) {
			t.Fatalf("cause %v, want ErrSilence", r.reconnects[0].Cause)
		}
		if !slices.Equal(r.texts, []string{"m1", "m2", "m3"}) {
			t.Fatalf("got %q", r.texts)
		}
	})
}

// The ACK threshold: half of the server's buffer, so a reading client
// keeps the server's buffer from overflowing without any BEAT.
func TestAckAtHalfTheBuffer(t *testing.T) {
	f := startFake(t, &fake{buffer: 100})
	r := &recorder{}
	dial(t, f.url(), Options{Resume: true}, r)
	for i := 1; i <= 10; i++ { // 11-12 bytes each, one at a time: each read before the next
		f.push(1, "0123456789")
		until(t, "delivered", r.count(func() int { return len(r.texts) / i }))
	}
	until(t, "an ACK without a BEAT", func() bool { n := 0; f.with(func(s *fsession) { n = len(s.acks) }); return n > 0 })
	f.with(func(s *fsession) {
		if s.trimmed != 0 {
			t.Fatalf("the server's buffer overflowed (trimmed through %d) although the client read everything", s.trimmed)
		}
	})
}

func TestNoHelloFallsBackToPlain(t *testing.T) {
	f := startFake(t, &fake{mode: "nohello"})
	r := &recorder{}
	c := dial(t, f.url(), Options{Resume: true}, r)
	r.get(func() {
		if len(r.errs) != 1 || !errors.Is(r.errs[0], ErrProtocol) {
			t.Fatalf("errors %v", r.errs)
		}
	})
	until(t, "two offers", func() bool { return len(f.offerLog()) >= 2 })
	offers := f.offerLog()
	if !slices.Contains(offers[0], ResumeProtocol) || len(offers[len(offers)-1]) != 0 {
		t.Fatalf("offers %q: the envelope first, then nothing", offers)
	}
	must(t, c.Send(Text, []byte("plain")))
	until(t, "plain echo", r.count(func() int { return len(r.texts) }))
}

func TestBeatCountMismatchIsAProtocolError(t *testing.T) {
	f := startFake(t, &fake{mode: "badbeat", beat: 50 * time.Millisecond, timeout: 500 * time.Millisecond})
	r := &recorder{}
	dial(t, f.url(), Options{Resume: true}, r)
	until(t, "protocol error", r.count(func() int { return len(r.errs) }))
	until(t, "a new session", r.count(func() int { return len(r.opens) - 1 }))
	r.get(func() {
		if !strings.Contains(r.errs[0].Error(), "count mismatch") {
			t.Fatalf("error %v", r.errs[0])
		}
	})
}

// A second client presenting the same session takes it over: the first
// is closed with 1008 and does not try to take it back.
func TestTakeoverDropsTheSession(t *testing.T) {
	f := startFake(t, &fake{})
	r1 := &recorder{}
	dial(t, f.url(), Options{Resume: true}, r1)
	f.push(1, "m")
	until(t, "one", r1.count(func() int { return len(r1.texts) }))
	// Present the first client's session from another client.
	r2 := &recorder{}
	dialWithSession(t, f.url(), Options{Resume: true}, r2, "tok1", 1)
	until(t, "the first reconnects as new", r1.count(func() int { return len(r1.opens) - 1 }))
	r1.get(func() {
		var ce *CloseError
		if !errors.As(r1.reconnects[0].Cause, &ce) || ce.Code != 1008 {
			t.Fatalf("cause %v, want 1008", r1.reconnects[0].Cause)
		}
		if len(r1.misses) != 1 || r1.misses[0].Reason != "taken over" {
			t.Fatalf("misses %+v", r1.misses)
		}
	})
	r2.get(func() {
		if len(r2.resumes) != 1 {
			t.Fatalf("the second client did not resume: %+v %+v", r2.resumes, r2.misses)
		}
	})
	offers := f.offerLog()
	for _, p := range offers[len(offers)-1] {
		if strings.HasPrefix(p, SessionProtocol) {
			t.Fatalf("after 1008 the first client still presented %q", p)
		}
	}
}

// dialWithSession dials a client that starts out holding a session, as
// if it had received seq messages of it.
func dialWithSession(t *testing.T, url string, o Options, r *recorder, token string, seq uint64) *Client {
	t.Helper()
	o = r.options(o)
	o.withDefaults()
	c := &Client{url: url, o: o, done: make(chan struct{}), first: make(chan error, 1), resumeOK: true, session: token, rx: seq}
	c.dialer.ReadBufferSize = o.ReadBufferSize
	c.dialer.WriteBufferPool = writePool
	c.ctx, c.cancel = contextWithCancel()
	go c.run()
	if err := <-c.first; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
