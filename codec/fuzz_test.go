package codec

import (
	"bytes"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Each target splits its input at a fuzzer-chosen offset and checks that
// parsing in two steps agrees with parsing in one. Seeds live in
// testdata/fuzz/<target>/ and run with every go test.

func FuzzParseHeader(f *testing.F) {
	f.Add(m(0b1000_0001, 0b1000_0101), uint16(3), uint8(0), uint8(0))
	f.Add([]byte{0b1000_0010, 0b0111_1111, 0, 0, 0, 0, 0, 1, 0, 0}, uint16(5), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16, role, rsv uint8) {
		r := Role(role & 1)
		rsv &= 0x7
		h, n, err := ParseHeader(data, r, rsv)
		k := int(split) % (len(data) + 1)
		hp, np, errp := ParseHeader(data[:k], r, rsv)
		switch {
		case errp != nil:
			// An error in a prefix is final.
			if err != errp {
				t.Fatalf("prefix %d: err %v; whole input: %v", k, errp, err)
			}
		case np > 0:
			if np != n || hp != h || err != nil {
				t.Fatalf("prefix %d: %+v, %d; whole input: %+v, %d, %v", k, hp, np, h, n, err)
			}
		default:
			// Needing more bytes is right only if the whole input needed
			// more than the prefix had, or failed later.
			if err == nil && n != 0 && n <= k {
				t.Fatalf("prefix %d needs more bytes, but the header is %d bytes", k, n)
			}
		}
		if err != nil {
			if n != 0 || CloseCode(err) == 0 {
				t.Fatalf("error %v with n %d", err, n)
			}
			return
		}
		if n == 0 {
			return
		}
		// Bounds a reader relies on: a length is never negative (§5.2, the
		// most significant bit is 0), so it cannot make a size sum wrap
		// backwards, and a control frame fits its 125-byte buffer (§5.5).
		if h.Length < 0 || h.OpCode.IsControl() && h.Length > MaxControlPayload {
			t.Fatalf("header %+v passed with length %d", h, h.Length)
		}
		// Valid headers use minimal lengths, so encoding is the inverse of
		// parsing.
		if enc := AppendHeader(nil, h); !bytes.Equal(enc, data[:n]) || HeaderSize(h) != n {
			t.Fatalf("AppendHeader(%+v) = %x; parsed from %x", h, enc, data[:n])
		}
		if gh, gerr := ws.ReadHeader(bytes.NewReader(data)); gerr != nil || gh != h {
			t.Fatalf("gobwas reads %+v, %v; we read %+v", gh, gerr, h)
		}
	})
}

func FuzzRequestParse(f *testing.F) {
	f.Add([]byte(upgradeReq("GET /chat?x=1 HTTP/1.1", "Sec-WebSocket-Protocol: a, b")), uint16(40), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split, maxBytes uint16) {
		var once Request
		n, err := once.Parse(data, int(maxBytes))
		want := fuzzViews(&once, n, err)

		var r Request
		k := int(split) % (len(data) + 1)
		n1, err1 := r.Parse(bytes.Clone(data[:k]), int(maxBytes))
		if err1 != nil && err1 != err {
			t.Fatalf("prefix %d: err %v; whole input: %v", k, err1, err)
		}
		if n1 > 0 && n1 != n {
			t.Fatalf("prefix %d: n %d; whole input: %d", k, n1, n)
		}
		// The second call gets the bytes in a new array, as a caller that
		// grew its buffer would pass them.
		n2, err2 := r.Parse(bytes.Clone(data), int(maxBytes))
		if got := fuzzViews(&r, n2, err2); got != want {
			t.Fatalf("split at %d:\ngot  %s\nwant %s", k, got, want)
		}
		if n > 0 && (n > len(data) || n > clampMax(int(maxBytes)) || data[n-1] != '\n') {
			t.Fatalf("n %d for %d bytes, cap %d", n, len(data), maxBytes)
		}
		// The caller's buffer never has to grow past the cap: with more
		// bytes than that, Parse has an answer.
		if n == 0 && err == nil && len(data) > clampMax(int(maxBytes)) {
			t.Fatalf("needs more bytes with %d, cap %d", len(data), maxBytes)
		}
		if err != nil && HandshakeStatus(err) != 400 && HandshakeStatus(err) != 431 {
			t.Fatalf("Parse error %v with status %d", err, HandshakeStatus(err))
		}
	})
}

