package main

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
	zmsg   bool  // the message in progress is compressed (--compression)

	retrying bool // --retries: waiting for the next attempt after a failed one

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

// dial makes a non-blocking socket (setup sees it first), binds it to
// source address ip if valid (bindSource) and starts its connect to dst.
// A first dial binds its own port; should connect find that port's
// 4-tuple taken anyway, it goes again from a new socket with the kernel's
// choice (retried). On error, stage names the call that failed; the
// socket is closed then.
func dial(family int, ip netip.Addr, first bool, k int, dst netip.AddrPort, setup func(fd int)) (fd int, retried bool, stage string, err error) {
	for {
		if fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
			return -1, retried, "socket", err
		}
		setup(fd)
		if ip.IsValid() {
			if err = bindSource(fd, ip, first, k); err != nil {
				_ = unix.Close(fd)
				return -1, retried, "bind", err
			}
		}
		err = unix.Connect(fd, sockaddr(dst))
		if err == unix.EADDRNOTAVAIL && first && ip.IsValid() {
			_ = unix.Close(fd)
			first, retried = false, true
			continue
		}
		if err != nil && err != unix.EINPROGRESS {
			_ = unix.Close(fd)
			return -1, retried, "connect", err
		}
		return fd, retried, "", nil
	}
}

// bindSource binds fd to source address ip before its connect. On a
// connection's first dial (first) it takes port k of the ephemeral range
// itself: the k-th connection from each source address gets the k-th
// port, so the kernel need not search for a free one. Left to connect
// (IP_BIND_ADDRESS_NO_PORT), that search probes port after port and
// checks each 4-tuple against the established table: at 900,000 open
// connections it was 29% of the machine's CPU (bench/million.sh,
// `perf record -a`: __inet_check_established under connect). A
// redial, a port past the range, or one some other socket holds goes
// back to the kernel's choice.
func bindSource(fd int, ip netip.Addr, first bool, k int) error {
	if lo, hi := ephemeralPorts(); first && k <= hi-lo {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if unix.Bind(fd, sockaddr(netip.AddrPortFrom(ip, uint16(lo+k)))) == nil {
			return nil
		}
	}
	// Let connect pick the port per 4-tuple, so each source address
	// serves every target with the whole ephemeral range.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	return unix.Bind(fd, sockaddr(netip.AddrPortFrom(ip, 0)))
}

// ephemeralPorts is the kernel's ephemeral port range
// (net.ipv4.ip_local_port_range), read once; 0, -1 if it cannot be read.
var ephemeralPorts = sync.OnceValues(func() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, -1
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, -1
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi < lo {
		return 0, -1
	}
	return lo, hi
})

// open starts a non-blocking connect for c, bound to its source address.
func (l *loop) open(c *conn, now int64) {
	cfg := l.r.cfg
	g := int(c.gid)
	src := len(cfg.sourceIPs)
	tgt := l.targetOf(c)
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
	var ip netip.Addr
	if src > 0 {
		ip = cfg.sourceIPs[g%src]
	}
	setup := func(fd int) {
		c.fd = int32(fd)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if c.slow {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.slowRcvBuf)
		}
	}
	fd, retried, stage, err := dial(family, ip, c.gen == 1, g/max(src, 1), tgt.addr, setup)
	if retried {
		l.ctr.add(cPortRetries, 1)
	}
	if err != nil {
		c.fd = -1 // dial closed it
		l.fail(c, stage+": "+errnoName(err), now)
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
		extra := l.requestExtra()
		if secret := l.r.cfg.jwtSecret; secret != "" {
			extra = appendAuthHeader(extra, []byte(secret), c.gid, time.Now())
		}
		l.wbuf = codec.AppendClientRequest(l.wbuf[:0], tgt.host, tgt.uri, c.key[:], nil, extra)
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

// targetOf spreads connections over every (source, target) pair: source
// g mod S, target (g div S) mod T.
func (l *loop) targetOf(c *conn) target {
	cfg := l.r.cfg
	g := int(c.gid)
	if src := len(cfg.sourceIPs); src > 0 {
		return cfg.targets[(g/src)%len(cfg.targets)]
	}
	return cfg.targets[g%len(cfg.targets)]
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
	switch {
	case c.dropped && l.reconnecting():
		l.reopenLater(c, now)
	case !c.dropped && l.phase == phaseRamp && int(c.attempt) < l.r.cfg.retries:
		// A phone's client tries again after a failed connect: so does
		// the ramp, and the report tells retries from connections that
		// never came up.
		l.ctr.add(cRetries, 1)
		l.ctr.add(cRetryWait, 1)
		c.retrying = true
		l.reopenLater(c, now)
	}
}

// retryDue opens c's next attempt when its backoff has passed: while the
// ramp lasts, and within --max-pending (else a little later). Outside the
// ramp the connection stays down and is counted as never up.
func (l *loop) retryDue(c *conn, t timer, now int64) {
	if l.phase != phaseRamp {
		return // still counted in retry_wait: the report's never_up includes it
	}
	if l.maxPending > 0 && l.ctr[cPending].Load() >= l.maxPending {
		l.tm.push(timer{at: now + int64(retryRecheck), idx: t.idx, gen: t.gen, kind: tmReopen})
		return
	}
	c.retrying = false
	l.ctr.add(cRetryWait, -1)
	l.open(c, now)
}

// retryRecheck is how long a due retry waits for a free --max-pending slot.
const retryRecheck = 20 * time.Millisecond

// peerGone is the server closing an open connection (how: close code,
// "eof" or an errno name), or the end of our own closing handshake.
func (l *loop) peerGone(c *conn, how string, now int64) {
	switch c.state {
	case stClosing:
		// The server closed TCP without answering our close frame.
		l.ctr.add(cCloseEOF, 1)
		l.closeAnswered(now)
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
	if byServer && l.reconnecting() {
		l.r.stormStart.CompareAndSwap(0, now)
		l.ctr.add(cDropped, 1)
		c.dropped = true
		l.reopenLater(c, now)
	}
}

// closeAnswered notes that the server answered one of this loop's close
// frames (with its own, or by closing TCP).
func (l *loop) closeAnswered(now int64) {
	l.lastCloseAnswer = now
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

// reconnecting reports whether a lost connection comes back: in a storm,
// until the measured phase ends. The ramp counts too: a server may close
// connections before this loop has noticed that the ramp is over.
func (l *loop) reconnecting() bool {
	return l.r.cfg.scenario == scStorm && (l.phase == phaseRamp || l.phase == phaseHold || l.phase == phaseSteady)
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
