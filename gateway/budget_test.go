package gateway_test

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// startBudgetServer is startServer for the memory budget's tests: once the
// server has shut down, every byte charged to the budget must have been
// released (the loops' own batches included, readable once they stopped).
func startBudgetServer(t *testing.T, cfg gateway.Config, h gateway.Handler) *gateway.Server {
	t.Helper()
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0) // the gateway's default, not startServer's 2
	}
	var srv *gateway.Server
	// Registered before startServer's Shutdown, so it runs after it.
	t.Cleanup(func() {
		if srv == nil {
			return
		}
		st := srv.Stats()
		if st.MemoryCharged != 0 {
			t.Errorf("after shutdown %d bytes are still charged: %v", st.MemoryCharged, st.MemoryCharges)
		}
		for kind, n := range st.MemoryCharges {
			if n != 0 {
				t.Errorf("after shutdown %d bytes are still charged as %s", n, kind)
			}
		}
	})
	srv = startServer(t, cfg, h)
	return srv
}

// dialSlow upgrades a client whose receive buffer is tiny and that never
// reads unless told to: a slow reader. What the server sends it piles up in
// the server's outbound buffer.
func dialSlow(t *testing.T, srv *gateway.Server) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16), key: codec.NewMaskKey()}
	key := codec.NewClientKey()
	c.writeRaw(codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, nil))
	if status, resp := c.readHTTP(); status != 101 {
		t.Fatalf("upgrade: %d\n%s", status, resp)
	}
	return c
}

// opened hands the server side of each connection to the test, in order.
func opened(ch chan *gateway.Conn) func(*gateway.Conn) { return func(c *gateway.Conn) { ch <- c } }

// push sends total bytes to c in frames of exactly 256 KiB, whose buffers
// the budget charges at their size.
func push(t *testing.T, c *gateway.Conn, total int) {
	t.Helper()
	data := make([]byte, 256<<10-codec.MaxHeaderSize)
	for sent := 0; sent < total; sent += 256 << 10 {
		if err := c.Send(gateway.OpBinary, data); err != nil {
			t.Fatalf("push: %v after %d bytes", err, sent)
		}
	}
}

// settled waits until the charged bytes of kind stop changing (the split is
// published each tick) and returns the stats.
func settled(t *testing.T, srv *gateway.Server, kind string, atLeast int64) gateway.Stats {
	t.Helper()
	var last int64 = -1
	var st gateway.Stats
	waitFor(t, func() bool {
		time.Sleep(30 * time.Millisecond)
		st = srv.Stats()
		n := st.MemoryCharges[kind]
		ok := n >= atLeast && n == last
		if testing.Verbose() && n != last {
			t.Logf("settling %s: %d %v", kind, st.MemoryCharged, st.MemoryCharges)
		}
		last = n
		return ok
	})
	return st
}

// readAll reads c's frames until a close frame and returns the payload
// bytes before it and the close frame's code and reason.
func readAll(c *rawClient, limit time.Duration) (int64, ws.StatusCode, string, error) {
	var n int64
	for {
		c.conn.SetReadDeadline(time.Now().Add(limit))
		h, p, err := c.readFrame()
		if err != nil {
			return n, 0, "", err
		}
		if h.OpCode == ws.OpClose {
			code, reason, err := codec.ParseCloseUnsafe(p)
			return n, code, string(reason), err
		}
		n += int64(len(p))
	}
}

