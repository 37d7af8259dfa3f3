package loop

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
)

// rawClient is an upgraded client connection made of bare system calls, so
// that the client side costs the Go heap nothing: what the heap grows by
// per connection is the server's.
type rawClient struct {
	tb testing.TB
	fd int
}

func rawUpgrade(tb testing.TB, addr *net.TCPAddr) rawClient {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		tb.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(10 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	c := rawClient{tb: tb, fd: fd}
	key := codec.NewClientKey()
	c.write(codec.AppendClientRequest(nil, addr.String(), "/ws", key[:], nil, nil))
	var r codec.Response
	var have []byte
	for {
		have = c.read(have)
		if k, err := r.Parse(have, 0); err != nil || k > 0 {
			if err != nil || r.Status() != 101 {
				tb.Fatalf("upgrade: %v %q", err, have)
			}
			return c
		}
	}
}

func (c rawClient) write(b []byte) {
	if _, err := unix.Write(c.fd, b); err != nil {
		c.tb.Fatal(err)
	}
}

// read appends what one read brings to have.
func (c rawClient) read(have []byte) []byte {
	var buf [512]byte
	n, err := unix.Read(c.fd, buf[:])
	if err != nil || n == 0 {
		c.tb.Fatalf("read: %v", err)
	}
	return append(have, buf[:n]...)
}

// roundTrip sends a masked frame and reads the server's answer, a frame of
// the opcode want with an unmasked payload of n bytes.
func (c rawClient) roundTrip(op ws.OpCode, payload []byte, want ws.OpCode) {
	c.write(codec.AppendFrameMasked(nil, op, true, payload, [4]byte{1, 2, 3, 4}))
	var have []byte
	for len(have) < 2+len(payload) {
		have = c.read(have)
	}
	if got := ws.OpCode(have[0] & 0xf); got != want || len(have) != 2+len(payload) {
		c.tb.Fatalf("answer %q: opcode %v, want %v with %d bytes", have, got, want, len(payload))
	}
}

func (c rawClient) close() { unix.Close(c.fd) }

// liveHeap is the heap in use after two collections.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// An idle connection (it upgraded, and pings and pongs go both ways) never
// allocates the data part; its first data message does, once, and keeps it.
// Through real sockets: the server pings (a short interval on the real
// clock) and answers the client's ping.
func TestIdleConnHasNoDataPart(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.PongTimeout = 10 * time.Second
	s := newTestServer(t, cfg, echoHandler{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	c := rawUpgrade(t, s.Addr().(*net.TCPAddr))
	defer c.close()
	var conn *Conn
	waitUntil(t, func() bool {
		_ = s.forEachConn(0, 0, func(x *Conn) bool { conn = x; return false })
		return conn != nil
	})
	c.roundTrip(ws.OpPing, []byte("are you there"), ws.OpPong)
	// The server's pings: answer two of them.
	for range 2 {
		var have []byte
		for len(have) < 2 {
			have = c.read(have)
		}
		if ws.OpCode(have[0]&0xf) != ws.OpPing {
			t.Fatalf("got %q, want a ping", have)
		}
		c.write(codec.AppendFrameMasked(nil, ws.OpPong, true, have[2:], [4]byte{5, 6, 7, 8}))
	}
	waitUntil(t, func() bool { return s.Stats().PingsSent >= 2 })
	if conn.data.Load() != nil {
		t.Fatal("an idle connection allocated its data part")
	}
	c.roundTrip(ws.OpText, []byte("hello"), ws.OpText)
	d := conn.data.Load()
	if d == nil {
		t.Fatal("no data part after a message")
	}
	c.roundTrip(ws.OpBinary, []byte("again"), ws.OpBinary)
	if conn.data.Load() != d {
		t.Fatal("the data part was replaced")
	}
	info, err := conn.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.MessagesIn != 2 || info.MessagesOut != 2 || info.BytesIn != 10 {
		t.Fatalf("counts %+v, want 2 in (10 bytes) and 2 out", info)
	}
}

// bareGnet is bare gnet (this module's, third_party/gnet) speaking just
// enough WebSocket to upgrade: what it keeps per connection is gnet's own
// state, the baseline of issue 16's goal 3a (bench/peers/gnet is the same
// server as a process, for the RSS slope).
type bareGnet struct {
	gnet.BuiltinEventEngine
	eng chan gnet.Engine
}

var bareUpgraded = new(byte) // the context of an upgraded connection

func (g *bareGnet) OnBoot(e gnet.Engine) gnet.Action { g.eng <- e; return gnet.None }

func (g *bareGnet) OnTraffic(c gnet.Conn) gnet.Action {
	if c.Context() != nil {
		_, _ = c.Discard(-1)
		return gnet.None
	}
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return gnet.None
	}
	var req codec.Request
	if _, err := req.Parse(buf[:end+4], 0); err != nil {
		return gnet.Close
	}
	resp := codec.AppendUpgradeResponse(nil, req.Key(), nil, nil)
	_, _ = c.Discard(end + 4)
	c.SetContext(bareUpgraded)
	_, _ = c.Write(resp)
	return gnet.None
}

// startBareGnet runs bareGnet with wsgate's gnet options on a free port.
func startBareGnet(tb testing.TB, loops int) (*net.TCPAddr, func()) {
	g := &bareGnet{eng: make(chan gnet.Engine, 1)}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(g, "tcp://127.0.0.1:0", gnet.WithNumEventLoop(loops), gnet.WithMulticore(loops > 1),
			gnet.WithReuseAddr(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithLogger(gnetLogger{slog.New(slog.DiscardHandler)}))
	}()
	var eng gnet.Engine
	select {
	case eng = <-g.eng:
	case err := <-done:
		tb.Fatal(err)
	}
	fd, err := eng.Dup()
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	return sockaddrToTCP(sa).(*net.TCPAddr), func() { _ = eng.Stop(context.Background()); <-done }
}

// BenchmarkIdleConnMemory reports the live Go heap per upgraded
// connection, through real sockets (the clients are bare descriptors):
// "idle" connections only upgraded; "after_echo" each echoed one 16-byte
// message first, which allocates its data part (conn_data.go) and keeps it;
// "gnet" is bare gnet (bareGnet) with wsgate's gnet options: idle minus gnet
// is what wsgate keeps per connection beyond gnet's own state.
// The heap is read after two collections, so garbage is left out; the
// server's RSS slope (bench/peers/compare --only idle) includes it.
//
//	go test -run '^$' -bench BenchmarkIdleConnMemory -benchtime 3x ./loop/
func BenchmarkIdleConnMemory(b *testing.B) {
	const n, loops = 4000, 2
	for _, name := range []string{"gnet", "idle", "after_echo"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				var addr *net.TCPAddr
				var stop func()
				var s *Server
				if name == "gnet" {
					addr, stop = startBareGnet(b, loops)
				} else {
					cfg := testConfig()
					cfg.Loops = loops
					s = newTestServer(b, cfg, echoHandler{})
					if err := s.Start(); err != nil {
						b.Fatal(err)
					}
					addr, stop = s.Addr().(*net.TCPAddr), func() { s.Shutdown(b.Context()) }
				}
				var cs []rawClient
				// Warm up: the tables, pools and worker stacks a
				// first batch grows.
				for range 200 {
					cs = append(cs, rawUpgrade(b, addr))
				}
				before := liveHeap()
				msg := make([]byte, 16)
				for range n {
					c := rawUpgrade(b, addr)
					if name == "after_echo" {
						c.roundTrip(ws.OpBinary, msg, ws.OpBinary)
					}
					cs = append(cs, c)
				}
				end := time.Now().Add(20 * time.Second)
				for s != nil && s.Stats().WSConns != int64(len(cs)) && time.Now().Before(end) {
					time.Sleep(5 * time.Millisecond)
				}
				b.ReportMetric(float64(liveHeap()-before)/n, "B/conn")
				for _, c := range cs {
					c.close()
				}
				stop()
			}
		})
	}
}
