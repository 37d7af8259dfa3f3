// Command gws is an echo server on lxzan/gws v1.9.1: the Upgrader under
// net/http, one ReadLoop goroutine per connection, default options.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/lxzan/gws"
)

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	path := flag.String("path", "/ws", "WebSocket path")
	flag.Parse()
	up := gws.NewUpgrader(echo{}, nil)
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
