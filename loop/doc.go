// Package loop is wsgate's engine: the gnet event handler and the
// per-connection state machine (handshake → open → closing → closed), the
// frame reader, the per-loop command inbox and the ordered dispatch of
// complete messages to a bounded worker pool.
//
// Code in this package runs on two kinds of goroutine, and ownership is
// strict (see OWNERSHIP.md in this directory):
//
//   - an event loop owns the gnet.Conn and every field of a Conn marked
//     "loop-owned"; nothing on a loop ever blocks, sleeps or waits for a
//     worker;
//   - worker goroutines run the Handler's callbacks; they reach a
//     connection only through Conn's exported methods, which hand commands
//     to the owning loop through its inbox. A LoopSafe handler's callbacks
//     run on the loop instead (inline.go): the same methods, the same
//     inbox, no hand-off.
//
// Server's state is split into parts, each declared in the file that owns
// it: lifecycle (server.go), drainState (drain.go), dispatcher
// (dispatch.go), loopRegistry (eventloop.go), timebase (clock.go) and
// endpoint (handshake.go), next to the product's registries (counters,
// topics, users, admission, the memory budget, sessions, cluster hooks),
// each its own type in its own file.
//
// Time comes from one coarse clock, stamped each tick from Config.Clock
// (the system clock unless a test injects internal/clock.Fake), and
// every deadline is a node in the loop's hashed timer wheel. The counters
// are atomics declared once with their Stats field (stats.go).
//
// The package never starts a goroutine per connection, never uses
// net/http on the data path, and never leaves a borrowed gnet buffer view
// alive past the callback that produced it.
package loop
