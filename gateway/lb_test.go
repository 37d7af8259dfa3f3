package gateway_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/clock"
)

// Deployment behind an L4 load balancer: PROXY protocol, admission
// control, readiness and drain, through real sockets.

// remoteRecorder records the RemoteAddr each connection's handler sees.
type remoteRecorder struct {
	gateway.Echo
	mu   sync.Mutex
	seen []netip.AddrPort
}

func (r *remoteRecorder) OnOpen(c *gateway.Conn) {
	r.mu.Lock()
	r.seen = append(r.seen, c.RemoteAddr())
	r.mu.Unlock()
}

func (r *remoteRecorder) last() netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		return netip.AddrPort{}
	}
	return r.seen[len(r.seen)-1]
}

// upgradeAfter sends prefix then an upgrade request; it returns the status.
func upgradeAfter(t *testing.T, srv *gateway.Server, prefix []byte) (*rawClient, int) {
	t.Helper()
	c := dialTCP(t, srv)
	key := codec.NewClientKey()
	c.writeRaw(append(prefix, codec.AppendClientRequest(nil, "x", "/ws", key[:], nil, nil)...))
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.r.Peek(1); err != nil {
		return c, 0 // closed without an answer
	}
	status, _ := c.readHTTP()
	return c, status
}

func TestProxyProtocol(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.7:40000")
	src6 := netip.MustParseAddrPort("[2001:db8::7]:40001")
	dst := netip.MustParseAddrPort("10.0.0.1:443")
	v1 := codec.AppendProxyHeaderV1(nil, src, dst)
	v2 := codec.AppendProxyHeaderV2(nil, src6, netip.MustParseAddrPort("[2001:db8::1]:443"), nil)
	local := codec.AppendProxyHeaderV2(nil, netip.AddrPort{}, netip.AddrPort{}, nil) // LOCAL (health check)

	t.Run("required", func(t *testing.T) {
		rec := &remoteRecorder{}
		srv := startServer(t, gateway.Config{ProxyProtocol: "required", TrustedProxies: []string{"127.0.0.0/8"}}, rec)
		if _, st := upgradeAfter(t, srv, v1); st != 101 {
			t.Fatalf("v1: status %d", st)
		}
		waitFor(t, func() bool { return rec.last() == src })
		if _, st := upgradeAfter(t, srv, v2); st != 101 {
			t.Fatalf("v2: status %d", st)
		}
		waitFor(t, func() bool { return rec.last() == src6 })
		if c, st := upgradeAfter(t, srv, local); st != 101 {
			t.Fatalf("v2 LOCAL: status %d", st)
		} else {
			waitFor(t, func() bool { return rec.last() == c.conn.LocalAddr().(*net.TCPAddr).AddrPort() })
		}
		if _, st := upgradeAfter(t, srv, nil); st != 0 {
			t.Fatalf("no header: status %d, want the connection closed", st)
		}
		for name, bad := range map[string][]byte{
			"v1 garbage":        []byte("PROXY TCP4 1.2.3.4 nonsense\r\n"),
			"v1 no CRLF":        append(bytes.Repeat([]byte("PROXY "), 30), '\n'),
			"v2 bad version":    append([]byte("\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c"), make([]byte, 12)...),
			"v2 short address":  append([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04"), make([]byte, 4)...),
			"v2 length too big": []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"),
		} {
			if _, st := upgradeAfter(t, srv, bad); st != 0 {
				t.Fatalf("%s: status %d, want the connection closed", name, st)
			}
		}
		st := srv.Stats()
		if st.ProxyErrors["missing"] != 1 || st.ProxyErrors["malformed"] != 5 {
			t.Fatalf("proxy errors %v", st.ProxyErrors)
		}
		// The server is fine after all that.
		if _, st := upgradeAfter(t, srv, v1); st != 101 {
			t.Fatalf("after bad headers: %d", st)
		}
	})
	t.Run("optional", func(t *testing.T) {
		rec := &remoteRecorder{}
		srv := startServer(t, gateway.Config{ProxyProtocol: "optional", TrustedProxies: []string{"127.0.0.1"}}, rec)
		if _, st := upgradeAfter(t, srv, v1); st != 101 {
			t.Fatalf("with header: %d", st)
		}
		waitFor(t, func() bool { return rec.last() == src })
		c, st := upgradeAfter(t, srv, nil)
		if st != 101 {
			t.Fatalf("without header: %d", st)
		}
		waitFor(t, func() bool { return rec.last() == c.conn.LocalAddr().(*net.TCPAddr).AddrPort() })
	})
	t.Run("untrusted peer", func(t *testing.T) {
		rec := &remoteRecorder{}
		srv := startServer(t, gateway.Config{ProxyProtocol: "optional", TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1"}}, rec)
		if _, st := upgradeAfter(t, srv, v1); st != 0 {
			t.Fatalf("forged header from 127.0.0.1: status %d, want closed", st)
		}
		if n := srv.Stats().ProxyErrors["untrusted"]; n != 1 {
			t.Fatalf("untrusted count %d", n)
		}
		if _, st := upgradeAfter(t, srv, nil); st != 101 {
			t.Fatalf("plain client: %d", st)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		rec := &remoteRecorder{}
		srv := startServer(t, gateway.Config{ProxyProtocol: "required", TrustedProxies: []string{"127.0.0.0/8"}}, rec)
		if _, st := upgradeAfter(t, srv, v1); st != 101 {
			t.Fatalf("status %d", st)
		}
		waitFor(t, func() bool { return rec.last() == src })
	})
	t.Run("bad config", func(t *testing.T) {
		for _, cfg := range []gateway.Config{{ProxyProtocol: "sometimes"}, {TrustedProxies: []string{"10.0.0.0/33"}}} {
			if _, err := gateway.NewServer(cfg, gateway.Echo{}); err == nil {
				t.Errorf("%+v accepted", cfg)
			}
		}
	})
}

// dialFrom upgrades from a chosen source address.
func dialFrom(srv *gateway.Server, ip string) (*gorilla.Conn, *http.Response, error) {
	d := gorilla.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return nd.Dial(network, addr)
	}}
	return d.Dial(wsURL(srv), nil)
}

func TestAdmissionMaxConns(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxConns: 100}, gateway.Echo{})
	for i := range 100 {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatalf("upgrade %d: %v", i+1, err)
		}
		defer c.Close()
	}
	_, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("101st: %v %v, want 503 with Retry-After", resp, err)
	}
	if st := srv.Stats(); st.Refused["max_conns"] != 1 || st.WSConns != 100 {
		t.Fatalf("refused %v, WSConns %d", st.Refused, st.WSConns)
	}
}

