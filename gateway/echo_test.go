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

var echoLengths = []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}

func payload(n int, text bool) []byte {
	p := make([]byte, n)
	for i := range p {
		if text {
			p[i] = 'a' + byte(i%26)
		} else {
			p[i] = byte(i * 7)
		}
	}
	return p
}

func TestEchoGorilla(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, typ := range []int{gorilla.TextMessage, gorilla.BinaryMessage} {
		for _, n := range echoLengths {
			t.Run(fmt.Sprintf("type%d/%d", typ, n), func(t *testing.T) {
				msg := payload(n, typ == gorilla.TextMessage)
				if err := c.WriteMessage(typ, msg); err != nil {
					t.Fatal(err)
				}
				gotType, got, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if gotType != typ || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes (type %d): got %d bytes type %d", n, typ, len(got), gotType)
				}
			})
		}
	}
	if err := c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, "bye")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); !gorilla.IsCloseError(err, 1000) {
		t.Fatalf("after close: %v, want close 1000", err)
	}
}

func TestEchoCoder(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := coder.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(2 << 20)
	for _, typ := range []coder.MessageType{coder.MessageText, coder.MessageBinary} {
		for _, n := range echoLengths {
			t.Run(fmt.Sprintf("%v/%d", typ, n), func(t *testing.T) {
				msg := payload(n, typ == coder.MessageText)
				if err := c.Write(ctx, typ, msg); err != nil {
					t.Fatal(err)
				}
				gotType, got, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if gotType != typ || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes (%v): got %d bytes %v", n, typ, len(got), gotType)
				}
			})
		}
	}
	// coder pings and waits for the pong, which a concurrent reader must
	// consume: CloseRead starts one.
	c.CloseRead(ctx)
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Close(coder.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}
