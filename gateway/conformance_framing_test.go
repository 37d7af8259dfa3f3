package gateway_test

import (
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/wsgate/wsgate/gateway"
)

// RFC 6455 §5.2 (base framing) and §5.3 (masking); Autobahn cases 1.1 and
// 1.2.

// lengthBoundaries are payload lengths on each side of the 7-bit, 16-bit
// and 64-bit length forms.
var lengthBoundaries = []int{0, 1, 125, 126, 127, 128, 1000, 65535, 65536, 65537}

// textPayload returns n bytes of valid UTF-8 that mix one- to four-byte
// characters, so that fragment and chunk boundaries fall inside them. The
// result is shared: callers must not modify it.
func textPayload(n int) []byte {
	payloadMu.Lock()
	defer payloadMu.Unlock()
	if b, ok := texts[n]; ok {
		return b
	}
	runes := []rune("a κόσμε € 😀 z\n")
	b := make([]byte, 0, n)
	for i := 0; len(b) < n; i++ {
		r := runes[i%len(runes)]
		if len(b)+utf8.RuneLen(r) > n {
			r = 'x'
		}
		b = utf8.AppendRune(b, r)
	}
	texts[n] = b
	return b
}

// binaryPayload returns n bytes of every value; byte i is the same for
// every n. The result is shared: callers must not modify it.
func binaryPayload(n int) []byte {
	payloadMu.Lock()
	defer payloadMu.Unlock()
	if n > len(binaryBytes) {
		binaryBytes = make([]byte, n)
		for i := range binaryBytes {
			binaryBytes[i] = byte(i*131 + i>>8)
		}
	}
	return binaryBytes[:n:n]
}

var (
	payloadMu   sync.Mutex
	texts       = map[int][]byte{}
	binaryBytes []byte
)

func TestRFC6455_5_2_PayloadLengthBoundaries(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	for _, mode := range allWriteModes {
		t.Run(mode.name, func(t *testing.T) {
			r := newRand(t)
			c := dialRaw(t, srv)
			for _, op := range []byte{opText, opBinary} {
				for _, n := range lengthBoundaries {
					if mode.name == byteByByte.name && (n > 65536 || n > 1000 && op == opBinary) {
						continue // the text run already crosses the 16-bit boundaries byte by byte
					}
					p := binaryPayload(n)
					if op == opText {
						p = textPayload(n)
					}
					c.sendIn(mode, r, c.wire(msg(op, p)))
					c.expectMessage(op, p)
				}
			}
		})
	}
}

// TestRFC6455_5_2_ManyFramesInOneWrite sends every boundary length, text and
// binary, in a single write: the server must find each frame boundary in
// one buffer and answer in order.
func TestRFC6455_5_2_ManyFramesInOneWrite(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	c := dialRaw(t, srv)
	var frames []wframe
	for _, n := range lengthBoundaries {
		frames = append(frames, msg(opText, textPayload(n)), msg(opBinary, binaryPayload(n)))
	}
	c.send(frames...)
	for _, f := range frames {
		c.expectMessage(f.op, f.data)
	}
}

// TestRFC6455_5_2_LengthEncodingViolations: "the minimal number of bytes
// MUST be used to encode the length" and, in the 64-bit form, "the most
// significant bit MUST be 0". The server fails such frames with 1002.
func TestRFC6455_5_2_LengthEncodingViolations(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name string
		f    wframe
	}{
		{"0 in the 16-bit form", wframe{fin: true, op: opText, lenForm: 2}},
		{"125 in the 16-bit form", wframe{fin: true, op: opBinary, data: binaryPayload(125), lenForm: 2}},
		{"5 in the 64-bit form", wframe{fin: true, op: opText, data: []byte("hello"), lenForm: 8}},
		// The header alone decides: no payload follows it.
		{"65535 in the 64-bit form", wframe{fin: true, op: opBinary, lenForm: 8, announce: 65535}},
		{"64-bit length with the top bit set", wframe{fin: true, op: opBinary, lenForm: 8, announce: 1 << 63}},
		{"ping of 5 in the 16-bit form", wframe{fin: true, op: opPing, data: []byte("hello"), lenForm: 2}},
	}
	for _, tc := range cases {
		for _, mode := range []writeMode{oneWrite, byteByByte} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				c := dialRaw(t, srv)
				c.send(text("before"))
				c.expectMessage(opText, []byte("before"))
				c.sendIn(mode, nil, c.wire(tc.f))
				c.expectFail(1002)
			})
		}
	}
}

// TestRFC6455_5_3_Masking: a client masks every frame with a key of its
// choice (§5.3); the server unmasks each frame with that frame's own key,
// whatever its value and wherever the payload is cut.
func TestRFC6455_5_3_Masking(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	c := dialRaw(t, srv)
	keys := [][4]byte{{0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {1, 2, 3, 4}, {0x80, 0, 0x7f, 0xfe}}
	t.Run("fixed keys", func(t *testing.T) {
		for _, key := range keys {
			for _, n := range []int{0, 1, 3, 4, 5, 126, 65536} {
				p := binaryPayload(n)
				c.writeRaw(appendWire(nil, binaryMsg(p), key))
				c.expectMessage(opBinary, p)
			}
		}
	})
	t.Run("a different key per fragment", func(t *testing.T) {
		// Fragments of 1, 2, 3, 5 and 7 bytes put each key at a different
		// offset of the message.
		p := textPayload(1 + 2 + 3 + 5 + 7)
		var b []byte
		off := 0
		for i, n := range []int{1, 2, 3, 5, 7} {
			op := opCont
			if i == 0 {
				op = opText
			}
			f := frag(op, p[off:off+n])
			f.fin = off+n == len(p)
			b = appendWire(b, f, keys[i%len(keys)])
			off += n
		}
		c.writeRaw(b)
		c.expectMessage(opText, p)
	})
	for _, tc := range []struct {
		name   string
		frames []wframe
	}{
		{"unmasked ping", []wframe{{fin: true, op: opPing, data: []byte("p"), unmasked: true}}},
		{"unmasked close", []wframe{{fin: true, op: opClose, data: []byte{3, 0xe8}, unmasked: true}}},
		{"unmasked continuation", []wframe{frag(opText, []byte("a")), {fin: true, op: opCont, data: []byte("b"), unmasked: true}}},
		{"unmasked empty binary", []wframe{{fin: true, op: opBinary, unmasked: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(tc.frames...)
			c.expectFail(1002)
		})
	}
}
