package gateway_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// 10,000 messages pipelined on a connection reach the handler and come back
// in order, with a pool of 2 workers and handlers that sleep at random.
func TestOrderPerConnection(t *testing.T) {
	const n = 10000
	var mu sync.Mutex
	var seen []uint32
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		if rand.IntN(50) == 0 {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		}
		mu.Lock()
		seen = append(seen, binary.BigEndian.Uint32(data))
		mu.Unlock()
		c.Send(op, data)
	}}
	// The mailbox must hold the whole pipeline: a client that outruns its
	// handler beyond the mailbox bound is closed (see backpressure tests).
	srv := startServer(t, gateway.Config{Workers: 2, MailboxMessages: n, MailboxBytes: 1 << 20}, h)
	var conns [2]*gorilla.Conn
	for i := range conns {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var wg sync.WaitGroup
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(ci<<24|i))
				if err := c.WriteMessage(gorilla.BinaryMessage, b[:]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				_, got, err := c.ReadMessage()
				if err != nil {
					t.Error(err)
					return
				}
				if v := binary.BigEndian.Uint32(got); v != uint32(ci<<24|i) {
					t.Errorf("conn %d: message %d came back as %d", ci, i, v&0xffffff)
					return
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	next := map[uint32]uint32{}
	for _, v := range seen {
		ci, i := v>>24, v&0xffffff
		if i != next[ci] {
			t.Fatalf("handler saw conn %d message %d, want %d", ci, i, next[ci])
		}
		next[ci]++
	}
	if len(seen) != len(conns)*n {
		t.Fatalf("handler saw %d messages, want %d", len(seen), len(conns)*n)
	}
}

// With every worker busy, messages wait in their mailboxes and are all
// delivered once workers free up; none is dropped and the loop keeps
// answering pings meanwhile.
func TestPoolOverloadLosesNothing(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		if string(data) == "block" {
			<-release
		}
		got.Add(1)
		c.Send(op, data)
	}}
	srv := startServer(t, gateway.Config{Workers: 1}, h)
	blocker := dialRaw(t, srv)
	blocker.frame(ws.OpText, true, []byte("block"))
	// Wait until the one worker is taken.
	for srv.Stats().MessagesIn < 1 {
		time.Sleep(time.Millisecond)
	}
	const conns, per = 5, 20
	clients := make([]*rawClient, conns)
	for i := range clients {
		clients[i] = dialRaw(t, srv)
		for j := range per {
			clients[i].frame(ws.OpBinary, true, []byte{byte(i), byte(j)})
		}
	}
	// The loop is not blocked: a ping is answered while the pool is full.
	clients[0].frame(ws.OpPing, true, []byte("alive?"))
	h0, p, err := clients[0].readFrame()
	if err != nil || h0.OpCode != ws.OpPong || string(p) != "alive?" {
		t.Fatalf("no pong while the pool is full: %v %q %v", h0.OpCode, p, err)
	}
	// Saturation is visible in the stats.
	waitFor(t, func() bool { st := srv.Stats(); return st.PoolOverloads > 0 && st.PoolWaiting > 0 })
	close(release)
	for i, c := range clients {
		for j := range per {
			_, msg := c.readMessage()
			if msg[0] != byte(i) || msg[1] != byte(j) {
				t.Fatalf("conn %d: got %v, want [%d %d]", i, msg, i, j)
			}
		}
	}
	if want := int64(conns*per + 1); got.Load() != want {
		t.Fatalf("handler ran %d times, want %d", got.Load(), want)
	}
}

// A panicking handler closes its connection with 1011; the server and the
// worker pool carry on.
func TestHandlerPanic(t *testing.T) {
	h := gateway.HandlerFuncs{Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
		if string(data) == "panic" {
			panic("handler bug")
		}
		c.Send(op, data)
	}}
	srv := startServer(t, gateway.Config{Workers: 1}, h)
	bad := dialRaw(t, srv)
	bad.frame(ws.OpText, true, []byte("panic"))
	bad.expectClose(ws.StatusInternalServerError)
	good := dialRaw(t, srv)
	good.frame(ws.OpText, true, []byte("still here"))
	if _, msg := good.readMessage(); string(msg) != "still here" {
		t.Fatalf("got %q", msg)
	}
	if srv.Stats().HandlerPanics != 1 {
		t.Fatalf("HandlerPanics = %d", srv.Stats().HandlerPanics)
	}
}

