package gateway

import (
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/loop"
)

// The error types a program using gateway sees, so that it needs no other
// package of wsgate: check them with errors.Is and errors.As.
type (
	// HandshakeError refuses an upgrade with an HTTP status, a plain-text
	// reason and response header fields: return it from
	// HandshakeHook.OnHandshake or pass it to PendingUpgrade.Reject.
	//
	//	return &gateway.HandshakeError{Status: 503, Reason: "busy",
	//		Header: http.Header{"Retry-After": {"5"}}}
	HandshakeError = loop.HandshakeError
	// CloseError is how a connection ended, as Handler.OnClose gets it:
	// the close code (RFC 6455 §7.4) and reason the peer sent or the
	// gateway chose. CloseCode reads the code from any error.
	CloseError = codec.CloseError
)

// Refusals for a HandshakeHook that needs no header of its own.
var (
	ErrForbidden    = &HandshakeError{Status: 403, Reason: "forbidden"}
	ErrUnauthorized = &HandshakeError{Status: 401, Reason: "unauthorized"}
)

// CloseCode returns the close code err carries (a *CloseError anywhere in
// its chain), or 0 if it carries none: OnClose's error for a connection
// that ended without a close frame gives 1006 (StatusAbnormalClosure).
func CloseCode(err error) StatusCode { return codec.CloseCode(err) }
