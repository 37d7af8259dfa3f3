// Package peers holds the servers of the side-by-side comparison: the
// raw-epoll floor (floor/: no framework, one read and one write per
// message), bare gnet (gnet/: gnet v2 with a 101 and an unchecked frame
// echo, nothing kept per connection: the baseline of wsgate's bytes per
// idle connection) and servers on other Go WebSocket libraries (gorilla/websocket,
// lxzan/gws, lesismal/nbio), each in its most ordinary form, and the compare
// command that runs the same loadtest scenarios against them and wsgate. It
// is a module of its own so that wsgate's go.mod never names a peer.
//
// Every server takes --listen ADDR and --path PATH, echoes each message with
// its opcode, answers pings, and serves GET /healthz with 200. With
// --broadcast it sends each message to every connected client instead, the
// sender included, through the library's own fan-out path (see each
// command's doc).
package peers
