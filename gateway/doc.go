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
// A program needs no other package of wsgate: a HandshakeHook refuses an
// upgrade with a *HandshakeError (status, reason, an http.Header of
// response fields), OnClose gets a *CloseError (CloseCode reads its code),
// and the Err values are checked with errors.Is. Stats is every counter,
// the loop's and the gateway's, as /v1/stats and /metrics show them.
//
// Handlers run on the pool, never on an event loop, one event at a time per
// connection and in order: OnOpen, each message, OnClose. Conn.Send and
// Conn.Close are safe from any goroutine.
//
// Config also makes the server a gateway that needs no Go: Backend bridges
// clients to an HTTP service (connect, message and disconnect hooks),
// Admin serves the push and connection API, Prometheus metrics and pprof
// on an address of its own, and the JWT and origin settings check each
// upgrade. Their work runs on bounded pools, never on an event loop.
//
// The package never starts a goroutine per client connection and keeps no
// timer per connection; see package loop for the engine and package codec
// for the protocol.
package gateway
