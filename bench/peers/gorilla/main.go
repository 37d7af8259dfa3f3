// Command gorilla is an echo server on gorilla/websocket v1.5.3: one
// goroutine per connection, ReadMessage and WriteMessage, default buffers.
//
// With --broadcast it sends every data message to every connected client,
// the sender included, as one PreparedMessage (encoded once) written by the
// sender's goroutine to each client in turn under that client's write lock:
// the cheapest fan-out gorilla offers without a goroutine per write.
package main

import (
	"flag"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// hub is the set of connected clients in broadcast mode.
type hub struct {
	mu      sync.RWMutex
	clients map[*client]struct{}
}

type client struct {
	mu sync.Mutex // one writer at a time (gorilla allows no more)
	c  *websocket.Conn
}

// writeWait bounds one delivery, so a client that stopped reading cannot
// stall the sender's goroutine for ever.
const writeWait = 10 * time.Second

func (h *hub) publish(op int, data []byte) {
	pm, err := websocket.NewPreparedMessage(op, data)
	if err != nil {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for cl := range h.clients {
		cl.mu.Lock()
		_ = cl.c.SetWriteDeadline(time.Now().Add(writeWait))
		_ = cl.c.WritePreparedMessage(pm)
		cl.mu.Unlock()
	}
}

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	path := flag.String("path", "/ws", "WebSocket path")
	broadcast := flag.Bool("broadcast", false, "send every message to every client, the sender included")
	flag.Parse()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := &hub{clients: map[*client]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc(*path, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if *broadcast {
			cl := &client{c: c}
			// The default ping handler answers with WriteControl, which
			// gorilla allows beside another writer.
			h.mu.Lock()
			h.clients[cl] = struct{}{}
			h.mu.Unlock()
			defer func() {
				h.mu.Lock()
				delete(h.clients, cl)
				h.mu.Unlock()
			}()
		}
		for {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if *broadcast {
				h.publish(op, msg)
				continue
			}
			if err := c.WriteMessage(op, msg); err != nil {
				return
			}
		}
	})
	log.Fatal(http.ListenAndServe(*listen, mux))
}
