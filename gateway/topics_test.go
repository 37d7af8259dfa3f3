package gateway_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// subscribeAll subscribes every new connection to topic.
func subscribeAll(topic string, opened *atomic.Int64) gateway.Handler {
	return gateway.HandlerFuncs{Open: func(c *gateway.Conn) {
		if err := c.Subscribe(topic); err != nil {
			panic(err)
		}
		opened.Add(1)
	}}
}

// dialMany opens n upgraded raw connections, several at a time.
func dialMany(t *testing.T, srv *gateway.Server, n int) []*rawClient {
	t.Helper()
	clients := make([]*rawClient, n)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				clients[i] = dialRaw(t, srv)
			}
		}()
	}
	wg.Wait()
	return clients
}

// Publish to 5,000 subscribers over 4 loops: each receives each message
// exactly once, in publish order per publisher.
func TestPublishToSubscribers(t *testing.T) {
	const subs, publishers, perPublisher = 5000, 2, 20
	var opened atomic.Int64
	srv := startServer(t, gateway.Config{Loops: 4, PingInterval: -1}, subscribeAll("news", &opened))
	clients := dialMany(t, srv, subs)
	waitFor(t, func() bool { return opened.Load() == subs })

	const msgLen = 5                   // publisher id, then a big-endian sequence number
	const frameLen = 2 + msgLen        // unmasked server frame with a 7-bit length
	total := publishers * perPublisher // messages each subscriber must get
	errs := make(chan error, subs)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, total*frameLen)
			c.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
			if _, err := io.ReadFull(c.r, buf); err != nil {
				errs <- fmt.Errorf("subscriber %d: %v", i, err)
				return
			}
			var next [publishers]uint32
			for f := buf; len(f) > 0; f = f[frameLen:] {
				if f[0] != 0x82 || f[1] != msgLen {
					errs <- fmt.Errorf("subscriber %d: frame header % x", i, f[:2])
					return
				}
				p, seq := f[2], binary.BigEndian.Uint32(f[3:7])
				if seq != next[p] {
					errs <- fmt.Errorf("subscriber %d: publisher %d message %d, want %d", i, p, seq, next[p])
					return
				}
				next[p]++
			}
		}()
	}
	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for seq := range perPublisher {
				var msg [msgLen]byte
				msg[0] = byte(p)
				binary.BigEndian.PutUint32(msg[1:], uint32(seq))
				n, err := srv.Publish("news", gateway.OpBinary, msg[:])
				if err != nil || n != subs {
					t.Errorf("Publish: %d subscribers, %v", n, err)
					return
				}
			}
		}()
	}
	pubs.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The loops count a delivery just after the write the client read.
	want := int64(subs * total)
	waitFor(t, func() bool { return srv.Stats().Deliveries == want })
	if st := srv.Stats(); st.DeliveriesDropped != 0 {
		t.Fatalf("dropped %d deliveries", st.DeliveriesDropped)
	}
}

// Publishing allocates O(1) per publish, not O(subscribers): the frame is
// encoded once and shared by the loops.
func TestPublishAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	allocs := map[int]float64{}
	for _, n := range []int{10, 500} {
		var opened atomic.Int64
		srv := startServer(t, gateway.Config{Loops: 2, PingInterval: -1}, subscribeAll("t", &opened))
		clients := dialMany(t, srv, n)
		waitFor(t, func() bool { return opened.Load() == int64(n) })
		var received atomic.Int64
		for _, c := range clients {
			c.conn.SetReadDeadline(time.Time{})
			go func() {
				buf := make([]byte, 4096)
				for {
					k, err := c.r.Read(buf)
					if err != nil {
						return
					}
					received.Add(int64(k))
				}
			}()
		}
		msg := make([]byte, 100)
		frameLen := int64(2 + len(msg))
		var want int64
		publish := func() {
			srv.Publish("t", gateway.OpBinary, msg)
			want += int64(n) * frameLen
			for received.Load() < want {
				runtime.Gosched()
			}
		}
		for range 20 {
			publish()
		}
		allocs[n] = testing.AllocsPerRun(30, publish)
	}
	t.Logf("allocations per publish: %v", allocs)
	if allocs[500] > 2 || allocs[500] > allocs[10]+1 {
		t.Fatalf("allocations per publish grow with subscribers: %v", allocs)
	}
}

// Unsubscribe and close remove subscriptions; Broadcast reaches everyone.
func TestSubscribeUnsubscribeBroadcast(t *testing.T) {
	conns := make(chan *gateway.Conn, 3)
	srv := startServer(t, gateway.Config{PingInterval: -1}, gateway.HandlerFuncs{
		Open: func(c *gateway.Conn) { c.Subscribe("a"); c.Subscribe("a"); c.Subscribe("b"); conns <- c },
	})
	var clients [3]*gorilla.Conn
	var server [3]*gateway.Conn
	for i := range clients {
		c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
		server[i] = <-conns
	}
	waitFor(t, func() bool { return srv.Subscribers("a") == 3 && srv.Subscribers("b") == 3 })
	if n, _ := srv.Publish("a", gateway.OpText, []byte("to a")); n != 3 {
		t.Fatalf("Publish reached %d, want 3 (a duplicate Subscribe counts once)", n)
	}
	for _, c := range clients {
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "to a" {
			t.Fatalf("%q %v", msg, err)
		}
	}
	server[0].Unsubscribe("a")
	clients[1].Close() // its subscriptions go with it
	waitFor(t, func() bool { return srv.Subscribers("a") == 1 && srv.Subscribers("b") == 2 })
	n, err := srv.Publish("a", gateway.OpText, []byte("a again"))
	if err != nil || n != 1 {
		t.Fatalf("after unsubscribe and close: %d subscribers of a, %v", n, err)
	}
	if _, msg, _ := clients[2].ReadMessage(); string(msg) != "a again" {
		t.Fatalf("got %q", msg)
	}
	if n, _ := srv.Broadcast(gateway.OpText, []byte("everyone")); n != 2 {
		t.Fatalf("Broadcast reached %d, want 2", n)
	}
	for _, c := range []*gorilla.Conn{clients[0], clients[2]} {
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "everyone" {
			t.Fatalf("first message after unsubscribe: %q %v", msg, err)
		}
	}
	if err := server[0].Subscribe(""); !errors.Is(err, gateway.ErrBadTopic) {
		t.Fatalf("Subscribe(\"\"): %v", err)
	}
	if _, err := srv.Publish("a", gateway.OpText, []byte{0xff}); err == nil {
		t.Fatal("Publish accepted invalid UTF-8 text")
	}
	_ = ws.OpText
}
