package loop

import (
	"context"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/testkit"
)

// These tests check the patch wsgate carries in third_party/gnet (see
// PATCH.md) on a bare gnet engine, through real sockets.

// patchServer is a gnet handler whose connection the test steers from
// outside through EventLoop.Execute.
type patchServer struct {
	gnet.BuiltinEventEngine
	eng     chan gnet.Engine
	conn    chan gnet.Conn
	reads   atomic.Int64 // OnTraffic calls
	consume atomic.Bool  // take what arrives (otherwise leave it buffered)
	got     atomic.Int64 // bytes taken
	sum     hash.Hash32  // of the bytes taken, on the loop
}

func (p *patchServer) take(b []byte) {
	p.sum.Write(b)
	p.got.Add(int64(len(b)))
}

func (p *patchServer) OnBoot(e gnet.Engine) gnet.Action { p.eng <- e; return gnet.None }

func (p *patchServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	p.conn <- c
	return nil, gnet.None
}

func (p *patchServer) OnTraffic(c gnet.Conn) gnet.Action {
	p.reads.Add(1)
	if p.consume.Load() {
		b, _ := c.Next(-1)
		p.take(b)
	} else if !c.(readPauser).ReadPaused() {
		// First read: pause, leaving what came buffered.
		if err := c.(readPauser).PauseRead(); err != nil {
			panic(err)
		}
	}
	return gnet.None
}

// startPatchServer runs p on a free loopback port and returns its address.
func startPatchServer(t *testing.T, p *patchServer, opts ...gnet.Option) (gnet.Engine, string) {
	t.Helper()
	p.eng, p.conn, p.sum = make(chan gnet.Engine, 1), make(chan gnet.Conn, 4), crc32.NewIEEE()
	opts = append(opts, gnet.WithLogger(gnetLogger{slog.New(slog.DiscardHandler)}))
	done := make(chan error, 1)
	go func() { done <- gnet.Run(p, "tcp://127.0.0.1:0", opts...) }()
	var eng gnet.Engine
	select {
	case eng = <-p.eng:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = eng.Stop(context.Background())
		<-done
	})
	// OnBoot runs before the listeners are polled; Dup works at once.
	fd, err := eng.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return eng, sockaddrToTCP(sa).String()
}

// onLoop runs fn on c's event loop and waits for it.
func onLoop(t *testing.T, c gnet.Conn, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if err := c.EventLoop().Execute(context.Background(), runnable(func() { fn(); close(done) })); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not run the task")
	}
}

type runnable func()

func (r runnable) Run(context.Context) error { r(); return nil }

// A paused connection is not read however its outbound buffer fills and
// drains (the write paths that re-arm read interest in unpatched gnet),
// its peer's writes block, and after ResumeRead every byte arrives.
func TestGnetPatchPauseRead(t *testing.T) {
	const (
		total = 64 << 20 // more than the kernel's buffers hold
		back  = 8 << 20  // written back while paused
	)
	p := &patchServer{}
	_, addr := startPatchServer(t, p)
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var written atomic.Int64
	writeDone := make(chan error, 1)
	sent := crc32.NewIEEE()
	go func() {
		chunk := make([]byte, 64<<10)
		for off := 0; off < total; off += len(chunk) {
			binary.BigEndian.PutUint64(chunk, uint64(off))
			sent.Write(chunk)
			if _, err := client.Write(chunk); err != nil {
				writeDone <- err
				return
			}
			written.Add(int64(len(chunk)))
		}
		writeDone <- nil
	}()
	gc := <-p.conn
	waitUntil(t, func() bool { return p.reads.Load() >= 1 })
	// The client's writes stop once the kernel's buffers are full.
	for last := int64(-1); written.Load() != last; {
		last = written.Load()
		time.Sleep(100 * time.Millisecond)
	}
	reads := p.reads.Load()

	// Write back more than the socket takes at once: gnet buffers it and
	// arms EPOLLOUT (ModReadWrite), then drains it as the client reads and
	// disarms (ModRead).
	readBack := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, client, back)
		readBack <- err
	}()
	onLoop(t, gc, func() {
		if _, err := gc.Write(make([]byte, back)); err != nil {
			t.Errorf("write back: %v", err)
		}
	})
	if err := <-readBack; err != nil {
		t.Fatal(err)
	}
	var outbound int
	onLoop(t, gc, func() { outbound = gc.OutboundBuffered() })
	time.Sleep(100 * time.Millisecond) // for a read that should not come
	if n := p.reads.Load(); n != reads || outbound != 0 {
		t.Fatalf("%d reads while paused (outbound left %d): the write path re-armed reading", n-reads, outbound)
	}
	select {
	case err := <-writeDone:
		t.Fatalf("the client wrote everything while the server was paused (%v)", err)
	default:
	}

	// Resume: what gnet kept raises no event, so take it here.
	onLoop(t, gc, func() {
		p.consume.Store(true)
		b, _ := gc.Next(-1)
		p.take(b)
		if err := gc.(readPauser).ResumeRead(); err != nil {
			t.Errorf("ResumeRead: %v", err)
		}
	})
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return p.got.Load() == total })
	var sum uint32
	onLoop(t, gc, func() { sum = p.sum.Sum32() })
	if sum != sent.Sum32() {
		t.Fatal("the bytes received differ from those sent: lost or reordered")
	}
}

