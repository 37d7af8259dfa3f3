package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
)

type connState uint8

const (
	stIdle       connState = iota // not opened yet, or waiting to reconnect
	stConnecting                  // TCP connect in progress
	stHandshake                   // upgrade request sent, response not complete
	stOpen                        // upgraded
	stClosing                     // we sent a close frame and wait for the server's
	stDone                        // closed for good
)

// conn is one client connection. It holds no buffer while nothing is
// pending: reads go through the loop's buffer and only a partial handshake
// response, frame header or control frame is kept in carry; a data frame's
// payload is skipped as it arrives, keeping only its first 8 bytes (the
// timestamp). out exists only while the socket refuses bytes. The struct
// is 128 bytes (TestConnSize).
type conn struct {
	// Identity.
	fd    int32
	gen   uint32 // bumped on every open: stale timers and events are ignored
	gid   uint32 // global connection index, all processes
	idx   int32  // index in the loop's conns: epoll data and timer key
	state connState
	slow  bool

	// Connect state.
	attempt uint8 // failed reconnects in a row, for backoff
	dropped bool  // storm: this connection was dropped and has not come back

	// Read state.
	inMsg  bool  // a (possibly fragmented) data message is in progress
	fin    bool  // the current data frame is the message's last
	stampN uint8 // timestamp bytes collected so far

	// Scenario state.
	inflight int32 // echo and rate: messages sent and not yet back

	startNs int64    // when the current attempt began
	key     [24]byte // Sec-WebSocket-Key of the current attempt
	stamp   [8]byte  // first bytes of the current message: its send time
	skip    int64    // payload bytes of the current data frame still to come
	carry   []byte   // unparsed bytes across reads; nil when none

	// Write state.
	out []byte // bytes the socket did not take; nil when none
}

// closeWait is how long a close frame of ours waits for the server's.
const closeWait = 2 * time.Second

// maxHandshakeBytes bounds an upgrade response.
const maxHandshakeBytes = 8 << 10

func errnoName(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		if s := unix.ErrnoName(en); s != "" {
			return s
		}
	}
	return err.Error()
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// open starts a non-blocking connect for c, bound to its source address.
func (l *loop) open(c *conn, now int64) {
	cfg := l.r.cfg
	g := int(c.gid)
	src := len(cfg.sourceIPs)
	var tgt target
	if src > 0 {
		tgt = cfg.targets[(g/src)%len(cfg.targets)]
	} else {
		tgt = cfg.targets[g%len(cfg.targets)]
	}
	c.gen++
	c.startNs = now
	c.state = stConnecting
	if l.phase == phaseRamp && l.rampFirst == 0 {
		l.rampFirst = now
	}
	c.carry, c.out = nil, nil
	c.inMsg, c.skip, c.stampN, c.inflight = false, 0, 0, 0
	l.ctr.add(cAttempted, 1)
	l.ctr.add(cPending, 1)

	family := unix.AF_INET
	if !tgt.addr.Addr().Is4() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.fail(c, "socket: "+errnoName(err), now)
		return
	}
	c.fd = int32(fd)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if c.slow {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.slowRcvBuf)
	}
	if src > 0 {
		// Let connect pick the port per 4-tuple, so each source address
		// serves every target with the whole ephemeral range.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(cfg.sourceIPs[g%src], 0))); err != nil {
			l.fail(c, "bind: "+errnoName(err), now)
			return
		}
	}
	err = unix.Connect(fd, sockaddr(tgt.addr))
	if err != nil && err != unix.EINPROGRESS {
		l.fail(c, "connect: "+errnoName(err), now)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLRDHUP, Fd: c.idx, Pad: int32(c.gen)}
	if err := unix.EpollCtl(l.epf, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.fail(c, "epoll: "+errnoName(err), now)
		return
	}
	l.tm.push(timer{at: now + int64(cfg.handshakeTimeout), idx: c.idx, gen: c.gen, kind: tmHandshake})
}

