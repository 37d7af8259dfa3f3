package cluster

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDialerChecksDeadPeer dials a real listener with the NATS dialer and
// reads the socket's options back: keepalive on, probes every 2 s after
// 2 s idle, 3 of them, and 6 s for unacknowledged bytes (dead = 6 s).
// With dead < 0 the socket keeps the system's settings.
func TestDialerChecksDeadPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	opts := func(dead time.Duration) map[string]int {
		c, err := newDialer(time.Second, dead).Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		_ = raw.Control(func(fd uintptr) {
			for name, o := range map[string][2]int{
				"keepalive": {unix.SOL_SOCKET, unix.SO_KEEPALIVE}, "idle": {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
				"interval": {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, "count": {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
				"user_timeout_ms": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
			} {
				v, err := unix.GetsockoptInt(int(fd), o[0], o[1])
				if err != nil {
					t.Errorf("getsockopt %s: %v", name, err)
				}
				got[name] = v
			}
		})
		return got
	}
	want := map[string]int{"keepalive": 1, "idle": 2, "interval": 2, "count": 3, "user_timeout_ms": 6000}
	got := opts(6 * time.Second)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if sys := opts(-1); sys["user_timeout_ms"] != 0 {
		t.Errorf("dead < 0 set TCP_USER_TIMEOUT %d", sys["user_timeout_ms"])
	}
}
