package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testkit/raw"
)

// startServer runs a gateway on a free loopback port with cfg (Addr is
// overridden) and stops it when the test ends.
func startServer(t testing.TB, cfg gateway.Config, h gateway.Handler) *gateway.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	srv, err := gateway.NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

func wsURL(srv *gateway.Server) string { return "ws://" + srv.Addr().String() + "/ws" }

// rawClient speaks WebSocket byte by byte over a real TCP socket, so tests
// can send what no well-behaved library would.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	key  [4]byte
}

// dialRaw connects and completes the upgrade (testkit's raw client).
func dialRaw(t testing.TB, srv *gateway.Server) *rawClient {
	t.Helper()
	c := dialTCP(t, srv)
	r, err := raw.Upgrade(c.conn, srv.Addr().String(), "/ws")
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	c.r = r
	return c
}

// dialTCP connects without upgrading.
func dialTCP(t testing.TB, srv *gateway.Server) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16), key: codec.NewMaskKey()}
}

func (c *rawClient) writeRaw(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readHTTP reads one HTTP response header block and, with Content-Length,
// its body. It returns the status and everything read.
func (c *rawClient) readHTTP() (int, []byte) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf []byte
	var r codec.Response
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			c.t.Fatalf("reading HTTP response: %v (have %q)", err, buf)
		}
		buf = append(buf, b)
		n, perr := r.Parse(buf, 0)
		if perr != nil {
			c.t.Fatalf("bad HTTP response %q: %v", buf, perr)
		}
		if n > 0 {
			break
		}
	}
	if cl := r.Header("Content-Length"); cl != nil {
		var n int
		fmt.Sscan(string(cl), &n)
		body := make([]byte, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			c.t.Fatalf("reading body: %v", err)
		}
		buf = append(buf, body...)
	}
	return r.Status(), buf
}

// frame writes one masked frame with the given header fields.
func (c *rawClient) frame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	c.writeRaw(codec.AppendFrameMasked(nil, op, fin, payload, c.key))
}

// frameRsv writes a masked frame with reserved bits set.
func (c *rawClient) frameRsv(op ws.OpCode, rsv byte, payload []byte) {
	c.t.Helper()
	h := ws.Header{Fin: true, Rsv: rsv, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: c.key}
	b := codec.AppendHeader(nil, h)
	start := len(b)
	b = append(b, payload...)
	codec.Cipher(b[start:], c.key, 0)
	c.writeRaw(b)
}

// unmaskedFrame writes a frame without a mask, which servers must refuse.
func (c *rawClient) unmaskedFrame(op ws.OpCode, payload []byte) {
	c.t.Helper()
	c.writeRaw(codec.AppendFrame(nil, op, true, payload))
}

// readFrame reads one server frame.
func (c *rawClient) readFrame() (ws.Header, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return raw.ReadFrame(c.r)
}

// readMessage reads one data message, answering nothing and skipping
// pings and pongs.
func (c *rawClient) readMessage() (ws.OpCode, []byte) {
	c.t.Helper()
	var op ws.OpCode
	var msg []byte
	for {
		h, p, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("readMessage: %v", err)
		}
		switch {
		case h.OpCode == ws.OpPing || h.OpCode == ws.OpPong:
			continue
		case h.OpCode == ws.OpClose:
			code, reason, _ := codec.ParseCloseUnsafe(p)
			c.t.Fatalf("readMessage: got close %d %q", code, reason)
		case h.OpCode != ws.OpContinuation:
			op = h.OpCode
		}
		msg = append(msg, p...)
		if h.Fin {
			return op, msg
		}
	}
}

// expectClose reads the close frame and checks its code, then checks that
// the server ends the TCP connection. Only pings and pongs may come before
// the close: a data frame there is a failure, since a test that expects a
// close must not pass when the server delivered something first.
func (c *rawClient) expectClose(want ws.StatusCode) {
	c.t.Helper()
	for {
		h, p, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("waiting for close %d: %v", want, err)
		}
		if h.OpCode == ws.OpPing || h.OpCode == ws.OpPong {
			continue
		}
		if h.OpCode != ws.OpClose {
			c.t.Fatalf("waiting for close %d: got a %v frame of %d bytes first (%q...)", want, h.OpCode, len(p), p[:min(len(p), 32)])
		}
		code := ws.StatusNoStatusRcvd
		if len(p) >= 2 {
			code = ws.StatusCode(uint16(p[0])<<8 | uint16(p[1]))
		}
		if code != want {
			c.t.Fatalf("close code %d (%q), want %d", code, p[min(2, len(p)):], want)
		}
		break
	}
	// Answer as a client should, then the server must close TCP.
	c.conn.Write(codec.AppendCloseMasked(nil, want, "", c.key))
	c.expectEOF()
}

// expectCloseAfterData is expectClose for a connection that has data
// frames queued before its close (a slow reader's): it reads past them.
func (c *rawClient) expectCloseAfterData(want ws.StatusCode) {
	c.t.Helper()
	for {
		h, p, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("waiting for close %d: %v", want, err)
		}
		if h.OpCode == ws.OpClose {
			if code := codec.CloseCode(closeErr(p)); code != want {
				c.t.Fatalf("close code %d, want %d", code, want)
			}
			break
		}
	}
	c.conn.Write(codec.AppendCloseMasked(nil, want, "", c.key))
	c.expectEOF()
}

// closeErr is a close frame's payload as the error codec.CloseCode reads.
func closeErr(p []byte) error {
	code := ws.StatusNoStatusRcvd
	if len(p) >= 2 {
		code = ws.StatusCode(uint16(p[0])<<8 | uint16(p[1]))
	}
	return &codec.CloseError{Code: code}
}

// expectEOF checks that the server closes the connection (FIN or reset)
// and sends nothing more before it.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var extra []byte
	for {
		b, err := c.r.ReadByte()
		if err == nil {
			extra = append(extra, b)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatal("server did not close the connection")
		}
		if len(extra) > 0 {
			c.t.Fatalf("%d bytes before EOF: %q", len(extra), extra[:min(len(extra), 64)])
		}
		return
	}
}

// expectDrop checks that the server ends the connection without a close
// frame (a liveness drop): only the pings it sent meanwhile come first.
func (c *rawClient) expectDrop() {
	c.t.Helper()
	for {
		h, p, err := c.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("server did not close the connection")
			}
			return
		}
		if h.OpCode != ws.OpPing {
			c.t.Fatalf("before the drop: a %v frame %q", h.OpCode, p)
		}
	}
}
