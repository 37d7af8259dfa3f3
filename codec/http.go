package codec

import (
	"errors"
	"slices"
	"strconv"
)

// HandshakeError is a refused HTTP request: the status to answer and a short
// reason, which AppendHandshakeError sends as the response body. The errors
// the handshake path returns are preallocated *HandshakeError values, so
// refusing a request allocates nothing.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	return "codec: " + e.Reason + " (HTTP " + strconv.Itoa(e.Status) + ")"
}

// Handshake rejections (RFC 6455 §4.2.1, RFC 9112 §3). Parse returns the
// syntax errors; CheckUpgrade returns the WebSocket ones; the last four are
// for the caller's own decisions (routing, authentication, load shedding).
var (
	ErrHandshakeMalformed      = &HandshakeError{400, "malformed HTTP request"}
	ErrHandshakeBadHTTPVersion = &HandshakeError{400, "HTTP/1.1 or later required"}
	ErrHandshakeMissingHost    = &HandshakeError{400, "missing Host header"}
	ErrHandshakeBadMethod      = &HandshakeError{405, "method not allowed, use GET"}
	ErrHandshakeBadUpgrade     = &HandshakeError{426, "missing or bad Upgrade header, want websocket"}
	ErrHandshakeBadConnection  = &HandshakeError{400, "missing or bad Connection header, want Upgrade"}
	ErrHandshakeBadVersion     = &HandshakeError{426, "unsupported Sec-WebSocket-Version, want 13"}
	ErrHandshakeBadKey         = &HandshakeError{400, "missing or bad Sec-WebSocket-Key"}
	ErrHeaderTooLarge          = &HandshakeError{431, "request header too large"}
	ErrHandshakeNotFound       = &HandshakeError{404, "not found"}
	ErrHandshakeForbidden      = &HandshakeError{403, "forbidden"}
	ErrHandshakeUnauthorized   = &HandshakeError{401, "unauthorized"}
	ErrHandshakeUnavailable    = &HandshakeError{503, "service unavailable"}
)

// DefaultMaxHeaderBytes is the request header cap used when Parse is given 0.
const DefaultMaxHeaderBytes = 8 << 10

// HandshakeStatus returns the HTTP status carried by err, or 400 if err
// carries none.
func HandshakeStatus(err error) int {
	if he, ok := errors.AsType[*HandshakeError](err); ok {
		return he.Status
	}
	return 400
}

// StatusText returns the reason phrase for the statuses this gateway answers
// with, or "" for others. It is a small table so that codec does not import
// net/http.
func StatusText(code int) string {
	switch code {
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return ""
}

// appendStatusLine appends "HTTP/1.1 <code> <reason>\r\n". An unknown code
// gets an empty reason phrase, which RFC 9112 §4 allows.
func appendStatusLine(dst []byte, code int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(code)...)
	return append(dst, "\r\n"...)
}

// AppendHTTPResponse appends a complete HTTP/1.1 response to dst: the status
// line, Content-Type (omitted if contentType is empty), Content-Length,
// "Connection: close" if closeConn, the raw header lines in extra (each
// "Name: value\r\n", may be nil), the blank line and body.
func AppendHTTPResponse(dst []byte, status int, contentType string, extra []byte, body []byte, closeConn bool) []byte {
	dst = appendStatusLine(dst, status)
	if contentType != "" {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, contentType...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n"...)
	if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, extra...)
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// AppendHandshakeError appends the response refusing a request with err: the
// status of err (HandshakeStatus), a text/plain body holding its reason and a
// newline, and "Connection: close", since the request may have a body or a
// WebSocket stream behind it that nobody will read. The raw header lines in
// extra (e.g. "Retry-After: 5\r\n") go after the codec's own.
//
// A 405 carries "Allow: GET" (RFC 9110 §15.5.6). A 426 carries
// "Upgrade: websocket" (RFC 9110 §15.5.22) and "Sec-WebSocket-Version: 13"
// (RFC 6455 §4.2.2), and lists "Upgrade" in Connection as a sender of Upgrade
// must (RFC 9110 §7.8).
func AppendHandshakeError(dst []byte, err error, extra []byte) []byte {
	status := 400
	reason := StatusText(400)
	if he, ok := errors.AsType[*HandshakeError](err); ok {
		status, reason = he.Status, he.Reason
	}
	dst = appendStatusLine(dst, status)
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	switch status {
	case 405:
		dst = append(dst, "\r\nConnection: close\r\nAllow: GET\r\n"...)
	case 426:
		dst = append(dst, "\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"...)
	default:
		dst = append(dst, "\r\nConnection: close\r\n"...)
	}
	dst = append(dst, extra...)
	dst = append(dst, "\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// AppendField appends the header field "name: value\r\n" (RFC 9110 §5),
// for the extra lines of AppendHTTPResponse and AppendHandshakeError. A
// CR, LF or other control character in value becomes a space, as
// net/http's Header.Write does, so that no value can end the header block;
// a name that is not a token (RFC 9110 §5.6.2) is dropped with its value.
func AppendField(dst []byte, name, value string) []byte {
	if name == "" {
		return dst
	}
	for i := 0; i < len(name); i++ {
		if !isTchar(name[i]) {
			return dst
		}
	}
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, "\r\n"...)
}

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// AppendFields appends the fields of h (an http.Header, or any map of
// names to values) with AppendField, names in sorted order so that the
// answer does not depend on map order. Fields AppendField refuses are
// left out.
func AppendFields(dst []byte, h map[string][]string) []byte {
	if len(h) == 0 {
		return dst
	}
	var buf [8]string
	names := buf[:0]
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range h[name] {
			dst = AppendField(dst, name, v)
		}
	}
	return dst
}
