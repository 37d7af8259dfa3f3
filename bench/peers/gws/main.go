// Command gws is an echo server on lxzan/gws v1.9.1: the Upgrader under
// net/http, one ReadLoop goroutine per connection, default options.
//
// With --broadcast it sends every data message to every connected client,
// the sender included, through one gws.Broadcaster per message (the frame
// is encoded once and queued on each client's write queue), as gws's
// documentation advises for fan-out.
package main

import (
	"flag"
	"log"
	"net/http"
	"sync"

	"github.com/lxzan/gws"
)

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

// fanout is the broadcast handler: it keeps the set of open connections.
type fanout struct {
	gws.BuiltinEventHandler
	mu    sync.RWMutex
	conns map[*gws.Conn]struct{}
}

func (f *fanout) OnOpen(c *gws.Conn) {
	f.mu.Lock()
	f.conns[c] = struct{}{}
	f.mu.Unlock()
}

func (f *fanout) OnClose(c *gws.Conn, _ error) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (*fanout) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (f *fanout) OnMessage(_ *gws.Conn, m *gws.Message) {
	// The Broadcaster keeps payload until its last write has run: copy it
	// out of the message, which goes back to gws's pool on Close.
	b := gws.NewBroadcaster(m.Opcode, append([]byte(nil), m.Bytes()...))
	m.Close()
	f.mu.RLock()
	for c := range f.conns {
		_ = b.Broadcast(c)
	}
	f.mu.RUnlock()
	_ = b.Close()
}

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	path := flag.String("path", "/ws", "WebSocket path")
	broadcast := flag.Bool("broadcast", false, "send every message to every client, the sender included")
	compression := flag.Bool("compression", false, "permessage-deflate without context takeover either way (gws's defaults otherwise: BestSpeed, 512-byte threshold)")
	flag.Parse()
	var handler gws.Event = echo{}
	if *broadcast {
		handler = &fanout{conns: map[*gws.Conn]struct{}{}}
	}
	var opt *gws.ServerOption
	if *compression {
		opt = &gws.ServerOption{PermessageDeflate: gws.PermessageDeflate{Enabled: true}}
	}
	up := gws.NewUpgrader(handler, opt)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc(*path, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	})
	log.Fatal(http.ListenAndServe(*listen, mux))
}
