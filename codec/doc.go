// Package codec is the WebSocket protocol over bytes: frame headers, masking,
// UTF-8 validation, close payloads and the HTTP/1.1 upgrade handshake in both
// roles (RFC 6455), and permessage-deflate (RFC 7692): its negotiation, and a
// Deflater and Inflater that hold no state between messages, so that one of
// each serves every connection of an event loop or worker.
//
// Every function takes bytes and caller buffers and returns values or views;
// nothing here performs I/O, starts a goroutine, logs, or knows about gnet,
// the event loop or the gateway. Functions on the per-frame path allocate
// nothing, and that is enforced by tests with testing.AllocsPerRun. Functions
// whose results alias their input end in Unsafe or say how long the view
// stays valid. Inflating never produces more than the caller's limit.
package codec