// Slow readers with large pushes pending: when the account reaches 90% of
// the budget (here because clients fill a blocked handler, which closing
// would not relieve), the largest holder of output is shed first, with
// 1013 and its reason after everything queued for it; the smaller slow
// readers and a client that reads, on the same loop, keep working. (The
// kernel takes up to 4 MiB of each socket's output, which is not charged:
// the pushes are sized so that the order holds whatever it took.)
func TestMemoryBudgetShedsSlowReadersLargestFirst(t *testing.T) {
	const budget = 32 << 20
	conns := make(chan *gateway.Conn, 64)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	srv := startBudgetServer(t, gateway.Config{
		Loops: 1, MemoryBudget: budget, MaxOutbound: 16 << 20, PingInterval: -1, CloseTimeout: 30 * time.Second,
	}, gateway.HandlerFuncs{Open: opened(conns), Message: func(c *gateway.Conn, op gateway.OpCode, d []byte) {
		if len(d) == 1<<20 {
			<-release // the filler's messages stay with the handler
			return
		}
		c.Send(op, d)
	}})
	echo := func(c *rawClient) {
		t.Helper()
		c.frame(ws.OpText, true, []byte("still here"))
		if _, m := c.readMessage(); string(m) != "still here" {
			t.Fatalf("echo: %q", m)
		}
	}
	small := dialRaw(t, srv)
	<-conns
	echo(small)
	sizes := []int{14 << 20, 8 << 20, 5 << 20} // pushed to S1, S2, S3
	var slow []*rawClient
	var server []*gateway.Conn
	for _, n := range sizes {
		slow = append(slow, dialSlow(t, srv))
		server = append(server, <-conns)
		push(t, server[len(server)-1], n)
	}
	st := settled(t, srv, "outbound", 4<<20)
	pushed := st.MemoryCharged
	// Clients whose 1 MiB messages the handler holds take the account over
	// 90%, one message at a time.
	var fillers int
	for srv.Stats().MemorySheds["outbound"] == 0 && fillers < 30 {
		// Past 90% upgrades are refused until the shed, which the next
		// tick makes: a 503 here means the mark is reached.
		h := dialTCP(t, srv)
		key := codec.NewClientKey()
		h.writeRaw(codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, nil))
		if status, resp := h.readHTTP(); status == 503 {
			break
		} else if status != 101 {
			t.Fatalf("filler upgrade: %d\n%s", status, resp)
		}
		<-conns
		h.frame(ws.OpBinary, true, make([]byte, 1<<20))
		fillers++
		want := pushed + int64(fillers)<<20
		waitFor(t, func() bool { st := srv.Stats(); return st.MemoryCharged >= want || st.MemorySheds["outbound"] > 0 })
	}
	waitFor(t, func() bool { return srv.Stats().MemorySheds["outbound"] >= 1 })
	st = srv.Stats()
	t.Logf("pushed %v to three slow readers: %d MiB charged; %d MiB of messages held: charged %.1f of %d MiB (%v); sheds %v",
		sizes, pushed>>20, fillers, float64(st.MemoryCharged)/(1<<20), budget>>20, st.MemoryCharges, st.MemorySheds)
	echo(small)

	n, code, reason, err := readAll(slow[0], 10*time.Second)
	if err != nil || code != gateway.StatusCode(1013) || reason != "memory budget: outbound queue" {
		t.Fatalf("S1: %d bytes, then close %d %q %v; want 1013", n, code, reason, err)
	}
	if want := int64(sizes[0] / (256 << 10) * (256<<10 - codec.MaxHeaderSize)); n != want {
		t.Errorf("S1 read %d payload bytes before its close, want all %d queued", n, want)
	}
	slow[0].conn.Write(codec.AppendCloseMasked(nil, 1013, "", slow[0].key))
	slow[0].expectEOF()
	// The others were not shed: they read what was queued, then more.
	for i, c := range slow[1:] {
		server[i+1].Send(gateway.OpText, []byte("end"))
		var got int64
		for {
			_, m := c.readMessage()
			if string(m) == "end" {
				break
			}
			got += int64(len(m))
		}
		if want := int64(sizes[i+1] / (256 << 10) * (256<<10 - codec.MaxHeaderSize)); got != want {
			t.Errorf("S%d read %d bytes, want %d", i+2, got, want)
		}
	}
	echo(small)
	st = srv.Stats()
	if st.MemorySheds["outbound"] != 1 || st.MemorySheds["assembly"] != 0 || st.MemoryRefusals["send"] != 0 {
		t.Fatalf("sheds %v, refusals %v: want one outbound shed, no refusal", st.MemorySheds, st.MemoryRefusals)
	}
	waitFor(t, func() bool { return srv.Stats().Closes["memory_budget"] == 1 })
	close(release)
}

