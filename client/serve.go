package client

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// serve runs an upgraded connection: HELLO (with the envelope), the
// flush of what waited, then the read loop. It returns why the connection
// ended.
func (c *Client) serve(conn *websocket.Conn) error {
	env, app := parseSelected(conn.Subprotocol())
	c.protocol = app
	w := newWatch(conn, c.o.WriteTimeout)
	conn.SetPingHandler(func(data string) error {
		w.touch()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.o.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
		}
		return nil
	})
	conn.SetPongHandler(func(string) error { w.touch(); return nil })
	var resumed *Resumed
	if env {
		if !c.resumeOK {
			return c.protocolError(conn, "envelope chosen but not offered", false)
		}
		conn.SetReadLimit(c.o.ReadLimit + 1) // the type byte (docs/resume.md §2)
		_ = conn.SetReadDeadline(time.Now().Add(c.o.HandshakeTimeout))
		t, data, err := c.readMessage(conn, w)
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return c.protocolError(conn, "no HELLO from the server", true)
			}
			return readCause(err, w)
		}
		if t != websocket.TextMessage || len(data) == 0 || data[0] != typeHello {
			return c.protocolError(conn, "first message is not HELLO", true)
		}
		h, ok := parseHello(string(data[1:]))
		if !ok {
			return c.protocolError(conn, "malformed HELLO", false)
		}
		_ = conn.SetReadDeadline(time.Time{})
		if resumed, err = c.hello(conn, h); err != nil {
			return err
		}
		w.interval, w.timeout = time.Duration(h.beat)*time.Millisecond, time.Duration(h.timeout)*time.Millisecond
	} else {
		conn.SetReadLimit(c.o.ReadLimit)
		if c.session != "" {
			c.forget("unsupported")
		}
		c.wmu.Lock()
		c.flush(conn, false, nil)
		c.wmu.Unlock()
		if c.o.PingInterval > 0 {
			w.interval, w.timeout, w.probe = c.o.PingInterval, c.o.PongTimeout, true
		}
	}
	c.attempt = 0
	if m := c.pendingMis; m != nil {
		c.pendingMis = nil
		if f := c.o.OnMissed; f != nil {
			c.callback(func() { f(*m) })
		}
	}
	if resumed != nil {
		if f := c.o.OnResumed; f != nil {
			c.callback(func() { f(*resumed) })
		}
	} else if f := c.o.OnOpen; f != nil {
		o := Open{Protocol: app, Resumable: env && c.session != ""}
		c.callback(func() { f(o) })
	}
	c.signalFirst(nil) // after OnOpen: when Dial returns, it has been told
	w.start()
	defer w.stop()
	return c.readLoop(conn, env, w)
}

// hello applies a HELLO (docs/resume.md §3.2, §5).
func (c *Client) hello(conn *websocket.Conn, h hello) (*Resumed, error) {
	c.buffer = int(min(h.buffer, 1<<40))
	if h.status == "resumed" {
		c.wmu.Lock()
		c.mu.Lock()
		if c.session == "" || h.session != c.session || h.seq != c.rx || h.in < c.confirmed || h.in > c.tx {
			c.mu.Unlock()
			c.wmu.Unlock()
			return nil, c.protocolError(conn, "HELLO resumed does not match the session", false)
		}
		c.confirmLocked(h.in)
		lost := 0
		if c.evicted > h.in {
			lost = int(c.evicted - h.in)
		}
		// The server counts the re-sent messages from in+1: renumber.
		c.tx = h.in
		for i := range c.retained {
			c.tx++
			c.retained[i].idx = c.tx
		}
		c.evicted = h.in
		c.mu.Unlock()
		c.flush(conn, true, c.retained)
		c.wmu.Unlock()
		return &Resumed{Replay: int(min(h.replay, 1<<31)), LostSends: lost}, nil
	}
	if c.session != "" {
		reason := "unknown"
		if h.status == "missed" && h.reason != "" {
			reason = h.reason
		}
		c.forget(reason)
	}
	c.session = h.session
	c.wmu.Lock()
	c.flush(conn, true, nil)
	c.wmu.Unlock()
	return nil, nil
}

// readLoop reads until the connection ends.
func (c *Client) readLoop(conn *websocket.Conn, env bool, w *watch) error {
	for {
		t, data, err := c.readMessage(conn, w)
		if err != nil {
			return readCause(err, w)
		}
		if !env {
			c.deliver(MessageType(t), data)
			continue
		}
		if len(data) == 0 {
			return c.protocolError(conn, "empty message", false)
		}
		switch {
		case data[0] == typeData:
			c.rx++
			c.unacked += len(data) - 1
			if c.buffer > 0 && c.unacked >= c.buffer/2 {
				if err := c.ack(conn); err != nil {
					return err
				}
			}
			c.deliver(MessageType(t), data[1:])
		case t == websocket.TextMessage && data[0] == typeBeat:
			body := string(data[1:])
			seq, ok1 := countField(body, "seq", 0)
			in, ok2 := countField(body, "in", 0)
			c.mu.Lock()
			good := ok1 && ok2 && seq == c.rx && in >= c.confirmed && in <= c.tx
			if good {
				c.confirmLocked(in)
			}
			c.mu.Unlock()
			if !good {
				return c.protocolError(conn, "envelope count mismatch", false)
			}
			if err := c.ack(conn); err != nil {
				return err
			}
		default:
			return c.protocolError(conn, "unexpected message type", false)
		}
	}
}

func (c *Client) deliver(t MessageType, data []byte) {
	if f := c.o.OnMessage; f != nil {
		c.callback(func() { f(t, data) })
	}
}

// readMessage reads one whole message into the client's read buffer,
// valid until the next call.
func (c *Client) readMessage(conn *websocket.Conn, w *watch) (int, []byte, error) {
	t, r, err := conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	w.touch()
	if cap(c.rbuf) > 64<<10 {
		c.rbuf = nil // do not keep a large message's buffer
	}
	buf := c.rbuf[:0]
	if buf == nil {
		buf = make([]byte, 0, 512)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
	}
	c.rbuf = buf
	return t, buf, nil
}

// readCause turns a read error into the connection's end.
func readCause(err error, w *watch) error {
	if w.dead.Load() {
		return ErrSilence
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Reason: ce.Text}
	}
	return err
}

// ack sends ACK seq=rx (docs/resume.md §7).
func (c *Client) ack(conn *websocket.Conn) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.unacked = 0
	c.scratch = appendAck(c.scratch[:0], c.rx)
	_ = conn.SetWriteDeadline(time.Now().Add(c.o.WriteTimeout))
	return conn.WriteMessage(websocket.TextMessage, c.scratch)
}

// protocolError reports a broken envelope, closes with 1002 and forgets
// the session; with disableResume the client stops offering the envelope
// (a server that answers it without speaking it).
func (c *Client) protocolError(conn *websocket.Conn, msg string, disableResume bool) error {
	err := protocolError(msg)
	if f := c.o.OnError; f != nil {
		c.callback(func() { f(err) })
	}
	if disableResume {
		c.resumeOK = false
	}
	c.forget("protocol error")
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, msg), time.Now().Add(time.Second))
	return err
}
