// Package gateway is wsgate's public API: a WebSocket server on gnet event
// loops that hands complete messages to a bounded worker pool.
//
// A program builds a Config (its zero value works), a Handler, and runs a
// Server:
//
//	srv, err := gateway.NewServer(gateway.Config{Addr: ":8080"}, gateway.Echo{})
//	if err != nil { ... }
//	go srv.ListenAndServe()
//	...
//	srv.Shutdown(ctx)
//
// Handlers run on the pool, never on an event loop, one event at a time per
// connection and in order: OnOpen, each message, OnClose. Conn.Send and
// Conn.Close are safe from any goroutine.
//
// The package never starts a goroutine per connection and keeps no timer
// per connection; see package loop for the engine and package codec for
// the protocol.
package gateway
