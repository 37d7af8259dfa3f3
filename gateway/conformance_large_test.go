package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// Large messages, up to Config.MaxMessageSize raised to 16 MiB, in frames
// of any size; Autobahn cases 9.1-9.8 (limits and performance there; here
// correctness, with the size limit of §10.4 at its boundary).

const maxLarge = 16 << 20

func largeServer(t *testing.T) *gateway.Server {
	return startConformance(t, gateway.Config{MaxMessageSize: maxLarge}, gateway.Echo{})
}

// TestRFC6455_9_LargeMessages echoes messages up to the limit cut into
// frames of every kind of size. Text mixes one- to four-byte characters,
// so small frames cut them. (16 MiB of binary in one frame is coder's,
// below.)
func TestRFC6455_9_LargeMessages(t *testing.T) {
	srv := largeServer(t)
	r := newRand(t)
	cases := []struct {
		name  string
		op    byte
		size  int
		frame int // frame payload size; 0: one frame; -1: random sizes
		mode  writeMode
	}{
		{"text/1 frame", opText, maxLarge, 0, oneWrite},
		{"binary/64 KiB frames", opBinary, maxLarge, 64 << 10, oneWrite},
		{"text/64 KiB frames, random writes", opText, maxLarge, 64 << 10, randomChunks},
		{"text/random frames", opText, 4 << 20, -1, oneWrite},
		{"binary/random frames, random writes", opBinary, 4 << 20, -1, randomChunks},
		{"text/1-byte frames", opText, 64 << 10, 1, oneWrite},
		{"binary/1-byte frames", opBinary, 64 << 10, 1, oneWrite},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.name, tc.size), func(t *testing.T) {
			p := binaryPayload(tc.size)
			if tc.op == opText {
				p = textPayload(tc.size)
			}
			var sizes []int
			switch tc.frame {
			case 0:
				sizes = []int{tc.size}
			case -1:
				sizes = randomSizes(r, tc.size, 256<<10)
			default:
				sizes = repeatInt(tc.frame, tc.size/tc.frame)
			}
			c := dialRaw(t, srv)
			c.sendIn(tc.mode, r, c.wire(fragment(tc.op, p, sizes...)...))
			c.expectMessage(tc.op, p)
		})
	}
}

// TestRFC6455_9_ManySmallMessages pipelines 1000 messages of every size up
// to 4 KiB in one write, text and binary alternating, and requires every
// echo in order (Autobahn 9.7, 9.8). The handler's mailbox and the
// outbound queue are raised to hold them: at their defaults the server
// rightly closes, with 1008, a client that outruns its handler this way
// (backpressure_test.go).
func TestRFC6455_9_ManySmallMessages(t *testing.T) {
	srv := startConformance(t, gateway.Config{
		MailboxMessages: 1000,
		MailboxBytes:    16 << 20,
		MaxOutbound:     16 << 20,
	}, gateway.Echo{})
	c := dialRaw(t, srv)
	var frames []wframe
	for i := range 1000 {
		n := i * 4 % 4097
		if i%2 == 0 {
			frames = append(frames, msg(opText, textPayload(n)))
		} else {
			frames = append(frames, msg(opBinary, binaryPayload(n)))
		}
	}
	b := c.wire(frames...)
	done := make(chan struct{})
	go func() { // the echoes flow while the client still writes
		defer close(done)
		c.conn.Write(b)
	}()
	for _, f := range frames {
		c.expectMessage(f.op, f.data)
	}
	<-done
}

// TestRFC6455_10_4_SizeLimitBoundary: MaxMessageSize is inclusive. A
// message of exactly 16 MiB is echoed; one byte more, in any fragment,
// closes with 1009 (§7.4.1), decided from the header of the frame that
// crosses the limit, before its payload arrives.
func TestRFC6455_10_4_SizeLimitBoundary(t *testing.T) {
	srv := largeServer(t)
	t.Run("exactly the limit, with empty fragments", func(t *testing.T) {
		c := dialRaw(t, srv)
		p := binaryPayload(maxLarge)
		c.send(fragment(opBinary, p, 0, maxLarge-1, 0, 1, 0)...)
		c.expectMessage(opBinary, p)
	})
	t.Run("one byte over in the last fragment", func(t *testing.T) {
		c := dialRaw(t, srv)
		p := binaryPayload(maxLarge)
		c.send(frag(opBinary, p))
		c.send(wframe{fin: true, op: opCont, announce: 1}) // header only
		c.expectCloseFrame(1009)
		c.expectTCPClosed()
	})
	t.Run("one byte over in one frame, header only", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send(wframe{fin: true, op: opText, announce: maxLarge + 1})
		c.expectCloseFrame(1009)
		c.expectTCPClosed()
	})
}

// TestRFC6455_9_LargeMessagesGorilla and ...Coder cross-check 16 MiB
// messages with independent clients: gorilla cuts text into frames of its
// write buffer's size, coder sends binary in one frame.
func TestRFC6455_9_LargeMessagesGorilla(t *testing.T) {
	srv := largeServer(t)
	d := gorilla.Dialer{WriteBufferSize: 64 << 10}
	c, _, err := d.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadLimit(maxLarge)
	p := textPayload(maxLarge)
	if err := c.WriteMessage(gorilla.TextMessage, p); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.ReadMessage()
	if err != nil || typ != gorilla.TextMessage || !bytes.Equal(got, p) {
		t.Fatalf("got type %d, %d bytes, %v", typ, len(got), err)
	}
	if err := c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, "")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); !gorilla.IsCloseError(err, 1000) {
		t.Fatalf("close: %v", err)
	}
}

func TestRFC6455_9_LargeMessagesCoder(t *testing.T) {
	srv := largeServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := coder.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(maxLarge)
	p := binaryPayload(maxLarge)
	if err := c.Write(ctx, coder.MessageBinary, p); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != coder.MessageBinary || !bytes.Equal(got, p) {
		t.Fatalf("got %v, %d bytes, %v", typ, len(got), err)
	}
	if err := c.Close(coder.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestRFC6455_10_4_MaxMessageSizeIsTheLimit: MaxMessageSize is the limit
// a client meets, with 1009 above it. Raised above the handler mailbox's
// byte bound (MailboxBytes, 1 MiB by default) and with the handler idle,
// a message up to MaxMessageSize is delivered: the mailbox bound is about
// a client outrunning its handler, and must not turn into a lower, silent
// message limit closed with 1008.
func TestRFC6455_10_4_MaxMessageSizeIsTheLimit(t *testing.T) {
	srv := startConformance(t, gateway.Config{MaxMessageSize: 4 << 20}, gateway.Echo{})
	c := dialRaw(t, srv)
	for _, n := range []int{1<<20 + 1, 4 << 20} {
		p := binaryPayload(n)
		c.send(binaryMsg(p))
		c.expectMessage(opBinary, p)
	}
	c.send(wframe{fin: true, op: opBinary, announce: 4<<20 + 1})
	c.expectCloseFrame(1009)
}
