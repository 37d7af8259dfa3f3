package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// statsOf reads /v1/stats, or returns nil (usable from any goroutine).
func statsOf(admin string) map[string]any {
	resp, err := http.Get("http://" + admin + "/v1/stats")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st map[string]any
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return st
}

func num(st map[string]any, key string) int64 {
	v, _ := st[key].(float64)
	return int64(v)
}

func sub(st map[string]any, key, name string) int64 {
	m, _ := st[key].(map[string]any)
	v, _ := m[name].(float64)
	return int64(v)
}

// upgradeStatus sends an upgrade request from a local address and returns
// the status line's code and the response header block.
func upgradeStatus(t *testing.T, from, addr string) (int, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := codec.NewClientKey()
	conn.Write(codec.AppendClientRequest(nil, addr, "/ws", key[:], nil, nil))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("upgrade from %s: %v", from, err)
	}
	var hdr strings.Builder
	resp.Header.Write(&hdr)
	return resp.StatusCode, hdr.String()
}

// The budget test, on the real binary with a real backend: a 64
// MiB budget and 200 clients (from 127.0.0.2) whose handler is blocked (the
// backend's message hook does not answer), each sending one 1 MiB message.
// Each message's memory is reserved whole at its frame header, so about 60
// messages fit the budget and reach the blocked hooks, and the other
// clients' reads pause before their payload is read (the kernel's buffers
// hold it, TCP slows them): the gateway's resident memory, read from
// /proc, grows by less than the budget plus one message per loop (the
// paused clients' reads stop before the read, not after it), and a new client (from 127.0.0.3) gets
// 503 with Retry-After. Once the hooks answer, every message reaches the
// backend and the fresh client is served.
func TestMemoryBudgetBlockedHandlers(t *testing.T) {
	const (
		clients = 200
		size    = 1 << 20
		budget  = 64 << 20
	)
	var blocked atomic.Bool
	release := make(chan struct{})
	var inHook, bigDone, small atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/message" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		switch {
		case n == size:
			if blocked.Load() {
				inHook.Add(1)
				<-release
			}
			bigDone.Add(1)
			w.WriteHeader(http.StatusNoContent)
		case n == 4: // "ping" from the fresh client
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "pong")
		default:
			small.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer backend.Close()
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()

	p := start(t, "--backend", backend.URL, "--backend-timeout", "120s", "--memory-budget", "64MiB",
		"--ping-interval", "0", "--close-timeout", "30s")
	pid := p.cmd.Process.Pid
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, _, err := wsDialWith(d, p.addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close()
		conns[i] = c
	}
	// Warm up: one small message each, so that the backend's keep-alive
	// connections (one per concurrent hook) exist before the base is read.
	hi := codec.AppendFrameMasked(nil, ws.OpText, true, []byte("hi"), codec.NewMaskKey())
	for _, c := range conns {
		c.Write(hi)
	}
	for deadline := time.Now().Add(30 * time.Second); small.Load() < clients; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("backend got %d of %d warm-up messages", small.Load(), clients)
		}
	}
	time.Sleep(200 * time.Millisecond) // the hooks' goroutines return their connections
	base := procStatus(t, pid, "VmRSS") << 10

	// Sample the resident memory and the account while the messages go.
	var peakRSS, peakCharged atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if rss := procStatus(t, pid, "VmRSS") << 10; rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			if st := statsOf(p.admin); st != nil && num(st, "memory_charged") > peakCharged.Load() {
				peakCharged.Store(num(st, "memory_charged"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	blocked.Store(true)
	frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, make([]byte, size), [4]byte{})
	var writes sync.WaitGroup
	for _, c := range conns {
		writes.Add(1)
		go func() {
			defer writes.Done()
			c.SetWriteDeadline(time.Now().Add(120 * time.Second))
			c.Write(frame)
		}()
	}
	// Steady state: every client's message is either with a blocked hook
	// or waiting behind its paused reads.
	var st map[string]any
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st = statsOf(p.admin)
		if st != nil && inHook.Load() > 0 && inHook.Load()+num(st, "inbound_paused") == clients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no steady state: %d in hooks, stats %v", inHook.Load(), st)
		}
	}
	status, hdr := upgradeStatus(t, "127.0.0.3", p.addr)
	if status != 503 || !strings.Contains(hdr, "Retry-After") {
		t.Fatalf("upgrade over the budget: %d\n%s", status, hdr)
	}
	time.Sleep(300 * time.Millisecond) // a few more samples of the steady state
	cancel()
	<-sampled
	hwm := procStatus(t, pid, "VmHWM") << 10
	time.Sleep(300 * time.Millisecond) // a tick publishes the split of the steady state
	st = statsOf(p.admin)
	paused := clients - inHook.Load()
	t.Logf("base RSS %d MiB; peak RSS %d MiB (+%.1f MiB; VmHWM %d MiB); budget %d MiB; peak charged %.1f MiB",
		base>>20, peakRSS.Load()>>20, float64(peakRSS.Load()-base)/(1<<20), hwm>>20, budget>>20, float64(peakCharged.Load())/(1<<20))
	t.Logf("steady state: charged %.1f MiB: %v; %d messages with the blocked hooks, %d clients paused (%d pauses); "+
		"upgrades refused for the budget: %d; sheds %v",
		float64(num(st, "memory_charged"))/(1<<20), st["memory_charges"], inHook.Load(), paused, num(st, "memory_pauses"),
		sub(st, "refused", "memory_budget"), st["memory_sheds"])

	// Beyond the budget: at most a message per loop (the bound),
	// with one read and one charge batch (64 KiB each) per loop. The
	// paused clients' reads add nothing: they pause before the read
	// (loop.allowRead), not after it. The gateway runs a loop per CPU.
	loops := int64(runtime.NumCPU())
	overshoot := loops * (size + 2*64<<10)
	if c := peakCharged.Load(); c > budget+overshoot {
		t.Errorf("charged %d, over the budget %d + %d", c, budget, overshoot)
	}
	// The runtime's own growth (stacks of the blocked hooks, GC state).
	const slack = 8 << 20
	if g := peakRSS.Load() - base; g > budget+overshoot+slack {
		t.Errorf("RSS grew %.1f MiB, over the budget (%d MiB) + %.1f MiB + %d MiB", float64(g)/(1<<20), budget>>20,
			float64(overshoot)/(1<<20), slack>>20)
	}
	if sub(st, "refused", "memory_budget") < 1 || num(st, "memory_pauses") < int64(paused) {
		t.Errorf("refusals or pauses not counted: %v", st)
	}
	if n := sub(st, "closes", "memory_budget"); n != 0 {
		t.Errorf("%d clients shed; pauses should have been enough", n)
	}

	// The hooks answer: every message gets through, the account drains,
	// and a fresh client from another address is served.
	unblock()
	for deadline := time.Now().Add(60 * time.Second); bigDone.Load() < clients; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("backend got %d of %d messages after the release", bigDone.Load(), clients)
		}
	}
	writes.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st = statsOf(p.admin); num(st, "memory_charged") < budget/10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the account did not drain: %v", st["memory_charges"])
		}
	}
	fresh, r, err := wsDialWith(&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}, p.addr)
	if err != nil {
		t.Fatalf("fresh client after the release: %v", err)
	}
	defer fresh.Close()
	fresh.Write(codec.AppendFrameMasked(nil, ws.OpText, true, []byte("ping"), codec.NewMaskKey()))
	fresh.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hb [2]byte
	msg := make([]byte, 4)
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, msg); err != nil || string(msg) != "pong" {
		t.Fatalf("fresh client: %q %v", msg, err)
	}
	if n := sub(statsOf(p.admin), "closes", "memory_budget"); n != 0 {
		t.Errorf("%d clients shed", n)
	}
}
