package cluster

import (
	"net"
	"syscall"
	"time"
)

// newDialer dials NATS servers with connect timeout timeout and, for dead
// > 0, TCP's own checks of the peer: keepalive probes dead/3 apart once
// the connection has been idle dead/3 (three unanswered: gone), and
// TCP_USER_TIMEOUT dead for bytes sent and not acknowledged (Linux). A
// server that vanished is then noticed in about dead, whatever the PING
// settings, while one that is only slow to answer (its kernel still
// acknowledges) is not taken for dead.
func newDialer(timeout, dead time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if dead <= 0 {
		return d
	}
	step := max(dead/3, time.Second)
	d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: step, Interval: step, Count: 3}
	d.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setUserTimeout(fd, dead) }); err != nil {
			return err
		}
		return serr
	}
	return d
}
