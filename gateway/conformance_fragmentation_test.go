package gateway_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wsgate/wsgate/gateway"
)

// RFC 6455 §5.4 (fragmentation); Autobahn cases 5.1-5.20.

// fragment cuts p into frames of the given sizes (they must sum to
// len(p)): the first with opcode op, the rest continuations, FIN on the
// last only.
func fragment(op byte, p []byte, sizes ...int) []wframe {
	var frames []wframe
	for i, n := range sizes {
		f := frag(opCont, p[:n])
		if i == 0 {
			f.op = op
		}
		f.fin = i == len(sizes)-1
		frames = append(frames, f)
		p = p[n:]
	}
	if len(p) != 0 {
		panic("fragment: sizes do not cover the payload")
	}
	return frames
}

func repeatInt(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func randomSizes(r *rand.Rand, total, maxSize int) []int {
	var s []int
	for total > 0 {
		n := min(total, r.IntN(maxSize+1)) // zero-length fragments included
		s = append(s, n)
		total -= n
	}
	return append(s, 0)
}

// TestRFC6455_5_4_FragmentedMessages: "A fragmented message consists of a
// single frame with the FIN bit clear and an opcode other than 0, followed
// by zero or more frames with the FIN bit clear and the opcode set to 0,
// and terminated by a single frame with the FIN bit set and an opcode of
// 0." Fragments may be empty; a message is delivered whole, once.
func TestRFC6455_5_4_FragmentedMessages(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	r := newRand(t)
	p := textPayload(1000)
	cases := []struct {
		name  string
		sizes []int // over the first len(sum) bytes of p
	}{
		{"2 fragments", []int{500, 500}},
		{"empty first fragment", []int{0, 1000}},
		{"empty middle fragments", []int{300, 0, 0, 0, 700}},
		{"empty last fragment", []int{1000, 0}},
		{"every fragment empty", []int{0, 0, 0}},
		{"one byte per fragment", repeatInt(1, 1000)},
		{"1000 empty fragments around the data", append(append(repeatInt(0, 500), 1000), repeatInt(0, 500)...)},
		{"random sizes", randomSizes(r, 1000, 64)},
		{"fragments across the 16-bit length form", []int{125, 126, 127, 65, 557}},
	}
	for _, tc := range cases {
		for _, op := range []byte{opText, opBinary} {
			for _, mode := range allWriteModes {
				t.Run(fmt.Sprintf("%s/op=%d/%s", tc.name, op, mode.name), func(t *testing.T) {
					n := 0
					for _, s := range tc.sizes {
						n += s
					}
					data := p[:n]
					if op == opBinary {
						data = binaryPayload(n)
					}
					c := dialRaw(t, srv)
					c.sendIn(mode, r, c.wire(fragment(op, data, tc.sizes...)...))
					c.expectMessage(op, data)
					c.probe()
				})
			}
		}
	}
}

// TestRFC6455_5_4_ControlFramesBetweenFragments: "Control frames MAY be
// injected in the middle of a fragmented message", and "An endpoint MUST
// be capable of handling control frames in the middle of a fragmented
// message." A ping between fragments is answered at once, before the
// message is complete; a pong there is ignored.
func TestRFC6455_5_4_ControlFramesBetweenFragments(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	t.Run("pong comes before the message ends", func(t *testing.T) {
		// Autobahn 5.19: the final fragment is sent only after the pong
		// for the ping in the middle has arrived.
		c := dialRaw(t, srv)
		c.send(frag(opText, []byte("fragment1")), ping("pongme 1!"))
		c.expectPong([]byte("pongme 1!"))
		c.send(frag(opCont, []byte("fragment2")), frag(opCont, []byte("fragment3")), ping("pongme 2!"))
		c.expectPong([]byte("pongme 2!"))
		c.send(msg(opCont, []byte("fragment4")))
		c.expectMessage(opText, []byte("fragment1fragment2fragment3fragment4"))
	})
	for _, mode := range allWriteModes {
		t.Run("ping and pong after every fragment but the last/"+mode.name, func(t *testing.T) {
			// (After the last one, a pong and the echo may come in either
			// order: the echo is the handler's.)
			c := dialRaw(t, srv)
			p := textPayload(40)
			var frames []wframe
			for i, f := range fragment(opText, p, repeatInt(4, 10)...) {
				frames = append(frames, f)
				if !f.fin {
					frames = append(frames, pong(fmt.Sprint("unsolicited ", i)), ping(fmt.Sprint("ping ", i)))
				}
			}
			c.sendIn(mode, newRand(t), c.wire(frames...))
			for i := range 9 {
				c.expectPong(fmt.Append(nil, "ping ", i))
			}
			c.expectMessage(opText, p)
		})
	}
}

// TestRFC6455_5_4_ContinuationWithoutStart: a continuation frame with no
// message in progress fails the connection (§5.4: a fragmented message
// starts with a frame whose opcode is not 0); Autobahn 5.9-5.14.
func TestRFC6455_5_4_ContinuationWithoutStart(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name   string
		echo   []wframe // valid messages before the bad frame, echoed first
		frames []wframe
	}{
		{"FIN clear, then a message", nil, []wframe{frag(opCont, []byte("fragment1")), text("fragment2")}},
		{"FIN clear, then FIN set", nil, []wframe{frag(opCont, []byte("a")), msg(opCont, []byte("b"))}},
		{"empty, FIN set", nil, []wframe{msg(opCont, nil)}},
		{"after a whole message", []wframe{text("whole")}, []wframe{msg(opCont, []byte("x"))}},
		{"after a fragmented message", []wframe{frag(opText, []byte("frag")), msg(opCont, []byte("mented"))}, []wframe{msg(opCont, []byte("x"))}},
	}
	for _, tc := range cases {
		for _, mode := range allWriteModes {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				c := dialRaw(t, srv)
				if tc.echo != nil {
					c.send(tc.echo...)
					var whole []byte
					for _, f := range tc.echo {
						whole = append(whole, f.data...)
					}
					c.expectMessage(opText, whole)
				}
				c.sendIn(mode, newRand(t), c.wire(tc.frames...))
				c.expectFail(1002)
			})
		}
	}
	// Autobahn 5.15: a fragmented message, then a continuation with
	// nothing to continue, in one write: the message is echoed before the
	// close (strict).
	for _, mode := range allWriteModes {
		t.Run("whole fragmented message and the bad frame in one write/"+mode.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.sendIn(mode, newRand(t), c.wire(frag(opText, []byte("fragment1")), msg(opCont, []byte("fragment2")),
				frag(opCont, []byte("fragment3")), text("fragment4"), ping("must not be answered")))
			c.expectFailAfterEcho(1002, text("fragment1fragment2"))
		})
	}
}

