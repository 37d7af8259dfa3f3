package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// Shutdown delivers every event queued for the handler, those waiting for
// a free worker included, within its deadline; what cannot run is counted.

// openAndClose connects n gorilla clients and closes their TCP connections
// once the server has them, without a closing handshake.
func openAndClose(t *testing.T, srv *gateway.Server, n int) {
	t.Helper()
	base := srv.Stats().WSConns
	var cs []*gorilla.Conn
	for range n {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	waitFor(t, func() bool { return srv.Stats().WSConns == base+int64(n) })
	for _, c := range cs {
		c.Close()
	}
	waitFor(t, func() bool { return srv.Stats().WSConns == base })
}

// blocker connects a client whose first message blocks the handler, and
// which answers the server's close as a client should.
func blocker(t *testing.T, srv *gateway.Server) {
	t.Helper()
	c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	c.WriteMessage(gorilla.TextMessage, []byte("block"))
}

// With one worker held by a slow handler, 8 connections open and close:
// their OnOpen and OnClose wait on the loops' retry lists. Shutdown runs
// all of them once the worker is free, after the loops have stopped.
func TestShutdownRunsEveryOnClose(t *testing.T) {
	release := make(chan struct{})
	var opens, closes atomic.Int64
	entered := make(chan struct{})
	h := gateway.HandlerFuncs{
		Open:  func(*gateway.Conn) { opens.Add(1) },
		Close: func(*gateway.Conn, error) { closes.Add(1) },
		Message: func(*gateway.Conn, gateway.OpCode, []byte) {
			close(entered)
			<-release
		},
	}
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", Loops: 2, Workers: 1, PingInterval: -1}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	blocker(t, srv)
	<-entered
	openAndClose(t, srv, 8)
	if n := closes.Load(); n != 0 {
		t.Fatalf("%d OnClose ran while the only worker was held", n)
	}
	go func() {
		time.Sleep(300 * time.Millisecond) // the loops stop meanwhile
		close(release)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if o, c := opens.Load(), closes.Load(); o != 9 || c != 9 {
		t.Fatalf("OnOpen ran %d times, OnClose %d times; want 9 and 9", o, c)
	}
	if st := srv.Stats(); st.EventsLost != 0 || st.HandlerConns != 0 {
		t.Fatalf("EventsLost %d, HandlerConns %d", st.EventsLost, st.HandlerConns)
	}
}

// When the handler stays stuck past Shutdown's deadline, the events that
// never ran are counted, not silently gone.
func TestShutdownCountsLostEvents(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	h := gateway.HandlerFuncs{Message: func(*gateway.Conn, gateway.OpCode, []byte) {
		once.Do(func() { close(entered) })
		<-release
	}}
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", Loops: 2, Workers: 1, PingInterval: -1}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release) }) // the worker exits before the leak check
	blocker(t, srv)
	<-entered
	openAndClose(t, srv, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	// 8 connections: OnOpen and OnClose each; the blocker's OnClose waits
	// behind its stuck message, with the worker.
	st := srv.Stats()
	if st.EventsLost != 16 || st.HandlerConns != 9 {
		t.Fatalf("EventsLost %d, HandlerConns %d; want 16 and 9", st.EventsLost, st.HandlerConns)
	}
}

// With a backend whose message hook hangs and --workers 1, connections
// that open and close meanwhile still get their disconnect hooks when the
// gateway shuts down.
func TestShutdownSendsEveryDisconnectHook(t *testing.T) {
	b := newFakeBackend(t)
	entered := make(chan struct{})
	var once sync.Once
	b.set(func(b *fakeBackend) {
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			once.Do(func() { close(entered) })
			<-r.Context().Done() // until Shutdown cancels the message hooks
		}
	})
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", Loops: 2, Workers: 1, PingInterval: -1, Backend: b.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	blocker(t, srv)
	<-entered
	openAndClose(t, srv, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(b.disconnects); n != 9 {
		t.Fatalf("%d disconnect hooks, want 9", n)
	}
}

// Conn.Info with a context that ends while the loop holds the call must
// not race with the loop filling the answer (run with -race).
func TestInfoContextEnds(t *testing.T) {
	opened := make(chan *gateway.Conn, 1)
	srv := startServer(t, gateway.Config{PingInterval: -1}, gateway.HandlerFuncs{Open: func(c *gateway.Conn) { opened <- c }})
	client := dialRaw(t, srv)
	_ = client
	c := <-opened
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	var answered atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				info, err := c.Info(ctx)
				switch {
				case err == nil:
					answered.Add(1)
					if info.ID != c.ID() {
						t.Errorf("Info: id %d, want %d", info.ID, c.ID())
					}
				case !errors.Is(err, context.Canceled):
					t.Errorf("Info: %v", err)
				case info.ID != 0:
					t.Errorf("Info returned %+v with its error", info)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatalf("Info: %v", err)
	}
	t.Logf("%d of 1600 calls answered before their context ended", answered.Load())
}

// A hook's Request.Conn cannot send or close before the upgrade.
type sendEarly struct {
	gateway.Echo
	errs chan [2]error
}

func (h sendEarly) OnHandshake(r *gateway.Request) error {
	h.errs <- [2]error{r.Conn().Send(gateway.OpText, []byte("early")), r.Conn().Close(1000, "")}
	return nil
}

func TestSendBeforeUpgrade(t *testing.T) {
	h := sendEarly{errs: make(chan [2]error, 1)}
	srv := startServer(t, gateway.Config{PingInterval: -1}, h)
	c := dialRaw(t, srv)
	if errs := <-h.errs; !errors.Is(errs[0], gateway.ErrNotOpen) || !errors.Is(errs[1], gateway.ErrNotOpen) {
		t.Fatalf("Send, Close before the upgrade: %v, %v; want ErrNotOpen", errs[0], errs[1])
	}
	c.probeEcho()
}

// probeEcho checks that the connection is open and echoes.
func (c *rawClient) probeEcho() {
	c.t.Helper()
	c.send(text("still open"))
	c.expectMessage(opText, []byte("still open"))
}

// deferAll defers every upgrade and hands the pending ones to the test.
type deferAll struct {
	gateway.Echo
	pending chan *gateway.PendingUpgrade
}

func (h deferAll) OnHandshake(r *gateway.Request) error {
	h.pending <- r.Defer()
	return nil
}

// An upgrade a hook accepts after the drain began is drained too: it gets
// its 1001 within the window (on a fake clock, so "within" is exact).
func TestDrainDeferredUpgrade(t *testing.T) {
	h := deferAll{pending: make(chan *gateway.PendingUpgrade, 1)}
	window := time.Second
	srv, ft := startFake(t, gateway.Config{DrainWindow: window, DrainGrace: 5 * time.Second, PingInterval: -1, TimerTick: 10 * time.Millisecond}, h)
	type dial struct {
		c   *gorilla.Conn
		err error
	}
	dialed := make(chan dial, 1)
	go func() {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		dialed <- dial{c, err}
	}()
	p := <-h.pending
	drained := make(chan error, 1)
	go func() { drained <- srv.Drain(context.Background()) }()
	waitFor(t, srv.Draining)
	if err := p.Accept(gateway.Accept{}); err != nil {
		t.Fatal(err)
	}
	d := <-dialed
	if d.err != nil {
		t.Fatal(d.err)
	}
	defer d.c.Close()
	closed := make(chan error, 1)
	go func() {
		d.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := d.c.ReadMessage() // answers the close
		closed <- err
	}()
	ft.advance(window)
	if err := <-closed; !gorilla.IsCloseError(err, gorilla.CloseGoingAway) {
		t.Fatalf("deferred connection: %v, want 1001 within the window", err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// Drain honours its context: when it ends, the rest are closed with 1001
// at once and Drain returns the context's error.
func TestDrainContext(t *testing.T) {
	srv := startServer(t, gateway.Config{DrainWindow: time.Minute, DrainGrace: time.Minute, PingInterval: -1}, gateway.Echo{})
	var cs []*gorilla.Conn
	for range 10 {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Drain(ctx) }()
	for _, c := range cs {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); !gorilla.IsCloseError(err, gorilla.CloseGoingAway) {
			t.Fatalf("client: %v, want 1001", err)
		}
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain: %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after its context ended")
	}
}
