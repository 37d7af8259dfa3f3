//go:build linux

package main

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// refusingServer answers the first refuse upgrade requests with 503 and
// upgrades every later one (then echoes, as slowServer does).
func refusingServer(t *testing.T, refuse int64) (url string, refused *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused = new(atomic.Int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	echo := &slowServer{stop: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused.Add(1) <= refuse {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		refused.Add(-1)
		c, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			echo.serve(c)
			c.Close()
		}()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		close(echo.stop)
		srv.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/ws", refused
}

// TestRetriesBringEveryConnectionUp: a server refuses the first 15 of 40
// upgrades. With --retries every connection comes up in the ramp, the
// report counts the 15 retries, and none is left never up; without it,
// 15 connections never come up.
func TestRetriesBringEveryConnectionUp(t *testing.T) {
	const n, refuse = 40, 15
	t.Run("retries", func(t *testing.T) {
		url, refused := refusingServer(t, refuse)
		rep := runScenario(t, "connect", "--url", url, "--conns", itoa(n), "--ramp", "2000", "--max-pending", "8",
			"--retries", "3", "--backoff", "20ms", "--backoff-max", "100ms", "--duration", "300ms")
		c := rep.Connections
		if refused.Load() != refuse {
			t.Fatalf("server refused %d upgrades, want %d", refused.Load(), refuse)
		}
		if c.Established != n || c.OpenMax != n || c.Failed != refuse || c.Retries != refuse || c.NeverUp != 0 {
			t.Errorf("established %d, open max %d, failed %d, retries %d, never up %d; want %d, %d, %d, %d, 0",
				c.Established, c.OpenMax, c.Failed, c.Retries, c.NeverUp, n, n, refuse, refuse)
		}
		if c.Attempted != n+refuse {
			t.Errorf("attempted %d, want %d", c.Attempted, n+refuse)
		}
		if rep.Ramp.End != rampComplete || rep.Ramp.Upgrades != n {
			t.Errorf("ramp %+v: want complete with %d upgrades (the retries are part of it)", rep.Ramp, n)
		}
		if rep.Errors["handshake: status 503"] != refuse {
			t.Errorf("errors %v, want %d of handshake: status 503", rep.Errors, refuse)
		}
	})
	t.Run("no retries", func(t *testing.T) {
		url, _ := refusingServer(t, refuse)
		rep := runScenario(t, "connect", "--url", url, "--conns", itoa(n), "--ramp", "2000", "--max-pending", "8", "--duration", "300ms")
		c := rep.Connections
		if c.Established != n-refuse || c.Retries != 0 || c.NeverUp != refuse {
			t.Errorf("established %d, retries %d, never up %d; want %d, 0, %d", c.Established, c.Retries, c.NeverUp, n-refuse, refuse)
		}
	})
}

// TestRetriesGiveUp: a server that refuses everything. Each connection
// tries 1 + --retries times and is then counted never up.
func TestRetriesGiveUp(t *testing.T) {
	const n = 10
	url, refused := refusingServer(t, 1<<40)
	rep := runScenario(t, "connect", "--url", url, "--conns", itoa(n), "--ramp", "2000", "--retries", "2",
		"--backoff", "10ms", "--backoff-max", "20ms", "--duration", "100ms")
	c := rep.Connections
	if c.Established != 0 || c.Attempted != 3*n || c.Retries != 2*n || c.NeverUp != n || refused.Load() != 3*n {
		t.Errorf("established %d, attempted %d, retries %d, never up %d, refused %d; want 0, %d, %d, %d, %d",
			c.Established, c.Attempted, c.Retries, c.NeverUp, refused.Load(), 3*n, 2*n, n, 3*n)
	}
}

// TestConnectTimeoutNamed: a listener whose accept queue is full and never
// accepted drops the SYNs of later connects. Their timeout is "connect:
// timeout" (no SYN-ACK), not "handshake: timeout" (no 101), so a report
// tells a full listen queue from a slow upgrade.
func TestConnectTimeoutNamed(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // backlog 0: one connection fills it
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	// Fill the accept queue (and the SYN queue behind it) with plain
	// connections nobody accepts.
	var fill []net.Conn
	defer func() {
		for _, c := range fill {
			c.Close()
		}
	}()
	for range 4 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(int64(port)), 300*time.Millisecond)
		if err != nil {
			break
		}
		fill = append(fill, c)
	}
	rep := runScenario(t, "connect", "--url", "ws://127.0.0.1:"+itoa(int64(port))+"/ws", "--conns", "4", "--ramp", "1000",
		"--handshake-timeout", "400ms", "--duration", "100ms")
	if rep.Connections.Established != 0 {
		t.Fatalf("established %d against a listener that never accepts", rep.Connections.Established)
	}
	if rep.Errors["connect: timeout"] == 0 {
		t.Errorf("errors %v: want connect: timeout for the SYNs the full queue dropped", rep.Errors)
	}
}
