package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// Connections that have not completed the upgrade are bounded per client
// address and in total (Config.MaxHandshakes, MaxHandshakesPerIP); past
// the bounds a new TCP connection is closed at once and counted. Through
// real sockets, from chosen loopback source addresses.

// 3,000 silent TCP connections from 127.0.0.2, with the default bounds:
// 1024 are held (until the handshake timeout), the others are closed at
// once and counted, and a client from 127.0.0.3 upgrades and echoes
// meanwhile without waiting on them.
func TestHalfOpenFromOneAddress(t *testing.T) {
	const silent = 3000
	held := gateway.DefaultMaxHandshakesPerIP
	srv := startServer(t, gateway.Config{HandshakeTimeout: 5 * time.Minute}, gateway.Echo{})

	var eofs atomic.Int64
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
		for range silent {
			c, err := d.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Errorf("silent dial: %v", err)
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				c.SetReadDeadline(time.Now().Add(2 * time.Minute))
				var b [1]byte
				if _, err := c.Read(b[:]); errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
					eofs.Add(1)
				}
			}()
		}
	}()

	// Meanwhile, and once every silent connection is in, a client from
	// another address upgrades and echoes, one connection after another.
	var upgrades []time.Duration
	probe := func() {
		startAt := time.Now()
		c, _, err := dialFrom(srv, "127.0.0.3")
		if err != nil {
			t.Fatalf("upgrade from 127.0.0.3: %v", err)
		}
		upgrades = append(upgrades, time.Since(startAt))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		c.WriteMessage(gorilla.TextMessage, []byte("hi"))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hi" {
			t.Fatalf("echo from 127.0.0.3: %q %v", msg, err)
		}
		c.Close()
	}
	for done := false; !done; {
		select {
		case <-dialed:
			done = true
		default:
			probe()
		}
	}
	during := len(upgrades)
	waitLong(t, func() bool { return eofs.Load() >= int64(silent-held) })
	for range 200 {
		probe()
	}

	st := srv.Stats()
	if n := st.HandshakeLimitCloses["per_ip"]; n != int64(silent-held) {
		t.Errorf("per_ip closes %d, want %d", n, silent-held)
	}
	if n := eofs.Load(); n != int64(silent-held) {
		t.Errorf("%d silent connections closed, want %d", n, silent-held)
	}
	if st.HandshakesOpen != int64(held) {
		t.Errorf("handshakes open %d, want %d", st.HandshakesOpen, held)
	}
	slices.Sort(upgrades)
	p50, p99 := upgrades[len(upgrades)/2], upgrades[len(upgrades)*99/100]
	t.Logf("127.0.0.3: %d upgrades (%d while the silent connections came in): p50 %v, p99 %v, max %v",
		len(upgrades), during, p50, p99, upgrades[len(upgrades)-1])
	// Generous: a stall behind the silent connections (the handshake
	// timeout) would be minutes.
	if p99 > time.Second {
		t.Errorf("p99 upgrade time from another address %v", p99)
	}
}

