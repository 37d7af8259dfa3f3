package codec

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// TestValidCloseCode walks every code class of RFC 6455 §7.4: the edges of
// each range and one code inside it.
func TestValidCloseCode(t *testing.T) {
	classes := []struct {
		name  string
		lo    ws.StatusCode
		hi    ws.StatusCode
		valid bool
	}{
		{name: "0-999 unused", lo: 0, hi: 999},
		{name: "1000-1003 defined", lo: 1000, hi: 1003, valid: true},
		{name: "1004 reserved", lo: 1004, hi: 1004},
		{name: "1005 no status, never sent", lo: 1005, hi: 1005},
		{name: "1006 abnormal, never sent", lo: 1006, hi: 1006},
		{name: "1007-1014 defined", lo: 1007, hi: 1014, valid: true},
		{name: "1015 TLS failure, never sent", lo: 1015, hi: 1015},
		{name: "1016-2999 reserved for RFCs", lo: 1016, hi: 2999},
		{name: "3000-3999 registered", lo: 3000, hi: 3999, valid: true},
		{name: "4000-4999 private", lo: 4000, hi: 4999, valid: true},
		{name: "5000+ undefined", lo: 5000, hi: 65535},
	}
	for _, c := range classes {
		t.Run(c.name, func(t *testing.T) {
			for _, code := range []ws.StatusCode{c.lo, (c.lo + c.hi) / 2, c.hi} {
				if got := ValidCloseCode(code); got != c.valid {
					t.Errorf("ValidCloseCode(%d) = %v; want %v", code, got, c.valid)
				}
				payload := []byte{byte(code >> 8), byte(code), 'o', 'k'}
				_, _, err := ParseCloseUnsafe(payload)
				if c.valid != (err == nil) || (!c.valid && !errors.Is(err, ErrBadCloseCode)) {
					t.Errorf("ParseCloseUnsafe(code %d) err = %v; valid %v", code, err, c.valid)
				}
			}
		})
	}
}

func TestParseCloseUnsafe(t *testing.T) {
	cases := []struct {
		name   string
		in     []byte
		code   ws.StatusCode
		reason string
		err    error
	}{
		{name: "empty means no status", in: []byte{}, code: ws.StatusNoStatusRcvd},
		{name: "one byte", in: []byte{0x03}, err: ErrBadClosePayload},
		{name: "code only", in: []byte{0x03, 0xe8}, code: 1000},
		{name: "code and reason", in: []byte("\x03\xe9bye"), code: 1001, reason: "bye"},
		{name: "multibyte reason", in: []byte("\x0f\xa0caf\u00e9"), code: 4000, reason: "caf\u00e9"},
		{name: "bad utf8 reason", in: []byte("\x03\xe8\xc0\x80"), err: ErrCloseReasonUTF8},
		{name: "truncated utf8 reason", in: []byte("\x03\xe8ok\xe2\x82"), err: ErrCloseReasonUTF8},
		{name: "surrogate reason", in: []byte("\x03\xe8\xed\xa0\x80"), err: ErrCloseReasonUTF8},
		{name: "code 1005 on the wire", in: []byte{0x03, 0xed}, err: ErrBadCloseCode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, reason, err := ParseCloseUnsafe(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v; want %v", err, tc.err)
				}
				if CloseCode(err) != ws.StatusProtocolError && CloseCode(err) != ws.StatusInvalidFramePayloadData {
					t.Fatalf("CloseCode(%v) = %d", err, CloseCode(err))
				}
				return
			}
			if err != nil || code != tc.code || string(reason) != tc.reason {
				t.Fatalf("= %d, %q, %v; want %d, %q", code, reason, err, tc.code, tc.reason)
			}
		})
	}
}

