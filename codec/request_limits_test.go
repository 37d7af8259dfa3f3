package codec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sizedRequest returns a valid upgrade request of exactly size bytes,
// padded with an X-Pad header.
func sizedRequest(t *testing.T, size int) string {
	t.Helper()
	base := upgradeReq("GET / HTTP/1.1", "X-Pad: ")
	pad := size - len(base)
	if pad < 0 {
		t.Fatalf("size %d below the %d-byte base request", size, len(base))
	}
	return upgradeReq("GET / HTTP/1.1", "X-Pad: "+strings.Repeat("p", pad))
}

// TestRequestHeaderTooLarge checks the cap at its edge for the default and
// a custom cap: a block of exactly the cap parses, one byte more does not,
// and the error comes as soon as the buffer passes the cap, not later.
func TestRequestHeaderTooLarge(t *testing.T) {
	for _, c := range []struct {
		maxBytes int // given to Parse
		limit    int // in force
	}{
		{maxBytes: 0, limit: DefaultMaxHeaderBytes},
		{maxBytes: -1, limit: DefaultMaxHeaderBytes},
		{maxBytes: 512, limit: 512},
	} {
		t.Run(fmt.Sprint(c.maxBytes), func(t *testing.T) {
			fits := sizedRequest(t, c.limit)
			var r Request
			if n, err := r.Parse([]byte(fits+"trailing frame bytes"), c.maxBytes); n != c.limit || err != nil {
				t.Fatalf("block of exactly the cap: Parse = %d, %v", n, err)
			}

			over := sizedRequest(t, c.limit+1)
			r.Reset()
			// Up to the cap the block might still end: more bytes needed.
			if n, err := r.Parse([]byte(over[:c.limit]), c.maxBytes); n != 0 || err != nil {
				t.Fatalf("cap bytes, unfinished: Parse = %d, %v; want 0, nil", n, err)
			}
			if _, err := r.Parse([]byte(over[:c.limit+1]), c.maxBytes); err != ErrHeaderTooLarge {
				t.Fatalf("cap+1 bytes, unfinished: err = %v; want ErrHeaderTooLarge", err)
			}
			// The same, in one call holding the whole request.
			r.Reset()
			if _, err := r.Parse([]byte(over), c.maxBytes); err != ErrHeaderTooLarge || HandshakeStatus(err) != 431 {
				t.Fatalf("block of cap+1: err = %v; want ErrHeaderTooLarge (431)", err)
			}
			// A flood without any newline fails as soon as it passes the cap.
			r.Reset()
			flood := []byte(strings.Repeat("G", c.limit+1))
			if _, err := r.Parse(flood, c.maxBytes); err != ErrHeaderTooLarge {
				t.Fatalf("flood: err = %v", err)
			}
		})
	}
}

// TestRequestParseLinear proves that Parse does not rescan: the bytes it
// examines while a request arrives one byte at a time equal those of a
// single call, and stay within a small multiple of the request's size. A
// parser restarting from the top on each call would examine about n²/2.
func TestRequestParseLinear(t *testing.T) {
	// Many short lines and one long line: both shapes hurt a rescanning
	// parser.
	var extra []string
	for i := range 100 {
		extra = append(extra, fmt.Sprintf("X-H%d: v", i))
	}
	extra = append(extra, "X-Long: "+strings.Repeat("v", 4000))
	in := []byte(upgradeReq("GET / HTTP/1.1", extra...))
	if len(in) > DefaultMaxHeaderBytes {
		t.Fatalf("request of %d bytes exceeds the default cap", len(in))
	}

	var once Request
	if n, err := once.Parse(in, 0); n != len(in) || err != nil {
		t.Fatalf("one-shot Parse = %d, %v", n, err)
	}

	var r Request
	calls := 0
	for k := 1; k <= len(in); k++ {
		calls++
		n, err := r.Parse(in[:k], 0)
		if err != nil || (n != 0) != (k == len(in)) {
			t.Fatalf("prefix %d: Parse = %d, %v", k, n, err)
		}
	}
	got, want := r.lines.examined, once.lines.examined
	t.Logf("%d bytes, %d calls: %d bytes examined byte by byte, %d in one call", len(in), calls, got, want)
	if got != want || int(got) > 2*len(in) {
		t.Fatalf("examined %d bytes byte by byte, %d in one call, for %d bytes: Parse rescans", got, want, len(in))
	}
}