func TestAdmissionPerIP(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxConnsPerIP: 3}, gateway.Echo{})
	var conns []*gorilla.Conn
	for range 3 {
		c, _, err := dialFrom(srv, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if _, resp, err := dialFrom(srv, "127.0.0.1"); err == nil || resp.StatusCode != 503 {
		t.Fatalf("4th from 127.0.0.1: %v %v, want 503", resp, err)
	}
	c, _, err := dialFrom(srv, "127.0.0.2")
	if err != nil {
		t.Fatalf("other address: %v", err)
	}
	c.Close()
	// A closed connection frees its place.
	conns[0].WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""))
	conns[0].ReadMessage()
	waitFor(t, func() bool { return srv.Stats().WSConns == 2 })
	c, _, err = dialFrom(srv, "127.0.0.1")
	if err != nil {
		t.Fatalf("after a close: %v", err)
	}
	c.Close()
	for _, c := range conns[1:] {
		c.Close()
	}
	if n := srv.Stats().Refused["per_ip"]; n != 1 {
		t.Fatalf("per_ip refusals %d", n)
	}
}

func TestAdmissionRate(t *testing.T) {
	srv := startServer(t, gateway.Config{AcceptRate: 5, AcceptBurst: 5, TimerTick: 10 * time.Millisecond}, gateway.Echo{})
	ok, refused := 0, 0
	for range 20 { // far faster than 5 per second
		c, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err == nil {
			ok++
			c.Close()
			continue
		}
		if resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("refusal: %v %v", resp, err)
		}
		refused++
	}
	if ok < 5 || ok > 7 || refused == 0 {
		t.Fatalf("%d accepted, %d refused; want the burst of 5 (plus refill) then 503s", ok, refused)
	}
	if n := srv.Stats().Refused["rate"]; n != int64(refused) {
		t.Fatalf("rate refusals counted %d, seen %d", n, refused)
	}
}

