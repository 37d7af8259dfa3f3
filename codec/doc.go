// Package codec is the WebSocket protocol over bytes: frame headers, masking,
// UTF-8 validation, close payloads and the HTTP/1.1 upgrade handshake in both
// roles (RFC 6455).
//
// Every function takes bytes and caller buffers and returns values or views;
// nothing here performs I/O, starts a goroutine, logs, or knows about gnet,
// the event loop or the gateway. Functions on the per-frame path allocate
// nothing, and that is enforced by tests with testing.AllocsPerRun. Functions
// whose results alias their input end in Unsafe or say how long the view
// stays valid.
package codec