// TestRequestBufferMoved gives Parse a shorter buffer than the bytes it has
// already parsed: a broken contract that must fail cleanly, not panic.
func TestRequestBufferMoved(t *testing.T) {
	in := []byte(upgradeReq("GET / HTTP/1.1"))
	var r Request
	if n, err := r.Parse(in[:40], 0); n != 0 || err != nil {
		t.Fatalf("Parse = %d, %v", n, err)
	}
	if _, err := r.Parse(in[:10], 0); err != ErrHandshakeMalformed {
		t.Fatalf("shrunk buffer: err = %v", err)
	}
	r.Reset()
	n, _ := r.Parse(in, 0)
	if _, err := r.Parse(in[:n-1], 0); err != ErrHandshakeMalformed {
		t.Fatalf("shrunk after completion: err = %v", err)
	}
	// After completion a moved copy updates the views.
	moved := append([]byte(nil), in...)
	if n2, err := r.Parse(moved, 0); n2 != n || err != nil {
		t.Fatalf("moved buffer: Parse = %d, %v", n2, err)
	}
	moved[len("GET ")] = '!'
	if string(r.URI()) != "!" {
		t.Fatalf("views do not alias the last buffer: URI %q", r.URI())
	}
}

func TestRequestHeader(t *testing.T) {
	in := req("GET /a?b HTTP/1.1",
		"Host: h",
		"X-Forwarded-For: 10.0.0.1, 10.0.0.2",
		"x-forwarded-for: second",
		"X-Empty:",
		"Cookie:   a=1; b=2  ",
		"Sec-WebSocket-Key: "+rfcKey)
	var r Request
	if r.Header("Host") != nil || r.Raw() != nil || r.Protocols(nil) != nil {
		t.Fatal("views before Parse must be nil")
	}
	if n, err := r.Parse([]byte(in), 0); n != len(in) || err != nil {
		t.Fatalf("Parse = %d, %v", n, err)
	}
	for _, c := range []struct {
		name string
		want string
		nil  bool
	}{
		{name: "x-forwarded-for", want: "10.0.0.1, 10.0.0.2"},
		{name: "X-FORWARDED-FOR", want: "10.0.0.1, 10.0.0.2"},
		{name: "sec-websocket-key", want: rfcKey},
		{name: "HOST", want: "h"},
		{name: "cookie", want: "a=1; b=2"},
		{name: "X-Empty", want: ""},
		{name: "X-Missing", nil: true},
		{name: "GET /a?b HTTP/1.1", nil: true},
	} {
		got := r.Header(c.name)
		if (got == nil) != c.nil || string(got) != c.want {
			t.Errorf("Header(%q) = %q (nil %v); want %q (nil %v)", c.name, got, got == nil, c.want, c.nil)
		}
	}
	if string(r.Raw()) != in {
		t.Fatalf("Raw = %q", r.Raw())
	}
}

func TestHandshakeErrorValues(t *testing.T) {
	sentinels := map[*HandshakeError]int{
		ErrHandshakeMalformed: 400, ErrHandshakeBadHTTPVersion: 400, ErrHandshakeMissingHost: 400,
		ErrHandshakeBadMethod: 405, ErrHandshakeBadUpgrade: 426, ErrHandshakeBadConnection: 400,
		ErrHandshakeBadVersion: 426, ErrHandshakeBadKey: 400, ErrHeaderTooLarge: 431,
		ErrHandshakeNotFound: 404, ErrHandshakeForbidden: 403, ErrHandshakeUnauthorized: 401,
		ErrHandshakeUnavailable: 503,
	}
	for e, status := range sentinels {
		if e.Status != status || HandshakeStatus(e) != status || StatusText(status) == "" {
			t.Errorf("%v: status %d; want %d", e, e.Status, status)
		}
		if msg := e.Error(); !strings.HasPrefix(msg, "codec: ") {
			t.Errorf("Error() = %q lacks the codec: prefix", msg)
		}
		if HandshakeStatus(fmt.Errorf("wrapped: %w", e)) != status {
			t.Errorf("HandshakeStatus does not unwrap %v", e)
		}
	}
	if HandshakeStatus(errors.New("other")) != 400 || HandshakeStatus(nil) != 400 {
		t.Error("HandshakeStatus of a foreign error must be 400")
	}
}
