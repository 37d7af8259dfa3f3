// Package bench holds the side-by-side comparison of wsgate with a raw-epoll
// floor server and peer WebSocket servers (gorilla/websocket, lxzan/gws,
// lesismal/nbio), and the scripts for runs past one process.
//
// Micro benchmarks live next to the packages they measure; this directory
// holds the floor and the peers' servers, in a Go module of their own so
// that the main go.mod stays free of them (bench/peers), the scripts that
// run the same loadtest scenarios against each server in one run
// (run.sh, and syscalls.sh for system calls per message), and the many-process
// runs (connect-scale.sh, million.sh, close-memory.sh).
// Nothing here may listen beyond loopback or run unbounded: every script
// caps its counts and its time.
package bench
