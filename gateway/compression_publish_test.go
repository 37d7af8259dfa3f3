package gateway_test

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// TestCompressionPublishOnce: a published or broadcast message is
// compressed once, whatever the number of subscribers, and every kind of
// subscriber reads it right: compressed with the shared frame (the common
// agreement, and one asking client context takeover), plain (no offer, a
// server window under 15 bits, server context takeover: the shared frame
// has no place in their streams) and under compression_min_size plain for
// all. After the publishes, each subscriber's own compressed echo still
// works (a window that lost track would fail here).
func TestCompressionPublishOnce(t *testing.T) {
	var opened atomic.Int64
	h := gateway.HandlerFuncs{
		Open: func(c *gateway.Conn) {
			if err := c.Subscribe("news"); err != nil {
				panic(err)
			}
			opened.Add(1)
		},
		Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) { _ = c.Send(op, data) },
	}
	srv := startServer(t, gateway.Config{Loops: 4, CompressionContext: "on"}, h)
	type sub struct {
		name     string
		offer    *codec.DeflateParams
		wantZ    bool // gets the published message compressed
		copies   int
		sessions []*zClient
	}
	subs := []*sub{
		{name: "common", offer: &codec.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, wantZ: true, copies: 40},
		{name: "client context only", offer: &codec.DeflateParams{ServerNoContextTakeover: true, ClientMaxWindowBits: 15}, wantZ: true, copies: 10},
		{name: "server context", offer: &codec.DeflateParams{ClientMaxWindowBits: 15}, wantZ: false, copies: 10},
		{name: "server window 10", offer: &codec.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 10}, wantZ: false, copies: 10},
		{name: "no offer", wantZ: false, copies: 10},
	}
	total := 0
	for _, s := range subs {
		for range s.copies {
			s.sessions = append(s.sessions, dialDeflate(t, srv, s.offer))
		}
		total += s.copies
	}
	waitFor(t, func() bool { return srv.Subscribers("news") == total })
	before := srv.Stats().Compressions

	msgs := [][]byte{jsonish(4096), jsonish(100), jsonish(20000)}
	for _, m := range msgs {
		if n, err := srv.Publish("news", gateway.OpText, m); err != nil || n != total {
			t.Fatalf("Publish: %d, %v", n, err)
		}
	}
	if n, err := srv.Broadcast(gateway.OpText, msgs[0]); err != nil || n != total {
		t.Fatalf("Broadcast: %d, %v", n, err)
	}
	want := append(msgs, msgs[0])
	for _, s := range subs {
		for _, z := range s.sessions {
			for i, m := range want {
				_, got, compressed := z.readZ()
				if !bytes.Equal(got, m) {
					t.Fatalf("%s: message %d: %s", s.name, i, diffAt(got, m))
				}
				if wantZ := s.wantZ && len(m) >= gateway.DefaultCompressionMinSize; compressed != wantZ {
					t.Fatalf("%s: message %d of %d bytes: compressed %v, want %v", s.name, i, len(m), compressed, wantZ)
				}
			}
		}
	}
	// Three of the four messages are over the minimum size: three
	// compressions for 80 subscribers.
	if n := srv.Stats().Compressions - before; n != 3 {
		t.Fatalf("%d compressions for 4 publishes to %d subscribers, want 3", n, total)
	}
	for _, s := range subs {
		for _, z := range s.sessions {
			p := jsonish(5000)
			if z.ok {
				z.sendZ(opText, p, 0)
			} else {
				z.send(text(string(p)))
			}
			if _, got, _ := z.readZ(); !bytes.Equal(got, p) {
				t.Fatalf("%s: echo after the publishes: %s", s.name, diffAt(got, p))
			}
		}
	}
}