// isReset reports a connection reset: the gateway closed a connection with
// unread input, or before the client's first read.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func waitLong(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 60s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// holdSilent opens n connections that send prefix and then nothing. It
// returns a counter of those the gateway has closed.
func holdSilent(t *testing.T, srv *gateway.Server, n int, prefix func(i int) []byte) *atomic.Int64 {
	t.Helper()
	closed := new(atomic.Int64)
	for i := range n {
		c, err := net.DialTimeout("tcp", srv.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if prefix != nil {
			c.Write(prefix(i))
		}
		go func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
				closed.Add(1)
			}
		}()
	}
	return closed
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Behind a trusted proxy every connection comes from the proxy's address:
// it counts in the total from the start, and against its client's address
// once the PROXY header names it, IPv6 clients by their /64.
func TestHalfOpenBehindProxy(t *testing.T) {
	const perIP, total = 50, 300
	srv := startServer(t, gateway.Config{
		ProxyProtocol: "required", TrustedProxies: []string{"127.0.0.0/8"},
		MaxHandshakesPerIP: perIP, MaxHandshakes: total, HandshakeTimeout: 5 * time.Minute,
		Admin: "127.0.0.1:0",
	}, gateway.Echo{})
	dst := netip.MustParseAddrPort("10.0.0.1:443")
	header := func(src string) []byte {
		return codec.AppendProxyHeaderV2(nil, netip.MustParseAddrPort(src), dst, nil)
	}

	// Silent connections from the proxy itself, no header yet: only the
	// total counts them.
	noHeader := holdSilent(t, srv, 100, nil)
	waitFor(t, func() bool { return srv.Stats().HandshakesOpen == 100 })

	// 100 claiming addresses of one /64: 50 held, 50 closed.
	claimed := holdSilent(t, srv, 100, func(i int) []byte {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 5, 15: byte(i)})
		return header(netip.AddrPortFrom(a, 40000).String())
	})
	waitLong(t, func() bool { return claimed.Load() == 100-perIP })
	if n := srv.Stats().HandshakeLimitCloses["per_ip"]; n != 100-perIP {
		t.Fatalf("per_ip closes %d, want %d", n, 100-perIP)
	}
	if n := noHeader.Load(); n != 0 {
		t.Fatalf("%d connections without a header closed", n)
	}

	// A client of another /64 upgrades meanwhile.
	if _, st := upgradeAfter(t, srv, header("[2001:db8:5:6::1]:40000")); st != 101 {
		t.Fatalf("other client: status %d", st)
	}

	// The total: 150 held now; 200 more silent, of which 150 fit.
	more := holdSilent(t, srv, 200, nil)
	waitLong(t, func() bool { return more.Load() == 50 })
	st := srv.Stats()
	if st.HandshakeLimitCloses["total"] != 50 || st.HandshakesOpen != total {
		t.Fatalf("total closes %d, handshakes open %d", st.HandshakeLimitCloses["total"], st.HandshakesOpen)
	}
	// /metrics and /v1/stats say the same.
	m := scrape(t, newAdminClient(t, srv, ""))
	if m[`wsgate_handshake_limit_closes_total{reason="per_ip"}`] != 100-perIP ||
		m[`wsgate_handshake_limit_closes_total{reason="total"}`] != 50 || m["wsgate_handshakes_open"] != total {
		t.Fatalf("metrics: per_ip %v, total %v, open %v", m[`wsgate_handshake_limit_closes_total{reason="per_ip"}`],
			m[`wsgate_handshake_limit_closes_total{reason="total"}`], m["wsgate_handshakes_open"])
	}
	status, body := newAdminClient(t, srv, "").do("GET", "/v1/stats", "", nil)
	var js struct {
		HandshakesOpen       int64            `json:"handshakes_open"`
		HandshakeLimitCloses map[string]int64 `json:"handshake_limit_closes"`
	}
	if err := json.Unmarshal(body, &js); status != 200 || err != nil || js.HandshakesOpen != total || js.HandshakeLimitCloses["total"] != 50 {
		t.Fatalf("/v1/stats: %d %s", status, body)
	}
}

// Per-address limits count IPv6 clients by their /64 (Config.IPv6Prefix)
// and an IPv4-mapped IPv6 address as its IPv4 address.
func TestPerIPKeys(t *testing.T) {
	dst := netip.MustParseAddrPort("10.0.0.1:443")
	upgrade := func(srv *gateway.Server, src string) int {
		c, st := upgradeAfter(t, srv, codec.AppendProxyHeaderV2(nil, netip.MustParseAddrPort(src), dst, nil))
		t.Cleanup(func() { c.conn.Close() })
		return st
	}
	cfg := gateway.Config{ProxyProtocol: "required", TrustedProxies: []string{"127.0.0.0/8"}, MaxConnsPerIP: 2, CloseTimeout: 200 * time.Millisecond}
	t.Run("/64", func(t *testing.T) {
		srv := startServer(t, cfg, gateway.Echo{})
		for i, tc := range []struct {
			src  string
			want int
		}{
			{"[2001:db8:1:2::1]:1", 101},
			{"[2001:db8:1:2:ffff:ffff:ffff:ffff]:2", 101},
			{"[2001:db8:1:2:aaaa::1]:3", 503}, // the same /64, a third connection
			{"[2001:db8:1:3::1]:4", 101},      // the next /64
			{"198.51.100.1:5", 101},
			{"[::ffff:198.51.100.1]:6", 101},
			{"198.51.100.1:7", 503}, // the mapped one counted as this address
		} {
			if st := upgrade(srv, tc.src); st != tc.want {
				t.Fatalf("%d: %s: status %d, want %d", i, tc.src, st, tc.want)
			}
		}
		if n := srv.Stats().Refused["per_ip"]; n != 2 {
			t.Fatalf("per_ip refusals %d", n)
		}
	})
	t.Run("/128", func(t *testing.T) {
		c := cfg
		c.IPv6Prefix = 128
		srv := startServer(t, c, gateway.Echo{})
		for _, src := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::2]:2", "[2001:db8:1:2::3]:3"} {
			if st := upgrade(srv, src); st != 101 {
				t.Fatalf("%s: status %d", src, st)
			}
		}
	})
	t.Run("bad values", func(t *testing.T) {
		for _, c := range []gateway.Config{
			{IPv6Prefix: -1}, {IPv6Prefix: 129}, {MaxHeaderBytes: 1<<20 + 1}, {AdminHosts: []string{"a b"}},
		} {
			if _, err := c.WithDefaults(); err == nil {
				t.Errorf("%+v accepted", c)
			}
		}
	})
}
