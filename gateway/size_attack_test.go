package gateway_test

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// Frames that declare more than Config.MaxMessageSize, alone or added to
// what a fragmented message already holds, through a real socket. Each
// attack sends its headers and a little payload, then stops: the 1009 must
// come from what the headers declare, before the payload that would have
// filled the message buffer.

const attackMax = 64 << 10

// sizeAttacks are the attacks, each writing its frames to c.
var sizeAttacks = []struct {
	name string
	send func(c *rawClient)
}{
	{"continuation declaring 2^63-1", func(c *rawClient) {
		// The sum of the byte held and the declared length overflows
		// int64 if computed as have+n.
		c.frame(ws.OpBinary, false, []byte{1})
		c.header(ws.OpContinuation, false, math.MaxInt64)
		c.writeRaw(make([]byte, 1024))
	}},
	{"continuation that wraps the sum to MinInt64", func(c *rawClient) {
		held := attackMax - 1
		c.frame(ws.OpBinary, false, make([]byte, held))
		c.header(ws.OpContinuation, true, math.MaxInt64-int64(held)+1)
		c.writeRaw(make([]byte, 1024))
	}},
	{"single frame declaring 2^63-1", func(c *rawClient) {
		c.header(ws.OpBinary, true, math.MaxInt64)
		c.writeRaw(make([]byte, 1024))
	}},
	{"fragments each under the limit", func(c *rawClient) {
		c.frame(ws.OpBinary, false, make([]byte, attackMax/4))
		for range 3 {
			c.frame(ws.OpContinuation, false, make([]byte, attackMax/4))
		}
		c.header(ws.OpContinuation, false, 1)
		c.writeRaw([]byte{0})
	}},
	{"fragments interleaved with control frames", func(c *rawClient) {
		c.frame(ws.OpText, false, []byte("a"))
		for i := range 8 {
			c.frame(ws.OpPing, true, []byte{byte(i)})
			c.frame(ws.OpPong, true, nil)
			c.frame(ws.OpContinuation, false, make([]byte, attackMax/8))
		}
	}},
}

func TestSizeAttacks(t *testing.T) {
	// After a frame too big to read, the gateway discards input until the
	// close timeout: keep it short.
	srv := startServer(t, gateway.Config{MaxMessageSize: attackMax, CloseTimeout: 300 * time.Millisecond}, gateway.Echo{})
	for _, a := range sizeAttacks {
		t.Run(a.name, func(t *testing.T) {
			before := srv.Stats().Closes["too_big"]
			c := dialRaw(t, srv)
			a.send(c)
			c.expectClose(ws.StatusMessageTooBig)
			waitFor(t, func() bool { return srv.Stats().Closes["too_big"] == before+1 })
		})
	}
	// The gateway serves on.
	c := dialRaw(t, srv)
	c.frame(ws.OpBinary, true, make([]byte, attackMax))
	if _, msg := c.readMessage(); len(msg) != attackMax {
		t.Fatalf("echo at the limit: %d bytes", len(msg))
	}
}

// RFC 6455 §5.2: "the most significant bit MUST be 0" in a 64-bit length.
// A length with it set is a protocol error (1002), not a huge message.
func TestLengthMSBSet(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxMessageSize: attackMax}, gateway.Echo{})
	for _, op := range []ws.OpCode{ws.OpBinary, ws.OpContinuation} {
		c := dialRaw(t, srv)
		if op == ws.OpContinuation {
			c.frame(ws.OpBinary, false, []byte{1})
		}
		b := []byte{byte(op), 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(b[2:], 1<<63|1)
		b = append(b, c.key[:]...)
		c.writeRaw(b)
		c.expectClose(ws.StatusProtocolError)
	}
}

// header writes a masked frame header alone, declaring n payload bytes.
func (c *rawClient) header(op ws.OpCode, fin bool, n int64) {
	c.t.Helper()
	c.writeRaw(codec.AppendHeader(nil, ws.Header{Fin: fin, OpCode: op, Length: n, Masked: true, Mask: c.key}))
}