// Send and Close work from goroutines other than the handler's: a push.
func TestPushFromOutside(t *testing.T) {
	opened := make(chan *gateway.Conn, 1)
	closed := make(chan error, 1)
	h := gateway.HandlerFuncs{
		Open:  func(c *gateway.Conn) { opened <- c },
		Close: func(c *gateway.Conn, err error) { closed <- err },
	}
	srv := startServer(t, gateway.Config{}, h)
	client, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := <-opened
	if c.RemoteAddr().Addr().String() != "127.0.0.1" || c.ID() == 0 {
		t.Fatalf("conn %d from %v", c.ID(), c.RemoteAddr())
	}
	for i := range 100 {
		if err := c.Send(gateway.OpText, []byte{'a' + byte(i%26)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		_, msg, err := client.ReadMessage()
		if err != nil || msg[0] != 'a'+byte(i%26) {
			t.Fatalf("push %d: %q %v", i, msg, err)
		}
	}
	if err := c.Send(gateway.OpText, []byte("\xff")); err == nil {
		t.Fatal("Send accepted invalid UTF-8 text")
	}
	if err := c.Close(1006, "abnormal"); !errors.Is(err, gateway.ErrBadCloseCode) {
		t.Fatalf("Close(1006): %v, want ErrBadCloseCode", err)
	}
	if err := c.Close(1000, "\xff"); err == nil {
		t.Fatal("Close accepted a reason that is not UTF-8")
	}
	if err := c.Close(4000, "bye from server"); err != nil {
		t.Fatal(err)
	}
	_, _, err = client.ReadMessage()
	if ce, ok := err.(*gorilla.CloseError); !ok || ce.Code != 4000 || ce.Text != "bye from server" {
		t.Fatalf("client saw %v, want close 4000", err)
	}
	// gorilla answers the close; the handler learns the code.
	select {
	case err := <-closed:
		if gateway.CloseCode(err) != 4000 {
			t.Fatalf("OnClose: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called")
	}
	if err := c.Send(gateway.OpText, []byte("late")); !errors.Is(err, gateway.ErrClosed) {
		t.Fatalf("Send after close: %v", err)
	}
}

// OnClose reports the client's close code, and 1006 when the TCP
// connection ends without a close frame.
func TestOnCloseCodes(t *testing.T) {
	closed := make(chan error, 2)
	srv := startServer(t, gateway.Config{}, gateway.HandlerFuncs{
		Close: func(c *gateway.Conn, err error) { closed <- err },
	})
	c := dialRaw(t, srv)
	c.frame(ws.OpClose, true, codec.AppendClose(nil, 3001, "done")[2:])
	c.expectClose(3001)
	if err := <-closed; gateway.CloseCode(err) != 3001 {
		t.Fatalf("OnClose: %v", err)
	}
	c = dialRaw(t, srv)
	c.conn.Close()
	if err := <-closed; gateway.CloseCode(err) != ws.StatusAbnormalClosure {
		t.Fatalf("OnClose after a bare TCP close: %v", err)
	}
}

// Shutdown sends 1001 to every client and returns once they are gone.
func TestShutdown(t *testing.T) {
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", Loops: 2}, gateway.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var clients []*gorilla.Conn
	for range 20 {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for _, c := range clients {
		_, _, err := c.ReadMessage() // gorilla answers the close frame itself
		if !gorilla.IsCloseError(err, gorilla.CloseGoingAway) {
			t.Fatalf("client saw %v, want 1001", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := srv.Stats().ConnsOpen; n != 0 {
		t.Fatalf("%d connections open after Shutdown", n)
	}
	if _, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil); err == nil {
		t.Fatal("dial succeeded after Shutdown")
	}
}