// A fragmented message that needs more memory is what shedding frees,
// largest first; messages held by a blocked handler are not (closing their
// connection would not free them): their clients are not shed.
func TestMemoryBudgetShedsFragmentedAssembly(t *testing.T) {
	const budget = 8 << 20
	release := make(chan struct{})
	srv := startBudgetServer(t, gateway.Config{
		Loops: 1, Workers: 16, MemoryBudget: budget, MaxMessageSize: 2 << 20, PingInterval: -1,
	}, gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, d []byte) {
		<-release
		c.Send(gateway.OpText, []byte(strconv.Itoa(len(d))))
	}})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	a, b := dialRaw(t, srv), dialRaw(t, srv)
	a.frame(ws.OpBinary, false, make([]byte, 1<<20))
	a.frame(ws.OpContinuation, false, make([]byte, 512<<10)) // 1.5 MiB so far: a 2 MiB buffer
	settled(t, srv, "assembly", 2<<20)
	b.frame(ws.OpBinary, false, make([]byte, 768<<10)) // a 1 MiB buffer
	settled(t, srv, "assembly", 3<<20)
	var held []*rawClient
	for range 4 { // 4 MiB with the blocked handler
		h := dialRaw(t, srv)
		h.frame(ws.OpBinary, true, make([]byte, 1<<20))
		held = append(held, h)
	}
	st := settled(t, srv, gateway.MemoryKindMessages, 4<<20)
	if st.MemorySheds["assembly"] != 0 {
		t.Fatalf("shed at %d", st.MemoryCharged)
	}
	// 256 KiB more: 7.25 of 8 MiB, over 90%.
	last := dialRaw(t, srv)
	last.frame(ws.OpBinary, true, make([]byte, 256<<10))
	waitFor(t, func() bool { return srv.Stats().MemorySheds["assembly"] >= 1 })
	st = srv.Stats()
	t.Logf("charged %d of %d: %v; sheds %v", st.MemoryCharged, budget, st.MemoryCharges, st.MemorySheds)
	_, code, reason, err := readAll(a, 10*time.Second)
	if err != nil || code != gateway.StatusCode(1013) || reason != "memory budget: message assembly" {
		t.Fatalf("A: close %d %q %v; want 1013", code, reason, err)
	}
	close(release)
	b.frame(ws.OpContinuation, true, make([]byte, 100<<10))
	if _, m := b.readMessage(); string(m) != strconv.Itoa(868<<10) {
		t.Fatalf("B's message: %q", m)
	}
	for _, h := range append(held, last) {
		h.readMessage()
	}
	if st := srv.Stats(); st.MemorySheds["assembly"] != 1 || st.MemorySheds["outbound"] != 0 {
		t.Fatalf("sheds %v: want A's alone", st.MemorySheds)
	}
}

// With the account full of what only the handler can free, Send and
// Publish of a large message return ErrMemoryBudget (counted), small ones
// still fit, and once the handler lets go the large ones go through;
// upgrades are refused with 503 meanwhile.
func TestMemoryBudgetRefusesSendAndPublish(t *testing.T) {
	const budget = 4 << 20
	release := make(chan struct{})
	conns := make(chan *gateway.Conn, 8)
	srv := startBudgetServer(t, gateway.Config{Loops: 1, MemoryBudget: budget, PingInterval: -1, Admin: "127.0.0.1:0"},
		gateway.HandlerFuncs{
			Open: func(c *gateway.Conn) {
				c.Subscribe("t")
				conns <- c
			},
			Message: func(*gateway.Conn, gateway.OpCode, []byte) { <-release },
		})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	reader := dialRaw(t, srv)
	rc := <-conns
	// 3.75 of 4 MiB with the handler: over 90%.
	for _, n := range []int{1 << 20, 1 << 20, 1 << 20, 512 << 10, 256 << 10} {
		h := dialRaw(t, srv)
		<-conns
		h.frame(ws.OpBinary, true, make([]byte, n))
	}
	settled(t, srv, gateway.MemoryKindMessages, 3<<20+768<<10)
	big := make([]byte, 1<<20) // a 2 MiB buffer with its header
	if err := rc.Send(gateway.OpBinary, big); !errors.Is(err, gateway.ErrMemoryBudget) {
		t.Fatalf("Send over the budget: %v", err)
	}
	if _, err := srv.Publish("t", gateway.OpBinary, big); !errors.Is(err, gateway.ErrMemoryBudget) {
		t.Fatalf("Publish over the budget: %v", err)
	}
	// The admin API says so with 503 and Retry-After, not 500.
	resp, err := http.Post("http://"+srv.AdminAddr().String()+"/v1/connections/"+rc.IDString()+"/messages",
		"application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("push over the budget: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := rc.Send(gateway.OpText, []byte("small")); err != nil {
		t.Fatalf("small Send: %v", err)
	}
	if _, m := reader.readMessage(); string(m) != "small" {
		t.Fatalf("got %q", m)
	}
	if status, _ := dialTCPUpgrade(t, srv); status != 503 {
		t.Fatalf("upgrade at %d of %d bytes: %d, want 503", srv.Stats().MemoryCharged, budget, status)
	}
	close(release)
	waitFor(t, func() bool { return srv.Stats().MemoryCharged < budget/2 })
	if err := rc.Send(gateway.OpBinary, big); err != nil {
		t.Fatalf("Send after the release: %v", err)
	}
	if _, m := reader.readMessage(); len(m) != len(big) {
		t.Fatalf("got %d bytes", len(m))
	}
	st := srv.Stats()
	if st.MemoryRefusals["send"] != 2 || st.MemoryRefusals["publish"] != 1 || st.Refused["memory_budget"] != 1 {
		t.Fatalf("refusals %v, upgrades refused %v", st.MemoryRefusals, st.Refused)
	}
	if st.MemorySheds["outbound"]+st.MemorySheds["assembly"] != 0 {
		t.Fatalf("sheds %v", st.MemorySheds)
	}
}

// dialTCPUpgrade sends an upgrade request and returns the answer's status.
func dialTCPUpgrade(t *testing.T, srv *gateway.Server) (int, []byte) {
	t.Helper()
	c := dialTCP(t, srv)
	key := codec.NewClientKey()
	c.writeRaw(codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, nil))
	return c.readHTTP()
}

