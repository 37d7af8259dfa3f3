package main

import (
	gio "github.com/panjf2000/gnet/v2/pkg/io"
	"golang.org/x/sys/unix"
)

// The write side of a connection: frames are built in the loop's scratch
// and written at once; only what the socket refuses is queued in out.

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
	n, err := gio.RawWrite(int(c.fd), p)
	for err == unix.EINTR {
		n, err = gio.RawWrite(int(c.fd), p)
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
	n, err := gio.RawWrite(int(c.fd), c.out)
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
