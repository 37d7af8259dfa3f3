// Command nbio is an echo server on lesismal/nbio v1.6.12: nbhttp's epoll
// engine with its websocket upgrader, default options except a keepalive
// long enough that held idle connections are not dropped during a run.
//
// With --broadcast it sends every data message to every connected client,
// the sender included, with WriteMessage on each (nbio has no prepared
// message: each write encodes the frame; writes do not block, nbio queues
// what the socket refuses).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	path := flag.String("path", "/ws", "WebSocket path")
	broadcast := flag.Bool("broadcast", false, "send every message to every client, the sender included")
	flag.Parse()
	up := websocket.NewUpgrader()
	up.KeepaliveTime = time.Hour
	if *broadcast {
		var mu sync.RWMutex
		conns := map[*websocket.Conn]struct{}{}
		up.OnOpen(func(c *websocket.Conn) {
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
		})
		up.OnClose(func(c *websocket.Conn, _ error) {
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
		up.OnMessage(func(_ *websocket.Conn, mt websocket.MessageType, data []byte) {
			mu.RLock()
			for c := range conns {
				_ = c.WriteMessage(mt, data)
			}
			mu.RUnlock()
		})
	} else {
		up.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
			_ = c.WriteMessage(mt, data)
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc(*path, func(w http.ResponseWriter, r *http.Request) {
		_, _ = up.Upgrade(w, r, nil)
	})
	e := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{*listen},
		Handler: mux,
		NPoller: runtime.GOMAXPROCS(0),
	})
	if err := e.Start(); err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	e.Stop()
}
