package client

import (
	"errors"
	"strconv"
	"time"
)

// Errors of Dial, Send and Close, and causes given to the callbacks.
var (
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrQueueFull: Send while disconnected found the offline queue at its
	// bound (Options.QueueMessages, Options.QueueBytes).
	ErrQueueFull = errors.New("client: offline queue full")
	// ErrConnLost: on a plain connection, the connection failed while the
	// message was being written; it may or may not have arrived. (With the
	// envelope the message is retained and re-sent if the server did not
	// take it.)
	ErrConnLost = errors.New("client: connection lost while sending")
	// ErrSilence: no frame within the ping interval plus the pong timeout.
	ErrSilence = errors.New("client: connection silent past ping interval + pong timeout")
	// ErrGaveUp: Backoff.MaxAttempts consecutive attempts failed.
	ErrGaveUp = errors.New("client: reconnect attempts exhausted")
	// ErrProtocol: the server broke the resume envelope (docs/resume.md).
	ErrProtocol = errors.New("client: envelope protocol error")
	// ErrBadURL: Dial takes a ws:// or wss:// URL.
	ErrBadURL = errors.New("client: the URL must be ws:// or wss://")
	// ErrBadType: Send takes Text or Binary.
	ErrBadType = errors.New("client: message type must be Text or Binary")
)

// CloseError is a connection's end as the close frame told it (RFC 6455
// §7.1.5); 1006 when there was none.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	s := "client: closed with " + strconv.Itoa(e.Code)
	if e.Reason != "" {
		s += " " + strconv.Quote(e.Reason)
	}
	return s
}

// HandshakeError is an upgrade the server refused with an HTTP status.
type HandshakeError struct {
	Status int
	// RetryAfter is the response's Retry-After, or 0 without one.
	RetryAfter time.Duration
}

func (e *HandshakeError) Error() string {
	return "client: upgrade refused with HTTP " + strconv.Itoa(e.Status)
}

// final reports whether a refusal will not change by retrying: a 4xx
// other than 408 and 429.
func (e *HandshakeError) final() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 429
}

// EndError is what OnClose gets when the client ends by itself (not by
// Close): why, and what it leaves behind.
type EndError struct {
	Err error // the last cause: a *CloseError, a *HandshakeError, ErrGaveUp, ...
	// Unsent is the number of messages still in the offline queue.
	Unsent int
	// UnconfirmedSends is the number of envelope sends the server had not
	// confirmed.
	UnconfirmedSends int
}

func (e *EndError) Error() string {
	return e.Err.Error() + " (" + strconv.Itoa(e.Unsent) + " unsent, " + strconv.Itoa(e.UnconfirmedSends) + " unconfirmed)"
}

func (e *EndError) Unwrap() error { return e.Err }

// protocolError is an ErrProtocol with its detail.
type protocolError string

func (e protocolError) Error() string   { return ErrProtocol.Error() + ": " + string(e) }
func (e protocolError) Is(t error) bool { return t == ErrProtocol }
