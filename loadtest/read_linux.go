package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/gobwas/ws"
	gio "github.com/panjf2000/gnet/v2/pkg/io"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
)

// The read side of a connection: bytes from the loop's buffer are parsed
// in place; only a split header or control frame is copied into carry.

// readable reads what the socket has, at most a few buffers per event so
// one busy connection does not starve the others (epoll is level-triggered
// and calls again).
func (l *loop) readable(c *conn, now int64) {
	for range 4 {
		n, err := gio.RawRead(int(c.fd), l.rbuf)
		if n > 0 {
			l.ctr.add(cBytesReceived, int64(n))
			l.consume(c, l.rbuf[:n], l.r.now())
			if c.fd < 0 || n < len(l.rbuf) {
				return
			}
			continue
		}
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case err == nil:
			l.peerGone(c, "eof", now)
		default:
			l.peerGone(c, errnoName(err), now)
		}
		return
	}
}

// drainSlow reads everything a slow connection has buffered once the
// server has shut it down, to find the close frame (if any) behind the
// messages it never read.
func (l *loop) drainSlow(c *conn, now int64) {
	for range 1 << 12 { // at most 256 MiB
		n, err := gio.RawRead(int(c.fd), l.rbuf)
		if n > 0 {
			l.ctr.add(cBytesReceived, int64(n))
			l.consume(c, l.rbuf[:n], now)
			if c.fd < 0 {
				return
			}
			continue
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == nil:
			l.peerGone(c, "eof", now)
		case err == unix.EAGAIN:
			return // RDHUP with data still coming: the next event reads on
		default:
			l.peerGone(c, errnoName(err), now)
		}
		return
	}
}

// consume parses bytes read from c.
func (l *loop) consume(c *conn, data []byte, now int64) {
	if len(c.carry) > 0 {
		c.carry = append(c.carry, data...)
		data, c.carry = c.carry, nil
	}
	if c.state == stHandshake {
		// data holds every byte of the response so far: parse it afresh
		// with the loop's Response, so a connection keeps no parser
		// state. A response split across reads is rare and small.
		r := &l.resp
		r.Reset()
		n, err := r.Parse(data, maxHandshakeBytes)
		if err != nil {
			l.fail(c, "handshake: "+strings.TrimPrefix(err.Error(), "codec: "), now)
			return
		}
		if n == 0 {
			c.carry = append([]byte(nil), data...)
			return
		}
		if err := r.Check(c.key[:]); err != nil {
			if errors.Is(err, codec.ErrResponseStatus) {
				l.fail(c, "handshake: status "+strconv.Itoa(r.Status()), now)
			} else {
				l.fail(c, "handshake: "+strings.TrimPrefix(err.Error(), "codec: "), now)
			}
			return
		}
		if why := l.checkDeflate(r); why != "" {
			l.fail(c, why, now)
			return
		}
		r.Reset() // drop the reference to data
		l.established(c, now)
		if c.fd < 0 {
			return
		}
		data = data[n:]
	}
	for len(data) > 0 {
		if c.skip > 0 {
			m := min(int64(len(data)), c.skip)
			if c.zmsg {
				l.gather(c, data[:m])
			} else {
				l.ctr.add(cPayloadReceived, m)
				if c.stampN < 8 {
					c.stampN += uint8(copy(c.stamp[c.stampN:], data[:m]))
				}
			}
			c.skip -= m
			data = data[m:]
			if c.skip == 0 && c.fin {
				l.message(c, now)
			}
			continue
		}
		h, hn, err := codec.ParseHeader(data, codec.RoleClient, l.rsv())
		if err != nil {
			l.protocolError(c, err, now)
			return
		}
		if hn == 0 {
			break
		}
		if h.OpCode.IsControl() {
			end := hn + int(h.Length)
			if len(data) < end {
				break
			}
			l.control(c, h.OpCode, data[hn:end], now)
			if c.fd < 0 {
				return
			}
			data = data[end:]
			continue
		}
		data = data[hn:]
		if h.OpCode == ws.OpContinuation {
			if !c.inMsg {
				l.protocolError(c, codec.ErrContinuationUnexpected, now)
				return
			}
		} else {
			if c.inMsg {
				l.protocolError(c, codec.ErrContinuationExpected, now)
				return
			}
			c.inMsg, c.stampN = true, 0
			c.zmsg = h.Rsv&codec.Rsv1 != 0
		}
		c.fin = h.Fin
		c.skip = h.Length
		if c.skip == 0 && c.fin {
			l.message(c, now)
		}
	}
	if len(data) > 0 {
		// A partial header or control frame: at most 139 bytes.
		c.carry = append([]byte(nil), data...)
	}
}

// message is called when a whole data message has arrived on c.
func (l *loop) message(c *conn, now int64) {
	c.inMsg = false
	if c.zmsg {
		c.zmsg = false
		if err := l.inflated(c); err != nil {
			l.protocolError(c, err, now)
			return
		}
	}
	if c.slow {
		l.ctr.add(cSlowRecv, 1)
		return
	}
	l.ctr.add(cReceived, 1)
	if c.inflight > 0 {
		c.inflight--
		l.ctr.add(cInflight, -1)
	}
	if c.stampN == 8 {
		sent := stampOf(c)
		record(l.lat, (now-sent)/1e3)
	}
	if l.r.cfg.scenario == scEcho && l.phase == phaseSteady && c.state == stOpen {
		l.sendData(c, l.r.cfg.size, now)
	}
}

// control handles a ping, pong or close frame (RFC 6455 §5.5).
func (l *loop) control(c *conn, op ws.OpCode, p []byte, now int64) {
	switch op {
	case ws.OpPing:
		if c.state == stOpen && !c.slow {
			l.wbuf = codec.AppendFrameMasked(l.wbuf[:0], ws.OpPong, true, p, codec.NewMaskKey())
			l.write(c, l.wbuf)
		}
	case ws.OpClose:
		code, _, err := codec.ParseCloseUnsafe(p)
		if err != nil {
			l.protocolError(c, err, now)
			return
		}
		if c.state == stClosing {
			l.ctr.add(cCloseAnswered, 1)
			record(l.closeHist, (now-c.startNs)/1e3)
			l.closeAnswered(now)
			l.endClosed(c)
			return
		}
		// The server closes: answer with its code (RFC 6455 §5.5.1) and
		// release the socket.
		reply := code
		if code == ws.StatusNoStatusRcvd {
			reply = 0
		}
		l.wbuf = codec.AppendCloseMasked(l.wbuf[:0], reply, "", codec.NewMaskKey())
		l.write(c, l.wbuf)
		if c.fd >= 0 {
			l.peerGone(c, strconv.Itoa(int(code)), now)
		}
	}
}

func (l *loop) protocolError(c *conn, err error, now int64) {
	l.errorf("protocol: " + err.Error())
	if c.state == stOpen || c.state == stClosing {
		code := codec.CloseCode(err)
		l.wbuf = codec.AppendCloseMasked(l.wbuf[:0], code, "", codec.NewMaskKey())
		l.write(c, l.wbuf)
		if c.fd >= 0 {
			l.lostOpen(c, now, false)
		}
		return
	}
	l.fail(c, "protocol", now)
}
