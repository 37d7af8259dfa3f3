package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/testkit/raw"
)

// Drains of the real binary: every client gets its 1001 within the window,
// arriving connections do not hold the drain open, a second signal ends it,
// and with --reuse-port new clients go to the other process.

// dialN opens n WebSocket connections to addr.
func dialN(t *testing.T, addr string, n int) ([]net.Conn, []*bufio.Reader) {
	t.Helper()
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, r, err := wsDial(addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i], readers[i] = c, r
	}
	return conns, readers
}

// awaitCloses reads each connection's close frame (answering it), and
// returns when each came, since start, for those that got code.
func awaitCloses(t *testing.T, conns []net.Conn, readers []*bufio.Reader, code uint16, start time.Time, limit time.Duration) []time.Duration {
	t.Helper()
	var mu sync.Mutex
	var at []time.Duration
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i].SetReadDeadline(time.Now().Add(limit))
			got, reason, err := raw.ReadClose(readers[i])
			if err != nil || got != code {
				t.Errorf("client %d: close %d %q %v after %v", i, got, reason, err, time.Since(start))
				return
			}
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
			conns[i].Write(codec.AppendCloseMasked(nil, ws.StatusCode(code), "", codec.NewMaskKey()))
		}()
	}
	wg.Wait()
	return at
}

// 300 connections, a 3 s window and 1 s grace: all 300 get 1001, spread
// evenly over the window, none after it.
func TestDrainReachesEveryone(t *testing.T) {
	const n = 300
	window, grace := 3*time.Second, time.Second
	p := start(t, "--drain-window", window.String(), "--drain-grace", grace.String())
	conns, readers := dialN(t, p.addr, n)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	at := awaitCloses(t, conns, readers, 1001, start, window+grace+10*time.Second)
	if err := waitExit(p.cmd, 15*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	// Tenths of the window; the last bucket is anything after it.
	var hist [11]int
	for _, d := range at {
		hist[min(10, int(d*10/window))]++
	}
	t.Logf("%d of %d closed with 1001; per tenth of the %v window (last: after it): %v", len(at), n, window, hist)
	if len(at) != n {
		t.Fatalf("%d of %d clients got 1001", len(at), n)
	}
	// Even: about 30 per tenth. Generous bounds, for a loaded machine;
	// and after the window only what a late tick and a slow reader can
	// explain.
	for i, k := range hist[:10] {
		if k < n/10/3 || k > n/4 {
			t.Fatalf("tenth %d holds %d of %d closes: not spread evenly", i, k, n)
		}
	}
	if hist[10] > n/20 {
		t.Fatalf("%d closes came after the window", hist[10])
	}
}

// While TCP connections keep arriving (one every 5 ms, some silent, some
// asking to upgrade), the drain still ends with its window and grace.
func TestDrainWithArrivingConnections(t *testing.T) {
	window, grace := 2*time.Second, time.Second
	p := start(t, "--drain-window", window.String(), "--drain-grace", grace.String())
	conns, readers := dialN(t, p.addr, 20)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused, upgradedLate int
	var mu sync.Mutex
	var signaled atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			c, err := net.DialTimeout("tcp", p.addr, time.Second)
			if err != nil {
				continue // the process is gone
			}
			if i%2 == 0 {
				// Silent: holds a TCP connection and sends nothing.
				wg.Add(1)
				go func() { defer wg.Done(); <-stop; c.Close() }()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				key := codec.NewClientKey()
				late := signaled.Load()
				c.Write(codec.AppendClientRequest(nil, p.addr, "/ws", key[:], nil, nil))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				mu.Lock()
				defer mu.Unlock()
				switch {
				case strings.Contains(line, " 503 "):
					refused++
				case strings.Contains(line, " 101 ") && late:
					upgradedLate++
				}
			}()
		}
	}()
	time.Sleep(100 * time.Millisecond) // arrivals before the signal too
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond) // for the signal to be handled
	signaled.Store(true)
	go awaitCloses(t, conns, readers, 1001, start, window+grace+10*time.Second)
	err := waitExit(p.cmd, window+grace+10*time.Second)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("exit: %v", err)
	}
	t.Logf("exited %v after SIGTERM (window %v, grace %v); %d upgrades refused with 503 meanwhile", took, window, grace, refused)
	if upgradedLate != 0 {
		t.Fatalf("%d upgrades accepted during the drain", upgradedLate)
	}
	if refused == 0 {
		t.Fatal("no upgrade was answered during the drain: the arrivals did not happen")
	}
}

// A second SIGTERM during a long drain closes every connection at once
// with 1001, and the process exits.
func TestDrainSecondSignal(t *testing.T) {
	const n = 50
	p := start(t, "--drain-window", "60s", "--drain-grace", "10s")
	conns, readers := dialN(t, p.addr, n)
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	at := awaitCloses(t, conns, readers, 1001, start, 15*time.Second)
	if err := waitExit(p.cmd, 15*time.Second); err != nil {
		t.Fatalf("exit after the second signal: %v", err)
	}
	if len(at) != n {
		t.Fatalf("%d of %d clients got 1001", len(at), n)
	}
}

// freeHighPort returns an address above the ephemeral range that nothing
// listens on, or skips.
func freeHighPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		addr := fmt.Sprintf("127.0.0.1:%d", 61001+rand.IntN(4000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port above 61000")
	return ""
}

// adminStats reads /v1/stats from a gateway's admin address.
func adminStats(t *testing.T, admin string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Two --reuse-port processes: once one drains, every new client lands on
// the other, while the draining one keeps serving its own until they are
// closed.
func TestDrainReusePortHandsOver(t *testing.T) {
	addr := freeHighPort(t)
	a := startAt(t, addr, "--reuse-port", "--loops", "2", "--drain-window", "10s", "--drain-grace", "1s")
	b := startAt(t, addr, "--reuse-port", "--loops", "2")
	if a.admin == "" || b.admin == "" {
		t.Fatal("admin addresses not logged")
	}
	// Each process takes some of the first clients.
	held, _ := dialN(t, addr, 40)
	if n := acceptedOf(t, a.admin); n == 0 {
		t.Fatal("the first process took none of 40 connections: no spread to test")
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, a, "stopped accepting")
	before := acceptedOf(t, a.admin)
	const n = 100
	for i := range n {
		c, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatalf("new client %d after the drain began: %v", i, err)
		}
		c.Close()
	}
	if after := acceptedOf(t, a.admin); after != before {
		t.Fatalf("the draining process accepted %d of %d new connections", after-before, n)
	}
	t.Logf("%d new clients all went to the other process; the draining one kept its %v connections", n, adminStats(t, a.admin)["ws_conns"])
	_ = held
}

// acceptedOf returns a gateway's ConnsAccepted.
func acceptedOf(t *testing.T, admin string) int64 {
	t.Helper()
	v, _ := adminStats(t, admin)["conns_accepted"].(float64)
	return int64(v)
}

// waitLog waits for a log line of p containing s.
func waitLog(t *testing.T, p *gatewayProc, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-p.logs:
			if !ok {
				t.Fatalf("gateway exited before logging %q", s)
			}
			if strings.Contains(line, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line %q within 10s", s)
		}
	}
}
