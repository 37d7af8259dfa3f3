package client

import (
	"testing"
	"time"
)

// Full jitter: every draw lies in [0, min(Cap, Base·2^n)), and the draws
// cover that range (bounds and spread, not timings).
func TestBackoffFullJitterBounds(t *testing.T) {
	b := Backoff{Base: time.Second, Cap: 30 * time.Second}
	b.withDefaults()
	for n := 0; n <= 12; n++ {
		ceiling := min(30*time.Second, time.Second<<n)
		lo, hi := ceiling, time.Duration(0)
		var sum float64
		const draws = 4000
		for range draws {
			d := b.Delay(n)
			if d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: %v outside [0, %v)", n, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
			sum += float64(d)
		}
		if lo > ceiling/20 || hi < ceiling-ceiling/20 {
			t.Fatalf("attempt %d: draws span only [%v, %v] of [0, %v)", n, lo, hi, ceiling)
		}
		if mean := sum / draws / float64(ceiling); mean < 0.4 || mean > 0.6 {
			t.Fatalf("attempt %d: mean %.3f of the ceiling", n, mean)
		}
	}
	fixed := Backoff{Base: time.Second, Cap: 30 * time.Second, Rand: func() float64 { return 0.5 }}
	if d := fixed.Delay(1000); d != 15*time.Second {
		t.Fatalf("a huge attempt: %v, want half the cap", d)
	}
	if d := fixed.hinted(7*time.Second, time.Minute); d != 7*time.Second+500*time.Millisecond {
		t.Fatalf("hinted: %v", d)
	}
	if d := fixed.hinted(time.Hour, time.Minute); d != time.Minute+500*time.Millisecond {
		t.Fatalf("hinted past the cap: %v", d)
	}
}

func TestRetryHint(t *testing.T) {
	for _, tc := range []struct {
		reason string
		want   time.Duration
		ok     bool
	}{
		{"going away; retry-after=17", 17 * time.Second, true},
		{"retry-after=3", 3 * time.Second, true},
		{"Try again later; Retry-After=1", time.Second, true},
		{"going away", 0, false},
		{"retry-after=", 0, false},
		{"retry-after=x", 0, false},
		{"noretry-after=5", 0, false},
		{"retry-after=1234567890", 0, false}, // ten digits: not a hint
		{"retry-after=5x; retry-after=6", 6 * time.Second, true},
	} {
		got, ok := RetryHint(tc.reason)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RetryHint(%q) = %v, %v; want %v, %v", tc.reason, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"Fri, 02 Jan 2026 03:04:15 GMT", 10 * time.Second, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true}, // in the past: now
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
	} {
		got, ok := ParseRetryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestOfferAndSelection(t *testing.T) {
	got := offerProtocols([]string{"chat", "bearer.TOKEN"}, true, "tok", 7)
	want := []string{"wsgate.resume.v1+chat", "wsgate.resume.v1", "chat", "bearer.TOKEN", "wsgate.session.tok.7"}
	if len(got) != len(want) {
		t.Fatalf("offer %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("offer %q, want %q", got, want)
		}
	}
	if got := offerProtocols([]string{"chat"}, false, "tok", 7); len(got) != 1 || got[0] != "chat" {
		t.Fatalf("plain offer %q", got)
	}
	for _, tc := range []struct {
		sel      string
		envelope bool
		app      string
	}{
		{"wsgate.resume.v1", true, ""},
		{"wsgate.resume.v1+chat", true, "chat"},
		{"wsgate.resume.v1+a+b", true, "a+b"},
		{"chat", false, "chat"},
		{"", false, ""},
		{"wsgate.resume.v10", false, "wsgate.resume.v10"},
	} {
		env, app := parseSelected(tc.sel)
		if env != tc.envelope || app != tc.app {
			t.Errorf("parseSelected(%q) = %v, %q", tc.sel, env, app)
		}
	}
}

func TestParseHello(t *testing.T) {
	h, ok := parseHello("status=resumed&session=abc_-9&seq=2&in=1&replay=3&window=120000&buffer=65536&beat=30000&timeout=10000&future=x")
	if !ok || h.status != "resumed" || h.session != "abc_-9" || h.seq != 2 || h.in != 1 || h.replay != 3 || h.buffer != 65536 || h.beat != 30000 || h.timeout != 10000 {
		t.Fatalf("%+v %v", h, ok)
	}
	for _, bad := range []string{
		"status=new&session=a.b&seq=0&in=0",              // '.' is not a token character
		"status=bogus&session=a&seq=0&in=0",              // unknown status
		"status=new&session=a&in=0",                      // no seq
		"status=new&session=a&seq=-1&in=0",               // not a count
		"status=new&session=a&seq=9007199254740992&in=0", // 2^53
	} {
		if _, ok := parseHello(bad); ok {
			t.Errorf("parseHello(%q) accepted", bad)
		}
	}
}