// TestDrainInProcess drains 200 connections on a fake clock, stepped a
// tick at a time; after each tick the clients have read every byte the
// server wrote (Stats.BytesOut), so each close is timed to its tick.
func TestDrainInProcess(t *testing.T) {
	const n = 200
	const window, step = time.Second, 10 * time.Millisecond
	opened := make(chan *gateway.Conn, n)
	f := clock.NewFake(time.Unix(1_000_000_000, 0))
	srv := startServer(t, gateway.Config{DemoPage: true, DrainWindow: window, DrainGrace: time.Second, TimerTick: step, Clock: f},
		gateway.HandlerFuncs{Open: func(c *gateway.Conn) { opened <- c }})
	if !f.WaitTickers(1, 10*time.Second) {
		t.Fatal("the server's ticker did not start")
	}
	base := "http://" + srv.Addr().String()
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz before: %v %v", resp, err)
	}
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, srv)
	}
	conns := make([]*gateway.Conn, 0, n)
	for range n {
		conns = append(conns, <-opened)
	}
	wrote := srv.Stats().BytesOut
	var got atomic.Int64 // frame bytes the clients read
	var mu sync.Mutex
	var at []time.Duration
	start := f.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := false
			for {
				h, p, err := c.readFrame()
				if err != nil {
					t.Errorf("no close frame: %v", err)
					return
				}
				if h.OpCode == 1 && string(p) == "last words" {
					last = true
				}
				if h.OpCode != 8 {
					got.Add(int64(ws.HeaderSize(h) + len(p)))
					continue
				}
				if !last {
					t.Error("the close frame came before the queued message")
				}
				code, reason, _ := codec.ParseCloseUnsafe(p)
				if code != 1001 || !strings.Contains(string(reason), "retry-after=") {
					t.Errorf("close %d %q", code, reason)
				}
				mu.Lock()
				at = append(at, f.Now().Sub(start))
				mu.Unlock()
				got.Add(int64(ws.HeaderSize(h) + len(p)))
				c.writeRaw(codec.AppendCloseMasked(nil, code, "", c.key))
				return
			}
		}()
	}
	// read waits until the clients have read all the server wrote.
	read := func() {
		waitFor(t, func() bool { return got.Load() == srv.Stats().BytesOut-wrote })
	}
	// A message queued before the drain reaches its client before the close.
	for _, conn := range conns {
		conn.Send(gateway.OpText, []byte("last words"))
	}
	done := make(chan error, 1)
	go func() { done <- srv.Drain(context.Background()) }()
	waitFor(t, srv.Draining)
	for d := time.Duration(0); d < window+time.Second && srv.Stats().WSConns > 0; d += step {
		read()
		f.Advance(step)
	}
	read()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for _, d := range at {
		if d > window+step {
			t.Errorf("a close came at %v, past the %v window", d, window)
		}
	}
	checkSpread(t, at, window)
	// The server refuses until Shutdown.
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("/readyz while draining: %v %v", resp, err)
	}
	if _, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil); err == nil || resp.StatusCode != 503 {
		t.Fatalf("upgrade while draining: %v %v", resp, err)
	}
}

// checkSpread fails if any tenth of the window holds more than a quarter
// of the closes, or if closes fall well outside the window.
func checkSpread(t *testing.T, at []time.Duration, window time.Duration) {
	t.Helper()
	var tenths [10]int
	for _, d := range at {
		i := int(d * 10 / window)
		if i > 9 {
			if d > window+window/2 {
				t.Errorf("a close came at %v, past the %v window", d, window)
			}
			i = 9
		}
		tenths[i]++
	}
	t.Logf("closes per tenth of the window: %v", tenths)
	for i, k := range tenths {
		if k > len(at)/4 {
			t.Fatalf("tenth %d holds %d of %d closes", i, k, len(at))
		}
	}
}

// A client over IPv6 (the loopback, ::1) upgrades, is echoed, and its
// handler sees its address and port, which the Conn keeps outside its own
// struct (loop/conn_data.go: IPv4 only is kept inline).
func TestIPv6Client(t *testing.T) {
	rec := &remoteRecorder{}
	srv, err := gateway.NewServer(gateway.Config{Addr: "[::1]:0", Loops: 1}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	client, _, err := gorilla.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.WriteMessage(gorilla.TextMessage, []byte("over IPv6")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := client.ReadMessage(); err != nil || string(msg) != "over IPv6" {
		t.Fatalf("echo %q, %v", msg, err)
	}
	want := client.LocalAddr().(*net.TCPAddr).AddrPort()
	if !want.Addr().Is6() || want.Addr().Is4In6() {
		t.Fatalf("the client is at %v, not an IPv6 address", want)
	}
	waitFor(t, func() bool { return rec.last() == want })
}