// TestRFC6455_5_4_NewMessageBeforeTheLastFragment: while a fragmented
// message is in progress only continuation and control frames may come
// (§5.4: "the fragments of one message MUST NOT be interleaved between the
// fragments of another message"); Autobahn 5.15-5.18.
func TestRFC6455_5_4_NewMessageBeforeTheLastFragment(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name   string
		frames []wframe
	}{
		{"text, then binary", []wframe{frag(opText, []byte("a")), binaryMsg([]byte("b"))}},
		{"binary, then text", []wframe{frag(opBinary, []byte("a")), text("b")}},
		{"text, then text with FIN clear", []wframe{frag(opText, []byte("a")), frag(opText, []byte("b")), msg(opCont, nil)}},
		{"text, then empty binary", []wframe{frag(opText, nil), binaryMsg(nil)}},
		{"text, ping, then text", []wframe{frag(opText, []byte("a")), ping("p"), text("b")}},
	}
	for _, tc := range cases {
		for _, mode := range []writeMode{oneWrite, byteByByte} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				c := dialRaw(t, srv)
				c.sendIn(mode, nil, c.wire(tc.frames...))
				if tc.frames[1].op == opPing {
					c.expectPong([]byte("p"))
				}
				c.expectFail(1002)
			})
		}
	}
}

// TestRFC6455_5_4_FragmentedControlFrames: "Control frames themselves MUST
// NOT be fragmented" (§5.4, §5.5); Autobahn 5.1, 5.2.
func TestRFC6455_5_4_FragmentedControlFrames(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name   string
		frames []wframe
	}{
		{"ping in 2 fragments", []wframe{frag(opPing, []byte("fragment1")), msg(opCont, []byte("fragment2"))}},
		{"pong in 2 fragments", []wframe{frag(opPong, []byte("fragment1")), msg(opCont, []byte("fragment2"))}},
		{"close in 2 fragments", []wframe{frag(opClose, []byte{0x03}), msg(opCont, []byte{0xe8})}},
		{"empty ping, FIN clear", []wframe{frag(opPing, nil)}},
		{"ping with FIN clear inside a message", []wframe{frag(opText, []byte("a")), frag(opPing, nil), msg(opCont, []byte("b"))}},
	}
	for _, tc := range cases {
		for _, mode := range []writeMode{oneWrite, byteByByte} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				c := dialRaw(t, srv)
				c.sendIn(mode, nil, c.wire(tc.frames...))
				c.expectFail(1002)
			})
		}
	}
}

// TestRFC6455_5_4_RandomStreams sends random valid streams: messages of
// random type and size cut into random fragments (empty ones included),
// with pings and unsolicited pongs between any two frames, written in
// random chunks. The echoes must come back whole and in order, and the
// pongs in order; the two sequences may interleave, since echoes come from
// the handler and pongs from the event loop.
func TestRFC6455_5_4_RandomStreams(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	r := newRand(t)
	for i := range 30 {
		c := dialRaw(t, srv)
		var frames, echoes []wframe
		var pings [][]byte
		for range 1 + r.IntN(20) {
			op, n := opBinary, r.IntN(3000)
			p := binaryPayload(n)
			if r.IntN(2) == 0 {
				op, p = opText, textPayload(n)
			}
			echoes = append(echoes, msg(op, p))
			for _, f := range fragment(op, p, randomSizes(r, n, 1+r.IntN(600))...) {
				frames = append(frames, f)
				switch r.IntN(4) {
				case 0:
					pp := fmt.Appendf(nil, "%d-%d", i, len(pings))
					pings = append(pings, pp)
					frames = append(frames, msg(opPing, pp))
				case 1:
					frames = append(frames, pong("unsolicited"))
				}
			}
		}
		c.sendIn(randomChunks, r, c.wire(frames...))
		for len(echoes) > 0 || len(pings) > 0 {
			f := c.next()
			switch {
			case f.op == opPong && len(pings) > 0:
				if !bytes.Equal(f.data, pings[0]) {
					t.Fatalf("stream %d: pong %q, want %q", i, f.data, pings[0])
				}
				pings = pings[1:]
			case len(echoes) > 0 && f.op == echoes[0].op && f.fin:
				if !bytes.Equal(f.data, echoes[0].data) {
					t.Fatalf("stream %d: echo of %d bytes differs from the %d sent%s", i, len(f.data), len(echoes[0].data), diffAt(f.data, echoes[0].data))
				}
				echoes = echoes[1:]
			default:
				t.Fatalf("stream %d: unexpected %s (%d echoes and %d pongs to come)", i, f, len(echoes), len(pings))
			}
		}
		c.probe()
	}
}