// event handles readiness for c.
func (l *loop) event(c *conn, ev uint32) {
	now := l.r.now()
	if c.state == stConnecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if soerr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
			if err == nil {
				err = unix.Errno(soerr)
			}
			l.fail(c, "connect: "+errnoName(err), now)
			return
		}
		c.key = codec.NewClientKey()
		tgt := l.targetOf(c)
		l.wbuf = codec.AppendClientRequest(l.wbuf[:0], tgt.host, tgt.uri, c.key[:], nil, nil)
		c.state = stHandshake
		l.setEvents(c, unix.EPOLLIN|unix.EPOLLRDHUP)
		l.write(c, l.wbuf)
		return
	}
	if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		l.flush(c)
		if c.fd < 0 {
			return
		}
	}
	if c.slow && c.state == stOpen {
		// A slow connection does not read until the server gives up on it.
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.drainSlow(c, now)
		}
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.readable(c, now)
	}
}

func (l *loop) targetOf(c *conn) target {
	cfg := l.r.cfg
	g := int(c.gid)
	if src := len(cfg.sourceIPs); src > 0 {
		return cfg.targets[(g/src)%len(cfg.targets)]
	}
	return cfg.targets[g%len(cfg.targets)]
}

// readable reads what the socket has, at most a few buffers per event so
// one busy connection does not starve the others (epoll is level-triggered
// and calls again).
func (l *loop) readable(c *conn, now int64) {
	for range 4 {
		n, err := unix.Read(int(c.fd), l.rbuf)
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
		n, err := unix.Read(int(c.fd), l.rbuf)
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
			if c.stampN < 8 {
				c.stampN += uint8(copy(c.stamp[c.stampN:], data[:m]))
			}
			c.skip -= m
			data = data[m:]
			if c.skip == 0 && c.fin {
				l.message(c, now)
			}
			continue
		}
		h, hn, err := codec.ParseHeader(data, codec.RoleClient, 0)
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
		sent := int64(binary.LittleEndian.Uint64(c.stamp[:]))
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

// established is called when c's upgrade succeeded.
func (l *loop) established(c *conn, now int64) {
	l.ctr.add(cPending, -1)
	l.ctr.add(cEstablished, 1)
	l.ctr.add(cOpen, 1)
	c.state = stOpen
	c.attempt = 0
	record(l.connectHist, (now-c.startNs)/1e3)
	if l.phase == phaseRamp {
		l.rampLast = now
	}
	if c.dropped {
		c.dropped = false
		l.ctr.add(cRecovered, 1)
		if s := l.r.stormStart.Load(); s > 0 {
			record(l.recovery, (now-s)/1e6)
		}
	}
	if c.slow {
		l.setEvents(c, unix.EPOLLRDHUP)
	}
	if l.phase == phaseSteady && l.r.cfg.scenario == scEcho && !c.slow {
		for k := 0; k < l.r.cfg.inflight; k++ {
			l.sendData(c, l.r.cfg.size, now)
		}
	}
}

// fail ends an attempt that did not reach the upgrade.
func (l *loop) fail(c *conn, cause string, now int64) {
	l.errorf(cause)
	l.ctr.add(cFailed, 1)
	l.ctr.add(cPending, -1)
	l.closeFD(c)
	c.state = stDone
	if l.r.cfg.scenario == scStorm && c.dropped && l.phase == phaseSteady {
		l.reopenLater(c, now)
	}
}

// peerGone is the server closing an open connection (how: close code,
// "eof" or an errno name), or the end of our own closing handshake.
func (l *loop) peerGone(c *conn, how string, now int64) {
	switch c.state {
	case stClosing:
		l.endClosed(c)
		return
	case stHandshake, stConnecting:
		l.fail(c, "handshake: "+how, now)
		return
	}
	if c.slow {
		l.ctr.add(cSlowClosed, 1)
		l.slowCodes[how]++
	} else {
		l.closeCodes[how]++
	}
	l.ctr.add(cClosedByServer, 1)
	l.lostOpen(c, now, true)
}

// lostOpen releases an open connection that ended before our close.
func (l *loop) lostOpen(c *conn, now int64, byServer bool) {
	if c.inflight > 0 {
		l.ctr.add(cLost, int64(c.inflight))
		l.ctr.add(cInflight, -int64(c.inflight))
		c.inflight = 0
	}
	l.ctr.add(cOpen, -1)
	l.closeFD(c)
	c.state = stDone
	if byServer && l.r.cfg.scenario == scStorm && l.phase == phaseSteady {
		l.r.stormStart.CompareAndSwap(0, now)
		l.ctr.add(cDropped, 1)
		c.dropped = true
		l.reopenLater(c, now)
	}
}

// endClosed finishes a connection we closed, or one the run is done with.
func (l *loop) endClosed(c *conn) {
	if c.inflight > 0 {
		l.ctr.add(cLost, int64(c.inflight))
		l.ctr.add(cInflight, -int64(c.inflight))
		c.inflight = 0
	}
	l.ctr.add(cOpen, -1)
	l.closeFD(c)
	c.state = stDone
}

// stormDrop drops every open connection at once, as a network blip would,
// and schedules each to come back.
func (l *loop) stormDrop(now int64) {
	l.r.stormStart.CompareAndSwap(0, now)
	for i := range l.conns {
		c := &l.conns[i]
		if c.state != stOpen {
			continue
		}
		l.ctr.add(cDropped, 1)
		l.ctr.add(cOpen, -1)
		l.closeFD(c)
		c.state = stDone
		c.dropped = true
		l.reopenLater(c, now)
	}
}

// reopenLater schedules c's next attempt with full-jitter exponential
// backoff: uniform in [0, min(max, base*2^attempt)].
func (l *loop) reopenLater(c *conn, now int64) {
	cfg := l.r.cfg
	bound := min(int64(cfg.backoffMax), int64(cfg.backoffBase)<<min(c.attempt, 30))
	if c.attempt < 255 {
		c.attempt++
	}
	c.state = stIdle
	c.gen++
	l.tm.push(timer{at: now + l.rng.Int64N(bound+1), idx: c.idx, gen: c.gen, kind: tmReopen})
}

func (l *loop) closeFD(c *conn) {
	if c.fd >= 0 {
		_ = unix.Close(int(c.fd)) // close also removes it from the epoll set
		c.fd = -1
	}
	c.carry, c.out = nil, nil
	c.gen++
}

func (l *loop) setEvents(c *conn, events uint32) {
	if len(c.out) > 0 {
		events |= unix.EPOLLOUT
	}
	ev := unix.EpollEvent{Events: events, Fd: c.idx, Pad: int32(c.gen)}
	_ = unix.EpollCtl(l.epf, unix.EPOLL_CTL_MOD, int(c.fd), &ev)
}

func (l *loop) readEvents(c *conn) uint32 {
	if c.slow && c.state == stOpen {
		return unix.EPOLLRDHUP
	}
	return unix.EPOLLIN | unix.EPOLLRDHUP
}

// write sends p on c, queueing what the socket does not take. It reports
// false if the message was dropped or the connection failed.
func (l *loop) write(c *conn, p []byte) bool {
	if len(c.out) > 0 {
		if len(c.out)+len(p) > maxOut {
			l.errorf("send: queue over 8 MiB, message dropped")
			return false
		}
		c.out = append(c.out, p...)
		return true
	}
	n, err := unix.Write(int(c.fd), p)
	for err == unix.EINTR {
		n, err = unix.Write(int(c.fd), p)
	}
	if err != nil && err != unix.EAGAIN {
		l.writeFailed(c, err)
		return false
	}
	n = max(n, 0)
	l.ctr.add(cBytesSent, int64(n))
	if n < len(p) {
		c.out = append([]byte(nil), p[n:]...)
		l.setEvents(c, l.readEvents(c))
	}
	return true
}

// flush writes queued bytes once the socket takes them again.
func (l *loop) flush(c *conn) {
	n, err := unix.Write(int(c.fd), c.out)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.writeFailed(c, err)
		return
	}
	n = max(n, 0)
	l.ctr.add(cBytesSent, int64(n))
	if n == len(c.out) {
		c.out = nil
		l.setEvents(c, l.readEvents(c))
		return
	}
	c.out = append(c.out[:0], c.out[n:]...)
}

func (l *loop) writeFailed(c *conn, err error) {
	now := l.r.now()
	switch c.state {
	case stConnecting, stHandshake:
		l.fail(c, "write: "+errnoName(err), now)
	case stClosing:
		l.endClosed(c)
	default:
		l.peerGone(c, errnoName(err), now)
	}
}
