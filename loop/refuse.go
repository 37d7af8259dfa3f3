package loop

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/wsgate/wsgate/codec"
)

// HandshakeError refuses an upgrade: a HandshakeHook returns it, or
// PendingUpgrade.Reject takes it. Status is the HTTP status to answer
// (400 to 599; 403 otherwise), Reason the plain-text body, and Header the
// response's extra fields, such as Retry-After (RFC 9110 §10.2.3) or
// WWW-Authenticate (RFC 6750 §3). A field whose name is not a token is
// left out, and control characters in a value become spaces
// (codec.AppendField), so no Header can end the response early. Any other
// error a hook returns is answered 403.
type HandshakeError struct {
	Status int
	Reason string
	Header http.Header
}

func (e *HandshakeError) Error() string {
	return "wsgate: upgrade refused with " + strconv.Itoa(e.Status) + ": " + e.Reason
}

// refusal turns a hook's error into the extra header lines and the
// status and reason to answer. The codec's own errors (and the internal ones
// made of them) pass as they are.
func refusal(err error) ([]byte, error) {
	if he, ok := errors.AsType[*HandshakeError](err); ok {
		status := he.Status
		if status < 400 || status > 599 {
			status = 403
		}
		return codec.AppendFields(nil, he.Header), &codec.HandshakeError{Status: status, Reason: he.Reason}
	}
	if _, ok := errors.AsType[*codec.HandshakeError](err); ok {
		return nil, err
	}
	return nil, codec.ErrHandshakeForbidden
}