// fuzzViews renders everything a parsed Request shows.
func fuzzViews(r *Request, n int, err error) string {
	if n == 0 {
		return fmt.Sprintf("n=0 err=%v", err)
	}
	return fmt.Sprintf("n=%d err=%v method=%q uri=%q path=%q query=%q host=%q origin=%q key=%q upgrade=%v protos=%q exts=%q hdr=%q check=%v raw=%q",
		n, err, r.Method(), r.URI(), r.Path(), r.Query(), r.Host(), r.Origin(), r.Key(), r.IsUpgrade(),
		r.Protocols(nil), r.Extensions(nil), r.Header("x-a"), r.CheckUpgrade(), r.Raw())
}

func FuzzResponseParse(f *testing.F) {
	f.Add([]byte(resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: "+rfcAccept)), uint16(20), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split, maxBytes uint16) {
		view := func(r *Response, n int, err error) string {
			if n == 0 {
				return fmt.Sprintf("n=0 err=%v status=%d", err, r.Status())
			}
			return fmt.Sprintf("n=%d status=%d proto=%q hdr=%q check=%v",
				n, r.Status(), r.Subprotocol(), r.Header("x-a"), r.Check([]byte(rfcKey)))
		}
		var once Response
		n, err := once.Parse(data, int(maxBytes))
		want := view(&once, n, err)

		var r Response
		k := int(split) % (len(data) + 1)
		if n1, err1 := r.Parse(bytes.Clone(data[:k]), int(maxBytes)); (err1 != nil && err1 != err) || (n1 > 0 && n1 != n) {
			t.Fatalf("prefix %d: %d, %v; whole input: %d, %v", k, n1, err1, n, err)
		}
		n2, err2 := r.Parse(bytes.Clone(data), int(maxBytes))
		if got := view(&r, n2, err2); got != want {
			t.Fatalf("split at %d:\ngot  %s\nwant %s", k, got, want)
		}
		if n == 0 && err == nil && len(data) > clampMax(int(maxBytes)) {
			t.Fatalf("needs more bytes with %d, cap %d", len(data), maxBytes)
		}
		if n > 0 && (n > len(data) || n > clampMax(int(maxBytes)) || data[n-1] != '\n' || r.Status() < 100) {
			t.Fatalf("n %d for %d bytes, status %d", n, len(data), r.Status())
		}
	})
}

func FuzzUTF8(f *testing.F) {
	f.Add([]byte("h\u00e9llo \U0001F600"), uint16(7))
	f.Add([]byte{0xed, 0xa0, 0x80}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var once UTF8
		okOnce := once.Write(data)

		var v UTF8
		k := int(split) % (len(data) + 1)
		bad := firstBad(data)
		ok1 := v.Write(data[:k])
		ok2 := v.Write(data[k:])
		if ok1 != (bad < 0 || bad >= k) {
			t.Fatalf("first chunk [0,%d): Write = %v, first bad byte %d", k, ok1, bad)
		}
		if ok2 != okOnce || okOnce != (bad < 0) {
			t.Fatalf("split at %d: Write = %v; one shot %v; first bad byte %d", k, ok2, okOnce, bad)
		}
		if v.Complete() != utf8.Valid(data) || once.Complete() != utf8.Valid(data) || ValidUTF8(data) != utf8.Valid(data) {
			t.Fatalf("split at %d: Complete = %v, one shot %v; utf8.Valid = %v", k, v.Complete(), once.Complete(), utf8.Valid(data))
		}
	})
}
