package cluster

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/natstest"
)

// stallProxy forwards TCP between NATS clients and a server; while
// stalled it holds what the server sends (PONGs included), as a server
// too busy to answer would, with TCP still up.
type stallProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	release chan struct{} // non-nil while stalled
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: strings.TrimPrefix(target, "nats://")}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.unstall()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
		go func() { defer p.wg.Done(); p.copyBack(c, s); c.Close() }()
	}
}

// copyBack copies the server's bytes to the client, waiting out a stall
// before each write.
func (p *stallProxy) copyBack(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			rel := p.release
			p.mu.Unlock()
			if rel != nil {
				<-rel
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	if p.release == nil {
		p.release = make(chan struct{})
	}
	p.mu.Unlock()
}

func (p *stallProxy) unstall() {
	p.mu.Lock()
	if p.release != nil {
		close(p.release)
		p.release = nil
	}
	p.mu.Unlock()
}

func startPingNode(t *testing.T, url, id string, every time.Duration, maxOut int) *Node {
	t.Helper()
	n, err := Start(Config{URLs: []string{url}, Name: "test", NodeID: id, Local: newFakeLocal(),
		Heartbeat: time.Hour, ReconnectWait: 50 * time.Millisecond, PingInterval: every, MaxPingsOut: maxOut})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	waitFor(t, id+" connected", n.Connected)
	return n
}

// TestBusyServerIsNotStale: a NATS server whose answers stall for 600 ms
// (TCP up, PONGs late), as a starved nats-server reading a million
// subscriptions did for 20-60 s. A node whose PINGs allow 3 s stays
// connected; one that allows 200 ms, as a tight setting would, drops
// the connection and reconnects, and would send all its subscriptions
// again. At the end both answer requests through the server.
func TestBusyServerIsNotStale(t *testing.T) {
	srv := natstest.Start(t)
	p := startStallProxy(t, srv.URL())
	patient := startPingNode(t, p.URL(), "patient", 100*time.Millisecond, 30)
	tight := startPingNode(t, p.URL(), "tight", 100*time.Millisecond, 1)
	p.stall()
	waitFor(t, "the tight node's disconnect", func() bool { return tight.ctr.disconnects.Load() > 0 })
	time.Sleep(600 * time.Millisecond)
	p.unstall()
	waitFor(t, "the tight node's reconnect", func() bool { return tight.ctr.reconnects.Load() > 0 && tight.Connected() })
	if d := patient.ctr.disconnects.Load(); d != 0 || !patient.Connected() {
		t.Fatalf("the patient node disconnected %d times during a 600 ms stall (connected %v)", d, patient.Connected())
	}
	if err := patient.nc.Flush(); err != nil {
		t.Fatalf("patient node after the stall: %v", err)
	}
}
