// Command backend is the smallest backend for wsgate's hooks: it accepts
// every connection and answers each message with its own body, so that
// loadtest's echo scenario runs through the message hook. It measures what
// the hook adds to an echo (docs/benchmarks.md).
//
//	go run ./bench/backend --listen 127.0.0.1:0
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("backend listening on", ln.Addr())
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/message" {
			w.WriteHeader(http.StatusNoContent) // connect and disconnect: accept, noted
			return
		}
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Write(body)
	})))
}
