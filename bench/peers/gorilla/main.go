// Command gorilla is an echo server on gorilla/websocket v1.5.3: one
// goroutine per connection, ReadMessage and WriteMessage, default buffers.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	path := flag.String("path", "/ws", "WebSocket path")
	flag.Parse()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc(*path, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, msg); err != nil {
				return
			}
		}
	})
	log.Fatal(http.ListenAndServe(*listen, mux))
}
