// Package timerwheel is a hashed timing wheel driven by its caller.
//
// It will hold every deadline a connection has (handshake, ping/pong, idle,
// lifetime, closing handshake) in intrusive nodes embedded in the session,
// advanced by the owning event loop with Advance(now). It must never start a
// goroutine, take a lock on the per-loop path, or allocate per entry.
package timerwheel
