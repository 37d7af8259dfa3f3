package main

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// boundPort returns fd's local port.
func boundPort(t *testing.T, fd int) int {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// acceptAll listens on loopback and accepts every connection until the
// test ends; it returns the address.
func acceptAll(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // when the listener closes at cleanup
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func tcpSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// A first dial takes the k-th ephemeral port of its source address
// itself and connects from it; a redial, a k past the range and a port
// that another socket holds leave the port to connect.
func TestBindSourcePorts(t *testing.T) {
	lo, hi := ephemeralPorts()
	if hi < lo+100 {
		t.Skipf("ephemeral range %d-%d", lo, hi)
	}
	dst := sockaddr(acceptAll(t))
	src := netip.MustParseAddr("127.0.0.7")

	// The k-th port, and a connection from it.
	k := hi - lo - 3
	fd := tcpSocket(t)
	if err := bindSource(fd, src, true, k); err != nil {
		t.Fatal(err)
	}
	if p := boundPort(t, fd); p != lo+k {
		t.Fatalf("first dial bound port %d, want %d", p, lo+k)
	}
	if err := unix.Connect(fd, dst); err != nil {
		t.Fatal(err)
	}
	if p := boundPort(t, fd); p != lo+k {
		t.Fatalf("connected from port %d, want %d", p, lo+k)
	}

	// A port another socket holds (listening, so it conflicts even with
	// SO_REUSEADDR): back to connect's choice.
	holder := tcpSocket(t)
	if err := unix.Bind(holder, sockaddr(netip.AddrPortFrom(src, uint16(lo+k-1)))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(holder, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		first bool
		k     int
	}{{"held port", true, k - 1}, {"redial", false, k - 2}, {"past the range", true, hi - lo + 1}} {
		fd := tcpSocket(t)
		if err := bindSource(fd, src, c.first, c.k); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p := boundPort(t, fd); p != 0 {
			t.Fatalf("%s: bound port %d before connect, want none (IP_BIND_ADDRESS_NO_PORT)", c.name, p)
		}
		if err := unix.Connect(fd, dst); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p := boundPort(t, fd); p == 0 || p == lo+k-1 {
			t.Fatalf("%s: connected from port %d", c.name, p)
		}
	}
}

// A first dial whose own port's 4-tuple is taken (here by another socket
// bound to the same port with SO_REUSEADDR and connected to the same
// target) goes again with the kernel's port, and says so.
func TestDialRetriesTakenTuple(t *testing.T) {
	lo, hi := ephemeralPorts()
	if hi < lo+100 {
		t.Skipf("ephemeral range %d-%d", lo, hi)
	}
	dst := acceptAll(t)
	src := netip.MustParseAddr("127.0.0.9")
	k := hi - lo - 7
	var fds []int
	setup := func(fd int) { fds = append(fds, fd) }
	first, retried, _, err := dial(unix.AF_INET, src, true, k, dst, setup)
	if err != nil || retried {
		t.Fatalf("first: %v, retried %v", err, retried)
	}
	defer unix.Close(first)
	waitWritable(t, first)
	if p := boundPort(t, first); p != lo+k {
		t.Fatalf("first dial from port %d, want %d", p, lo+k)
	}
	second, retried, stage, err := dial(unix.AF_INET, src, true, k, dst, setup)
	if err != nil {
		t.Fatalf("second: %s: %v", stage, err)
	}
	defer unix.Close(second)
	if !retried || len(fds) != 3 {
		t.Fatalf("retried %v after %d sockets, want a retry on a third socket", retried, len(fds))
	}
	waitWritable(t, second)
	if p := boundPort(t, second); p == lo+k || p == 0 {
		t.Fatalf("retried dial from port %d", p)
	}
}

// waitWritable waits for fd's non-blocking connect to complete.
func waitWritable(t *testing.T, fd int) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if n, err := unix.Poll(pfd, 5000); n != 1 || err != nil {
		t.Fatalf("connect did not complete: %d %v", n, err)
	}
	if e, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); e != 0 {
		t.Fatalf("connect: %v", unix.Errno(e))
	}
}
