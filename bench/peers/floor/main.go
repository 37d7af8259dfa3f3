//go:build linux

// Command floor is the syscall floor of the comparison: a WebSocket server
// with no framework at all. One goroutine runs one epoll instance (the
// driver gives it GOMAXPROCS 1, as every server; locking it to its thread
// made no measurable difference, and gnet does not lock either); it accepts without blocking, parses the upgrade request
// and the frames itself, and makes one read and one write per message
// (echo), or one write per delivery (broadcast). Those calls are raw
// system calls (raw.go), so the Go scheduler's hand-off of a P in the
// middle of a write, a cost of Go and not of the kernel, is not in the
// floor either. Whatever a real server spends above this one is its own
// overhead.
//
// It must never do anything a server needs but a floor does not: no
// origin, version or size checks beyond what keeps it from crashing, no
// timeouts, no pings of its own, no extensions. Do not use it as a model.
//
//	floor --listen 127.0.0.1:8080 --path /ws             # echo each frame back
//	floor --listen 127.0.0.1:8080 --path /ws --broadcast # each message to every client
//
// GET /healthz answers 200; a client ping is answered with a pong, a close
// with a close.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "listen address (IPv4 host:port)")
	path := flag.String("path", "/ws", "WebSocket path")
	broadcast := flag.Bool("broadcast", false, "send every data message to every upgraded client, the sender included")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil || !ap.Addr().Is4() {
		fmt.Fprintf(os.Stderr, "floor: --listen wants an IPv4 host:port, not %q\n", *listen)
		os.Exit(2)
	}
	// A signal handler goroutine would share the thread's work; the
	// default action of SIGTERM (exit) is what the driver wants, and an
	// interrupt is the same.
	signal.Ignore(syscall.SIGPIPE)
	s, err := newServer(ap, *path, *broadcast)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	if err := s.run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// Connection states.
const (
	stFree    uint8 = iota // no connection on this descriptor
	stRequest              // reading the HTTP request
	stOpen                 // upgraded
)

// conn is what the server keeps per descriptor: a state byte, its place in
// the broadcast list, and the bytes a read left unparsed or a write left
// unsent. Both slices are nil while nothing is pending, which is always for
// an idle connection.
type conn struct {
	state uint8
	sub   int32 // index in server.subs; -1 when not in it
	in    []byte
	out   []byte
}

// maxFrame bounds a frame's payload (the driver sends at most 16 MiB), and
// maxOut what one connection may leave unsent before it is dropped.
const (
	maxFrame   = 16 << 20
	maxRequest = 8 << 10
	maxOut     = 8 << 20
)

type server struct {
	lfd       int
	epfd      int
	path      string
	broadcast bool

	conns  []conn  // indexed by descriptor
	subs   []int32 // upgraded descriptors, for broadcast
	events []unix.EpollEvent
	rbuf   []byte // one read buffer for every connection
	wbuf   []byte // replies to one read, written at once
	frame  []byte // a broadcast frame, encoded once
}

func newServer(ap netip.AddrPort, path string, broadcast bool) (*server, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return nil, fmt.Errorf("bind %v: %w", ap, err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return nil, err
	}
	return &server{
		lfd: lfd, epfd: epfd, path: path, broadcast: broadcast,
		events: make([]unix.EpollEvent, 256),
		rbuf:   make([]byte, 64<<10),
	}, nil
}

func (s *server) run() error {
	for {
		// Poll first (raw, cannot block); block only when nothing is ready.
		n, err := waitNow(s.epfd, s.events)
		if err == nil && n == 0 {
			n, err = unix.EpollWait(s.epfd, s.events, -1)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for i := range n {
			ev := s.events[i]
			fd := int(ev.Fd)
			if fd == s.lfd {
				s.accept()
				continue
			}
			if fd >= len(s.conns) || s.conns[fd].state == stFree {
				continue // closed earlier in this batch
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				s.flush(fd)
				if s.conns[fd].state == stFree {
					continue
				}
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				s.readable(fd)
			}
		}
	}
}

func (s *server) accept() {
	for {
		fd, _, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or EMFILE: the backlog keeps the rest
		}
		// As Go's net package and gnet do for every accepted socket.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		for fd >= len(s.conns) {
			s.conns = append(s.conns, conn{sub: -1})
		}
		s.conns[fd] = conn{state: stRequest, sub: -1}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			s.drop(fd)
		}
	}
}

// readable makes one read and handles what it brought.
func (s *server) readable(fd int) {
	n, err := rawRead(fd, s.rbuf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 {
		s.drop(fd)
		return
	}
	c := &s.conns[fd]
	data := s.rbuf[:n]
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	s.wbuf = s.wbuf[:0]
	var rest []byte
	var ok bool
	if c.state == stRequest {
		rest, ok = s.request(fd, data)
	} else {
		rest, ok = s.frames(fd, data)
	}
	if !ok {
		if len(s.wbuf) > 0 {
			_, _ = rawWrite(fd, s.wbuf)
		}
		s.drop(fd)
		return
	}
	c = &s.conns[fd]
	if c.state == stFree {
		return // a broadcast write to the sender itself failed
	}
	if len(rest) > 0 {
		c.in = append(c.in[:0:0], rest...)
	} else {
		c.in = nil
	}
	if len(s.wbuf) > 0 {
		s.send(fd, s.wbuf)
	}
}

// send writes p to fd with one write, or queues it behind bytes already
// waiting; what the socket refuses waits for EPOLLOUT.
func (s *server) send(fd int, p []byte) {
	c := &s.conns[fd]
	if len(c.out) > 0 {
		if len(c.out) > maxOut-len(p) {
			s.drop(fd)
			return
		}
		c.out = append(c.out, p...)
		return
	}
	n, err := rawWrite(fd, p)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		s.drop(fd)
		return
	}
	n = max(n, 0)
	if n < len(p) {
		c.out = append([]byte(nil), p[n:]...)
		_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(fd)})
	}
}

func (s *server) flush(fd int) {
	c := &s.conns[fd]
	if len(c.out) == 0 {
		return
	}
	n, err := rawWrite(fd, c.out)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		s.drop(fd)
		return
	}
	n = max(n, 0)
	if n < len(c.out) {
		c.out = append(c.out[:0], c.out[n:]...)
		return
	}
	c.out = nil
	_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

// drop closes fd and forgets it.
func (s *server) drop(fd int) {
	c := &s.conns[fd]
	if c.state == stFree {
		return
	}
	if c.sub >= 0 {
		// Swap-remove from the broadcast list.
		last := s.subs[len(s.subs)-1]
		s.subs[c.sub] = last
		s.conns[last].sub = c.sub
		s.subs = s.subs[:len(s.subs)-1]
	}
	*c = conn{sub: -1}
	_ = unix.Close(fd) // also leaves the epoll set
}

// upgraded puts fd in the open state and, in broadcast mode, on the list.
func (s *server) upgraded(fd int) {
	c := &s.conns[fd]
	c.state = stOpen
	if s.broadcast {
		c.sub = int32(len(s.subs))
		s.subs = append(s.subs, int32(fd))
	}
}

// publish sends one server frame to every upgraded connection, one write
// each: the broadcast floor.
func (s *server) publish(op byte, payload []byte) {
	s.frame = appendFrame(s.frame[:0], op, true, payload)
	// drop swap-removes from subs: walk it backwards so a drop never
	// moves an unvisited entry behind the cursor.
	for i := len(s.subs) - 1; i >= 0; i-- {
		if i < len(s.subs) {
			s.send(int(s.subs[i]), s.frame)
		}
	}
}
