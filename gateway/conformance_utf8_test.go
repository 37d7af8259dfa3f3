package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// RFC 6455 §8.1 and §5.6: "When an endpoint is to interpret a byte stream
// as UTF-8 but finds that the byte stream is not, in fact, a valid UTF-8
// stream, that endpoint MUST _Fail the WebSocket Connection_", with 1007
// (§7.4.1). Valid UTF-8 is RFC 3629's: no overlong forms, no surrogates
// (U+D800-U+DFFF), nothing above U+10FFFF, no 5- or 6-byte forms.
// Autobahn cases 6.1-6.23, with 6.3-6.4's fail-fast requirement applied to
// every invalid case: the server must close with 1007 as soon as the first
// byte that cannot continue valid UTF-8 arrives, which the tests prove by
// never sending the rest of the message.

// validUTF8 are valid texts, each echoed unchanged however it is cut.
var validUTF8 = []struct {
	name string
	text string
}{
	{"empty", ""},
	{"ascii", "Hello-µ@ßöäüàá-UTF-8!!"},
	{"kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"},
	{"first of each length", "\x00 \xc2\x80 \xe0\xa0\x80 \xf0\x90\x80\x80"},
	{"last of each length", "\x7f \xdf\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf"},
	{"U+D7FF and U+E000 around the surrogates", "\xed\x9f\xbf\xee\x80\x80"},
	{"U+FFFD and U+FEFF", "\xef\xbf\xbd\xef\xbb\xbf"},
	{"noncharacters U+FFFE U+FFFF U+1FFFE U+10FFFF", "\xef\xbf\xbe\xef\xbf\xbf\xf0\x9f\xbf\xbe\xf4\x8f\xbf\xbf"},
	{"U+10000 and U+100000", "\xf0\x90\x80\x80\xf4\x80\x80\x80"},
	{"mixed", string(textPayload(300))},
}

// invalidUTF8 are invalid texts. Each starts with valid text, so the bad
// byte is never the first of the message; firstBadByte says where it is.
var invalidUTF8 = []struct {
	name string
	text string
}{
	// Autobahn 6.3, 6.4: the fail-fast cases.
	{"surrogate inside kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"},
	{"above U+10FFFF inside kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited"},
	// Single UTF-16 surrogates, ED A0 80 .. ED BF BF (6.20).
	{"surrogate U+D800", "a\xed\xa0\x80z"},
	{"surrogate U+DB7F", "a\xed\xad\xbfz"},
	{"surrogate U+DB80", "a\xed\xae\x80z"},
	{"surrogate U+DBFF", "a\xed\xaf\xbfz"},
	{"surrogate U+DC00", "a\xed\xb0\x80z"},
	{"surrogate U+DF80", "a\xed\xbe\x80z"},
	{"surrogate U+DFFF", "a\xed\xbf\xbfz"},
	// Paired surrogates, as CESU-8 would write them (6.21).
	{"paired surrogates U+D800 U+DC00", "a\xed\xa0\x80\xed\xb0\x80z"},
	{"paired surrogates U+DBFF U+DFFF", "a\xed\xaf\xbf\xed\xbf\xbfz"},
	// Overlong forms (6.17-6.19).
	{"overlong / C0 AF", "a\xc0\xafz"},
	{"overlong / E0 80 AF", "a\xe0\x80\xafz"},
	{"overlong / F0 80 80 AF", "a\xf0\x80\x80\xafz"},
	{"overlong / F8 80 80 80 AF", "a\xf8\x80\x80\x80\xafz"},
	{"overlong / FC 80 80 80 80 AF", "a\xfc\x80\x80\x80\x80\xafz"},
	{"overlong NUL C0 80", "a\xc0\x80z"},
	{"overlong NUL E0 80 80", "a\xe0\x80\x80z"},
	{"overlong NUL F0 80 80 80", "a\xf0\x80\x80\x80z"},
	{"maximum overlong C1 BF", "a\xc1\xbfz"},
	{"maximum overlong E0 9F BF", "a\xe0\x9f\xbfz"},
	{"maximum overlong F0 8F BF BF", "a\xf0\x8f\xbf\xbfz"},
	// Above U+10FFFF, and the 5- and 6-byte forms RFC 3629 removed
	// (6.3, 6.8, 6.11).
	{"U+110000 F4 90 80 80", "a\xf4\x90\x80\x80z"},
	{"F5 lead", "a\xf5\x80\x80\x80z"},
	{"F7 BF BF BF", "a\xf7\xbf\xbf\xbfz"},
	{"5-byte form F8 88 80 80 80", "a\xf8\x88\x80\x80\x80z"},
	{"5-byte form FB BF BF BF BF", "a\xfb\xbf\xbf\xbf\xbfz"},
	{"6-byte form FC 84 80 80 80 80", "a\xfc\x84\x80\x80\x80\x80z"},
	{"6-byte form FD BF BF BF BF BF", "a\xfd\xbf\xbf\xbf\xbf\xbfz"},
	// Unexpected continuation bytes and lonely start bytes (6.12, 6.13).
	{"lone 80", "a\x80z"},
	{"lone BF", "a\xbfz"},
	{"80 BF 80 BF", "a\x80\xbf\x80\xbfz"},
	{"two-byte start then space", "a\xc2 z"},
	{"three-byte start then space", "a\xe1 z"},
	{"four-byte start then space", "a\xf1 z"},
	{"three-byte sequence missing its last byte", "a\xe2\x82z"},
	{"four-byte sequence missing its last byte", "a\xf0\x9f\x98z"},
	{"start byte after start byte", "a\xe2\xe2\x82\xacz"},
	{"extra continuation", "\xc3\xa9\xa9z"},
	// Impossible bytes (6.16).
	{"FE", "a\xfez"},
	{"FF", "a\xffz"},
	{"FE FE FF FF", "a\xfe\xfe\xff\xffz"},
}

