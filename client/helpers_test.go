package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testkit"
)

// until is testkit.Until.
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Until(t, what, cond)
}

// gw is a real gateway in this process (gateway.NewServer on 127.0.0.1:0)
// with an echo handler that also remembers its connections, for pushes.
type gw struct {
	srv   *gateway.Server
	mu    sync.Mutex
	conns map[uint64]*gateway.Conn
}

func startGateway(t testing.TB, cfg gateway.Config) *gw {
	t.Helper()
	g := &gw{conns: map[uint64]*gateway.Conn{}}
	cfg.Addr = "127.0.0.1:0"
	cfg.Loops = 1
	srv, err := gateway.NewServer(cfg, gateway.HandlerFuncs{
		Open: func(c *gateway.Conn) { g.mu.Lock(); g.conns[c.ID()] = c; g.mu.Unlock() },
		Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
			_ = c.Send(op, data)
		},
		Close: func(c *gateway.Conn, _ error) { g.mu.Lock(); delete(g.conns, c.ID()); g.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("Shutdown: %v", err)
		}
	})
	g.srv = srv
	return g
}

func (g *gw) url() string  { return "ws://" + g.srv.Addr().String() + "/ws" }
func (g *gw) addr() string { return g.srv.Addr().String() }

// push sends text to every open connection; it returns how many.
func (g *gw) push(text string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.conns {
		if c.Send(gateway.OpText, []byte(text)) == nil {
			n++
		}
	}
	return n
}

func (g *gw) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// proxy is a TCP relay between a client and a gateway whose pipes can be
// cut (both sockets closed: no close frame), frozen (bytes dropped both
// ways, sockets open: a black hole), retargeted, or made to refuse.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	refuse bool
	pipes  map[*pipe]struct{}
	wg     sync.WaitGroup
}

type pipe struct {
	a, b   net.Conn
	frozen bool
	mu     sync.Mutex
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, pipes: map[*pipe]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/ws" }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, refuse := p.target, p.refuse
		p.mu.Unlock()
		if refuse || target == "" {
			a.Close()
			continue
		}
		b, err := net.Dial("tcp", target)
		if err != nil {
			a.Close()
			continue
		}
		pp := &pipe{a: a, b: b}
		p.mu.Lock()
		p.pipes[pp] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.relay(pp, a, b)
		go p.relay(pp, b, a)
	}
}

func (p *proxy) relay(pp *pipe, from, to net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		pp.mu.Lock()
		frozen := pp.frozen
		pp.mu.Unlock()
		if n > 0 && !frozen {
			if _, werr := to.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil { // EOF or a cut: end both sides
			pp.a.Close()
			pp.b.Close()
			p.mu.Lock()
			delete(p.pipes, pp)
			p.mu.Unlock()
			return
		}
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pp := range p.pipes {
		pp.a.Close()
		pp.b.Close()
	}
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pp := range p.pipes {
		pp.mu.Lock()
		pp.frozen = true
		pp.mu.Unlock()
	}
}

func (p *proxy) set(target string, refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target, p.refuse = target, refuse
}

// recorder collects a client's events and the reconnect delays it chose;
// its Sleep waits at most 20 ms, so tests assert the chosen delays without
// waiting them.
type recorder struct {
	mu         sync.Mutex
	opens      []Open
	texts      []string
	binaries   [][]byte
	reconnects []Reconnect
	resumes    []Resumed
	misses     []Missed
	errs       []error
	closes     []error
	order      []string
}

func (r *recorder) options(o Options) Options {
	rec := func(kind string, f func()) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.order = append(r.order, kind)
		f()
	}
	o.OnOpen = func(e Open) { rec("open", func() { r.opens = append(r.opens, e) }) }
	o.OnMessage = func(t MessageType, d []byte) {
		rec("message", func() {
			if t == Text {
				r.texts = append(r.texts, string(d))
			} else {
				r.binaries = append(r.binaries, clone(d))
			}
		})
	}
	o.OnReconnecting = func(e Reconnect) { rec("reconnecting", func() { r.reconnects = append(r.reconnects, e) }) }
	o.OnResumed = func(e Resumed) { rec("resumed", func() { r.resumes = append(r.resumes, e) }) }
	o.OnMissed = func(e Missed) { rec("missed", func() { r.misses = append(r.misses, e) }) }
	o.OnError = func(e error) { rec("error", func() { r.errs = append(r.errs, e) }) }
	o.OnClose = func(e error) { rec("close", func() { r.closes = append(r.closes, e) }) }
	o.Backoff.Sleep = func(ctx context.Context, d time.Duration) error { return sleep(ctx, min(d, 20*time.Millisecond)) }
	return o
}

// get runs f under the recorder's lock.
func (r *recorder) get(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func (r *recorder) count(f func() int) func() bool {
	return func() bool { r.mu.Lock(); defer r.mu.Unlock(); return f() > 0 }
}

// dial dials with the recorder's callbacks and closes the client when the
// test ends.
func dial(t testing.TB, url string, o Options, r *recorder) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, r.options(o))
	if err != nil {
		t.Fatalf("Dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// dialRaw is a bare gorilla/websocket connection with the client's buffer
// settings, for the memory baseline.
func dialRaw(url string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{ReadBufferSize: DefaultReadBufferSize, WriteBufferPool: writePool}
	return d.Dial(url, nil)
}