// Every path that charges the budget releases what it charged: split
// requests, deferred upgrades with frames sent early, fragmented messages,
// a client gone mid-message, slow readers closed with output pending,
// publishes, and plain echoes (startBudgetServer checks the account after
// the shutdown).
func TestMemoryBudgetAccountReturnsToZero(t *testing.T) {
	conns := make(chan *gateway.Conn, 64)
	srv := startBudgetServer(t, gateway.Config{Loops: 2, MemoryBudget: 64 << 20, MaxOutbound: 16 << 20, PingInterval: -1},
		deferringEcho{conns: conns})
	// A request split across writes.
	split := dialTCP(t, srv)
	key := codec.NewClientKey()
	req := codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, nil)
	split.writeRaw(req[:20])
	time.Sleep(20 * time.Millisecond)
	// The rest, with an early frame the deferred upgrade must keep.
	split.writeRaw(append(req[20:], codec.AppendFrameMasked(nil, ws.OpText, true, []byte("early"), split.key)...))
	if status, _ := split.readHTTP(); status != 101 {
		t.Fatalf("split upgrade: %d", status)
	}
	<-conns
	if _, m := split.readMessage(); string(m) != "early" {
		t.Fatalf("early frame: %q", m)
	}
	// A fragmented echo.
	c := dialRaw(t, srv)
	sc := <-conns
	c.frame(ws.OpBinary, false, make([]byte, 100<<10))
	c.frame(ws.OpContinuation, true, make([]byte, 200<<10))
	if _, m := c.readMessage(); len(m) != 300<<10 {
		t.Fatalf("echo: %d bytes", len(m))
	}
	// A publish to both.
	sc.Subscribe("z")
	waitFor(t, func() bool { return srv.Subscribers("z") == 1 })
	srv.Publish("z", gateway.OpText, []byte("pub"))
	if _, m := c.readMessage(); string(m) != "pub" {
		t.Fatalf("publish: %q", m)
	}
	// A client gone halfway through a message.
	gone := dialRaw(t, srv)
	<-conns
	gone.frame(ws.OpBinary, false, make([]byte, 64<<10))
	gone.writeRaw(codec.AppendFrameMasked(nil, ws.OpContinuation, true, make([]byte, 512<<10), gone.key)[:100<<10])
	waitFor(t, func() bool { return srv.Stats().MemoryCharged > 0 })
	gone.conn.Close()
	// A slow reader closed with output pending.
	slow := dialSlow(t, srv)
	ss := <-conns
	push(t, ss, 8<<20)
	settled(t, srv, "outbound", 1<<20)
	slow.conn.Close()
	waitFor(t, func() bool { return srv.Stats().ConnsOpen == 2 })
}

// deferringEcho defers every upgrade and accepts it from another
// goroutine, then echoes.
type deferringEcho struct{ conns chan *gateway.Conn }

func (h deferringEcho) OnHandshake(r *gateway.Request) error {
	p := r.Defer()
	go func() {
		time.Sleep(10 * time.Millisecond)
		p.Accept(gateway.Accept{})
	}()
	return nil
}
func (h deferringEcho) OnOpen(c *gateway.Conn)                               { h.conns <- c }
func (deferringEcho) OnMessage(c *gateway.Conn, op gateway.OpCode, d []byte) { c.Send(op, d) }
func (deferringEcho) OnClose(*gateway.Conn, error)                           {}