// truncatedUTF8 end inside a character: the message is invalid only once
// its final fragment has arrived (Autobahn 6.14, 6.15).
var truncatedUTF8 = []string{
	"a\xc2", "a\xdf", "a\xe0\xa0", "a\xef\xbf", "a\xf0\x90\x80", "a\xf4\x8f\xbf", "\xce\xba\xe1\xbd",
}

func TestRFC6455_8_1_ValidUTF8(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	for _, tc := range validUTF8 {
		p := []byte(tc.text)
		if !utf8.Valid(p) || firstBadByte(p) != len(p) {
			t.Fatalf("table error: %s is not valid UTF-8", tc.name)
		}
		t.Run(tc.name, func(t *testing.T) {
			r := newRand(t)
			c := dialRaw(t, srv)
			for _, frames := range [][]wframe{
				{text(tc.text)},
				fragment(opText, p, append(repeatInt(1, len(p)), 0)...), // a frame per byte
				fragment(opText, p, randomSizes(r, len(p), 5)...),
			} {
				for _, mode := range allWriteModes {
					c.sendIn(mode, r, c.wire(frames...))
					c.expectMessage(opText, p)
				}
			}
		})
	}
}

// TestRFC6455_8_1_InvalidUTF8FailsFast sends each invalid text three ways
// and requires a 1007 close in each, sent before the message is complete.
func TestRFC6455_8_1_InvalidUTF8FailsFast(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	for _, tc := range invalidUTF8 {
		p := []byte(tc.text)
		bad := firstBadByte(p)
		if bad == len(p) || utf8.Valid(p) {
			t.Fatalf("table error: %s has no invalid byte", tc.name)
		}
		t.Run(tc.name+"/whole message in one frame", func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(text(tc.text))
			c.expectFail(1007)
		})
		t.Run(tc.name+"/frame cut after the bad byte", func(t *testing.T) {
			// The header announces the whole text; only the bytes up to
			// the bad one are sent until the close has come.
			c := dialRaw(t, srv)
			w := c.wire(text(tc.text))
			head := len(w) - len(p)
			c.writeRaw(w[:head+bad+1])
			c.expectCloseFrame(1007)
			// The rest of the frame, then our close: the server is still
			// in step with the frames and closes TCP.
			c.writeRaw(w[head+bad+1:])
			c.send(closeMsg(1007, ""))
			c.expectTCPClosed()
		})
		t.Run(tc.name+"/one frame per byte up to the bad byte", func(t *testing.T) {
			// Every byte in a frame of its own, FIN never set: the final
			// fragment never comes.
			c := dialRaw(t, srv)
			frames := fragment(opText, p[:bad+1], repeatInt(1, bad+1)...)
			frames[len(frames)-1].fin = false
			for _, f := range frames {
				c.send(f)
			}
			c.expectFail(1007)
		})
	}
}

// TestRFC6455_8_1_TruncatedUTF8 covers texts that end inside a character:
// each fragment alone is a valid prefix, so the server must wait for the
// final one, then fail with 1007.
func TestRFC6455_8_1_TruncatedUTF8(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	for _, s := range truncatedUTF8 {
		p := []byte(s)
		if firstBadByte(p) != len(p) || utf8.Valid(p) {
			t.Fatalf("table error: % x is not a truncated valid prefix", p)
		}
		t.Run(fmt.Sprintf("% x/one frame", p), func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(text(s))
			c.expectFail(1007)
		})
		t.Run(fmt.Sprintf("% x/one frame per byte", p), func(t *testing.T) {
			c := dialRaw(t, srv)
			frames := fragment(opText, p, repeatInt(1, len(p))...)
			frames[len(frames)-1].fin = false
			c.send(frames...)
			// Every byte so far is a valid prefix: no close yet.
			c.probe()
			c.send(msg(opCont, nil))
			c.expectFail(1007)
		})
	}
}

// TestRFC6455_8_1_BinaryIsNotValidated: only text is UTF-8; a binary
// message carrying the invalid texts is echoed.
func TestRFC6455_8_1_BinaryIsNotValidated(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	c := dialRaw(t, srv)
	for _, tc := range invalidUTF8 {
		c.send(fragment(opBinary, []byte(tc.text), 1, len(tc.text)-1)...)
		c.expectMessage(opBinary, []byte(tc.text))
	}
}

// TestRFC6455_8_1_InvalidUTF8Gorilla cross-checks with gorilla/websocket,
// which sends text without checking it and reports the close it gets.
func TestRFC6455_8_1_InvalidUTF8Gorilla(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	// A 4-byte write buffer makes gorilla send every message in frames of
	// 4 bytes, cutting characters.
	d := gorilla.Dialer{WriteBufferSize: 4}
	for _, tc := range invalidUTF8 {
		c, _, err := d.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(gorilla.TextMessage, []byte(tc.text)); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.ReadMessage()
		var ce *gorilla.CloseError
		if !errors.As(err, &ce) || ce.Code != gorilla.CloseInvalidFramePayloadData {
			t.Fatalf("%s: got %v, want close 1007", tc.name, err)
		}
		c.Close()
	}
	// And valid text of every kind goes through.
	c, _, err := d.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range validUTF8 {
		if err := c.WriteMessage(gorilla.TextMessage, []byte(tc.text)); err != nil {
			t.Fatal(err)
		}
		if typ, got, err := c.ReadMessage(); err != nil || typ != gorilla.TextMessage || !bytes.Equal(got, []byte(tc.text)) {
			t.Fatalf("%s: got %d % x %v", tc.name, typ, got, err)
		}
	}
}
