package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/testkit/raw"
)

// wsDial upgrades a raw connection (testkit's raw client); the returned
// reader has consumed the 101 response.
func wsDial(addr string) (net.Conn, *bufio.Reader, error) { return raw.Dial(addr, "/ws") }

// wsDialWith is wsDial through d (a chosen source address, say).
func wsDialWith(d *net.Dialer, addr string) (net.Conn, *bufio.Reader, error) {
	return raw.DialWith(d, addr, "/ws")
}

// Drain on SIGTERM with 2,000 connections and a 5s window: every client
// receives 1001, the closes spread across the window, /readyz answers 503
// meanwhile, and the process exits 0.

func TestDrainOnSIGTERM(t *testing.T) {
	const n = 2000
	window := 5 * time.Second
	p := start(t, "--drain-window", window.String(), "--drain-grace", "2s", "--ping-interval", "0")
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, r, err := wsDial(p.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		conns[i], readers[i] = c, r
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)

	var mu sync.Mutex
	var at []time.Duration
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i].SetReadDeadline(time.Now().Add(window + 10*time.Second))
			code, reason, err := raw.ReadClose(readers[i])
			if err != nil || code != 1001 {
				t.Errorf("client %d: close %d %q %v", i, code, reason, err)
				return
			}
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
			conns[i].Write(codec.AppendCloseMasked(nil, 1001, "", codec.NewMaskKey()))
		}()
	}
	// Readiness turns 503 at once, for the whole drain.
	time.Sleep(200 * time.Millisecond)
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("/readyz during the drain: %v %v", resp, err)
	}
	resp.Body.Close()
	wg.Wait()
	if err := waitExit(p.cmd, 15*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	var tenths [10]int
	for _, d := range at {
		tenths[min(9, int(d*10/window))]++
	}
	t.Logf("closes per tenth of the %v window: %v", window, tenths)
	for i, k := range tenths {
		if k > n/4 {
			t.Fatalf("tenth %d holds %d of %d closes", i, k, n)
		}
	}
}

func waitExit(cmd *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("still running after %v", limit)
	}
}

// Two processes share a port with --reuse-port: both take connections, and
// draining one leaves the other's clients alone (a zero-downtime restart).
func TestReusePort(t *testing.T) {
	var addr string
	var a *gatewayProc
	for range 10 { // a port above the ephemeral range that is free
		addr = fmt.Sprintf("127.0.0.1:%d", 65001+rand.IntN(500))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			a = startAt(t, addr, "--reuse-port", "--drain-window", "500ms", "--drain-grace", "500ms")
			break
		}
	}
	if a == nil {
		t.Skip("no free port above 65000")
	}
	b := startAt(t, addr, "--reuse-port")
	const n = 60
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, r, err := wsDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, r
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(a.cmd, 10*time.Second); err != nil {
		t.Fatalf("first process: %v", err)
	}
	var closed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	survivors := make([]bool, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			code, _, err := raw.ReadClose(readers[i])
			mu.Lock()
			defer mu.Unlock()
			switch ne, timeout := err.(net.Error); {
			case err == nil && code == 1001:
				closed++
			case timeout && ne.Timeout():
				survivors[i] = true // on the other process: untouched
			default:
				t.Errorf("client %d: close %d, %v", i, code, err)
			}
		}()
	}
	wg.Wait()
	if closed == 0 || closed == n {
		t.Fatalf("%d of %d clients were on the drained process; want both processes to have taken some", closed, n)
	}
	// The survivors are untouched: each still round-trips a message.
	for i, alive := range survivors {
		if !alive {
			continue
		}
		conns[i].SetDeadline(time.Now().Add(10 * time.Second))
		msg := []byte("still here " + strconv.Itoa(i))
		if _, err := conns[i].Write(codec.AppendFrameMasked(nil, ws.OpText, true, msg, codec.NewMaskKey())); err != nil {
			t.Fatalf("survivor %d: %v", i, err)
		}
		if got, err := raw.ReadText(readers[i]); err != nil || string(got) != string(msg) {
			t.Fatalf("survivor %d: echo %q, %v", i, got, err)
		}
	}
	// The survivor still serves, new connections included.
	c, _, err := wsDial(addr)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	c.Close()
	t.Logf("%d of %d connections were on the drained process", closed, n)
	_ = b
}