// StopAccepting refuses new connections, keeps the accepted ones and the
// engine running, with one listener and with one per loop (SO_REUSEPORT).
func TestGnetPatchStopAccepting(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "one listener", true: "reuse port"}[reuse], func(t *testing.T) {
			p := &patchServer{}
			p.consume.Store(true)
			eng, addr := startPatchServer(t, p, gnet.WithMulticore(true), gnet.WithNumEventLoop(2), gnet.WithReusePort(reuse))
			before, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer before.Close()
			<-p.conn
			if err := eng.StopAccepting(); err != nil {
				t.Fatal(err)
			}
			for range 20 {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Fatal("a connection was accepted after StopAccepting")
				}
			}
			if _, err := before.Write([]byte("still here")); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, func() bool { return p.got.Load() == int64(len("still here")) })
			if err := eng.Validate(); err != nil {
				t.Fatalf("engine stopped: %v", err)
			}
		})
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.Until(t, "the condition", cond)
}

// gateServer refuses every read while closed is set, pausing the
// connection in AllowRead as the ReadGate contract asks.
type gateServer struct {
	patchServer
	closed atomic.Bool
	asked  atomic.Int64 // AllowRead calls that refused
}

func (g *gateServer) AllowRead(c gnet.Conn) bool {
	if !g.closed.Load() {
		return true
	}
	g.asked.Add(1)
	if err := c.(readPauser).PauseRead(); err != nil {
		panic(err)
	}
	return false
}

// With the gate closed, gnet makes no read at all: OnTraffic is not
// called, nothing reaches gnet's inbound buffer, the peer's bytes stay in
// the kernel, and the refused connection is not reported again (no busy
// loop). After ResumeRead with the gate open every byte arrives.
func TestGnetPatchReadGate(t *testing.T) {
	const total = 256 << 10
	// startPatchServer runs a *patchServer; this handler is a gateServer.
	g2 := &gateServer{}
	g2.consume.Store(true)
	g2.closed.Store(true)
	g2.eng, g2.conn, g2.sum = make(chan gnet.Engine, 1), make(chan gnet.Conn, 4), crc32.NewIEEE()
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(g2, "tcp://127.0.0.1:0", gnet.WithLogger(gnetLogger{slog.New(slog.DiscardHandler)}))
	}()
	eng := <-g2.eng
	t.Cleanup(func() { _ = eng.Stop(context.Background()); <-done })
	fd, err := eng.Dup()
	if err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.Dial("tcp", sockaddrToTCP(sa).String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sent := crc32.NewIEEE()
	buf := make([]byte, total)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	sent.Write(buf)
	if _, err := client.Write(buf); err != nil {
		t.Fatal(err)
	}
	gc := <-g2.conn
	waitUntil(t, func() bool { return g2.asked.Load() >= 1 })
	time.Sleep(100 * time.Millisecond) // a busy loop would ask again and again meanwhile
	var inbound int
	onLoop(t, gc, func() { inbound = gc.InboundBuffered() })
	if n := g2.reads.Load(); n != 0 || inbound != 0 || g2.got.Load() != 0 {
		t.Fatalf("gate closed: %d OnTraffic calls, %d bytes buffered, %d taken", n, inbound, g2.got.Load())
	}
	if n := g2.asked.Load(); n != 1 {
		t.Fatalf("the refused connection was reported %d times, want 1", n)
	}
	g2.closed.Store(false)
	onLoop(t, gc, func() {
		if err := gc.(readPauser).ResumeRead(); err != nil {
			t.Error(err)
		}
	})
	waitUntil(t, func() bool { return g2.got.Load() == total })
	var sum uint32
	onLoop(t, gc, func() { sum = g2.sum.Sum32() })
	if sum != sent.Sum32() {
		t.Fatal("the bytes after the gate opened differ from those sent")
	}
}

// ConnPointer and ConnAt give back the very connection gnet handed out,
// still working, and nil for nil or for a Conn that is not gnet's own;
// ConnAt allocates nothing.
func TestConnPointer(t *testing.T) {
	p := &patchServer{}
	p.consume.Store(true)
	_, addr := startPatchServer(t, p)
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	gc := <-p.conn
	ptr := gnet.ConnPointer(gc)
	if ptr == nil || gnet.ConnAt(ptr) != gc {
		t.Fatalf("ConnAt(ConnPointer(c)) = %v, want %v", gnet.ConnAt(ptr), gc)
	}
	var back gnet.Conn
	if n := testing.AllocsPerRun(100, func() { back = gnet.ConnAt(ptr) }); n != 0 || back != gc {
		t.Fatalf("ConnAt: %v allocations, got %v", n, back)
	}
	onLoop(t, gc, func() {
		if _, err := gnet.ConnAt(ptr).Write([]byte("through the pointer")); err != nil {
			t.Error(err)
		}
	})
	buf := make([]byte, len("through the pointer"))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "through the pointer" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if gnet.ConnPointer(nil) != nil || gnet.ConnAt(nil) != nil {
		t.Fatal("nil does not round-trip to nil")
	}
	if gnet.ConnPointer(holderConn{}) != nil {
		t.Fatal("a Conn that is not gnet's has a pointer")
	}
}