// TestAppendCloseRoundTrip encodes close frames in both roles and reads
// them back with ParseHeader and ParseCloseUnsafe.
func TestAppendCloseRoundTrip(t *testing.T) {
	long := strings.Repeat("\u20ac", 50) // 150 bytes, runes of 3
	cases := []struct {
		name   string
		code   ws.StatusCode
		reason string
		want   string // reason after truncation
	}{
		{name: "no status", code: 0, reason: "ignored"},
		{name: "normal", code: ws.StatusNormalClosure, reason: "", want: ""},
		{name: "going away with reason", code: ws.StatusGoingAway, reason: "restart", want: "restart"},
		{name: "private code", code: 4321, reason: "custom", want: "custom"},
		{name: "reason of exactly 123 bytes", code: 1000, reason: strings.Repeat("a", 123), want: strings.Repeat("a", 123)},
		{name: "ascii reason cut at 123", code: 1000, reason: strings.Repeat("a", 200), want: strings.Repeat("a", 123)},
		// Byte 123 falls inside the 41st euro sign: cut to 40 of them.
		{name: "multibyte reason cut at rune boundary", code: 1011, reason: "a" + long, want: "a" + strings.Repeat("\u20ac", 40)},
		{name: "multibyte reason ending at 123", code: 1011, reason: long, want: strings.Repeat("\u20ac", 41)},
		{name: "four-byte runes cut at boundary", code: 1000, reason: strings.Repeat("\U0001F600", 40), want: strings.Repeat("\U0001F600", 30)},
	}
	for _, tc := range cases {
		for _, masked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/masked=%v", tc.name, masked), func(t *testing.T) {
				var frame []byte
				role := RoleClient
				if masked {
					frame = AppendCloseMasked([]byte("x"), tc.code, tc.reason, mask)
					role = RoleServer
				} else {
					frame = AppendClose([]byte("x"), tc.code, tc.reason)
				}
				frame = frame[1:]
				h, n, err := ParseHeader(frame, role, 0)
				if err != nil || n == 0 || h.OpCode != ws.OpClose || !h.Fin || int(h.Length) != len(frame)-n {
					t.Fatalf("ParseHeader = %+v, %d, %v (frame %x)", h, n, err, frame)
				}
				payload := frame[n:]
				if masked {
					Cipher(payload, h.Mask, 0)
				}
				code, reason, err := ParseCloseUnsafe(payload)
				if err != nil {
					t.Fatalf("ParseCloseUnsafe: %v", err)
				}
				if tc.code == 0 {
					if code != ws.StatusNoStatusRcvd || len(payload) != 0 {
						t.Fatalf("code 0 sent payload %x", payload)
					}
					return
				}
				if code != tc.code || string(reason) != tc.want {
					t.Fatalf("round trip = %d, %q; want %d, %q", code, reason, tc.code, tc.want)
				}
				if len(payload) > MaxControlPayload || !utf8.Valid(reason) {
					t.Fatalf("payload of %d bytes, valid UTF-8 %v", len(payload), utf8.Valid(reason))
				}
			})
		}
	}
}

func TestCloseMaskedMatchesGobwas(t *testing.T) {
	// gobwas builds the same masked close frame from its own pieces.
	body := ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")
	want := append([]byte(nil), body...)
	ws.Cipher(want, mask, 0)
	want = append(AppendHeader(nil, ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(len(body)), Masked: true, Mask: mask}), want...)
	if got := AppendCloseMasked(nil, ws.StatusGoingAway, "bye", mask); !bytes.Equal(got, want) {
		t.Fatalf("AppendCloseMasked = %x; want %x", got, want)
	}
}

func TestCloseErrorMessage(t *testing.T) {
	if got := ErrInvalidUTF8.Error(); !strings.HasPrefix(got, "codec: ") || !strings.Contains(got, "1007") {
		t.Fatalf("Error() = %q", got)
	}
	wrapped := fmt.Errorf("read: %w", ErrMessageTooBig)
	if CloseCode(wrapped) != ws.StatusMessageTooBig || CloseCode(errors.New("x")) != 0 || CloseCode(nil) != 0 {
		t.Fatal("CloseCode does not see through wrapping or misreports plain errors")
	}
}
