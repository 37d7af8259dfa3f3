package gateway

import (
	"net/http"

	"github.com/wsgate/wsgate/codec"
)

// Response headers travel as http.Header up to the moment they are
// written: appendHeader turns them into header lines, once for a prebuilt
// answer, on the refusal path for one made at run time.

// Headers of the gateway's own refusals (RFC 9110 §10.2.3, RFC 6750 §3).
var (
	retryAfter1 = http.Header{"Retry-After": {"1"}}
	retryAfter5 = http.Header{"Retry-After": {"5"}}
	authMissing = http.Header{"WWW-Authenticate": {"Bearer"}}
	authInvalid = http.Header{"WWW-Authenticate": {`Bearer error="invalid_token"`}}
)

// appendHeader appends h's fields to dst as header lines
// (codec.AppendFields).
func appendHeader(dst []byte, h http.Header) []byte { return codec.AppendFields(dst, h) }
