// Package bench holds the side-by-side comparison of wsgate with peer
// WebSocket servers (gorilla/websocket, lxzan/gws, lesismal/nbio).
//
// Micro benchmarks live next to the packages they measure; this directory
// holds the peers' echo servers, in a Go module of their own so that the main
// go.mod stays free of them, and the scripts that run the same loadtest
// scenarios against each server in one run.
package bench
