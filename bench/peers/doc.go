// Package peers holds echo servers built on other Go WebSocket libraries
// (gorilla/websocket, lxzan/gws, lesismal/nbio), each in its most ordinary
// form, and the compare command that runs the same loadtest scenarios
// against them and wsgate. It is a module of its own so that wsgate's go.mod
// never names a peer.
//
// Every server takes --listen ADDR and --path PATH, echoes each message with
// its opcode, answers pings, and serves GET /healthz with 200.
package peers
