package codec

import (
	"encoding/base64"

	"github.com/gobwas/httphead"
)

// maxListLines is how many Sec-WebSocket-Protocol or -Extensions lines a
// Request remembers; Protocols and Extensions rescan the header block for a
// request that sends more.
const maxListLines = 4

// Request is an HTTP/1.1 request parsed incrementally from bytes: the
// server's side of the opening handshake (RFC 6455 §4.2.1). It keeps offsets
// into the caller's buffer, not copies, so it stays small and survives the
// caller moving its bytes between reads.
//
// The zero value is ready to use; Reset prepares it for another request.
type Request struct {
	head // parse state (head.go)
	err  *HandshakeError

	// Request line.
	method, uri  span
	query        int32 // offset of '?' in the URI, 0 if none
	major, minor uint8

	// Headers the handshake needs; the first occurrence unless noted.
	host, origin, key, version span
	hosts, keys, versions      uint8 // occurrences, saturating
	upgradeWS, connUpgrade     bool  // any Upgrade/Connection line had the token
	hasBody                    bool  // Content-Length other than 0, or Transfer-Encoding
	nprotos, nexts             uint8 // lines seen, saturating
	protos, exts               [maxListLines]span
}

// Reset clears r for a new request and drops its reference to the last
// buffer.
func (r *Request) Reset() { *r = Request{} }

// Parse continues parsing the request. buf holds every byte received so far
// for this request; each call passes the same prefix, possibly longer and
// possibly moved to another array. Parse resumes after the last complete
// line, so a request arriving one byte at a time is parsed in linear total
// time.
//
// It returns n == 0 and a nil error when more bytes are needed, and n > 0
// once the header block is complete: n counts the bytes through the empty
// line that ends it, and the bytes after n belong to the WebSocket stream.
// Once complete, Parse returns the same n for the same buf.
//
// maxBytes caps the header block (0 means DefaultMaxHeaderBytes): as soon as
// buf holds more than maxBytes bytes without the block ending, Parse returns
// ErrHeaderTooLarge. Syntax errors return ErrHandshakeMalformed or
// ErrHandshakeBadHTTPVersion. Parse checks syntax only, so plain requests
// such as health checks parse too; CheckUpgrade applies the WebSocket rules.
// After an error r is spent until Reset.
func (r *Request) Parse(buf []byte, maxBytes int) (n int, err error) {
	if r.err != nil {
		return 0, r.err
	}
	if n, done := r.resume(buf); done {
		if n == 0 {
			return 0, ErrHandshakeMalformed
		}
		return n, nil
	}
	// parse returns *HandshakeError; only a non-nil one becomes an error,
	// so that success returns a nil interface rather than a typed nil.
	n, herr := r.parse(buf, clampMax(maxBytes))
	if herr != nil {
		r.err = herr
		return 0, herr
	}
	return n, nil
}

func (r *Request) parse(buf []byte, limit int) (int, *HandshakeError) {
	for {
		line, s := r.next(buf, limit, true)
		switch s {
		case stepStart:
			if !r.parseRequestLine(buf, line) {
				return 0, ErrHandshakeMalformed
			}
			if r.major < 1 || r.major == 1 && r.minor < 1 {
				return 0, ErrHandshakeBadHTTPVersion
			}
		case stepHeader:
			if !r.parseHeader(buf, line) {
				return 0, ErrHandshakeMalformed
			}
		case stepTooLarge:
			return 0, ErrHeaderTooLarge
		case stepMalformed:
			return 0, ErrHandshakeMalformed
		default: // stepMore, stepDone
			return int(r.n), nil
		}
	}
}

// parseRequestLine parses "method SP request-target SP HTTP-version" (RFC
// 9112 §3) with httphead and checks what httphead leaves unchecked: the
// version's exact form and control characters in the target.
func (r *Request) parseRequestLine(buf, line []byte) bool {
	rl, ok := httphead.ParseRequestLine(line)
	if !ok {
		return false
	}
	proto := line[len(rl.Method)+1+len(rl.URI)+1:]
	if r.major, r.minor, ok = parseHTTPVersion(proto); !ok {
		return false
	}
	r.query = 0
	for i, c := range rl.URI {
		if c <= ' ' || c == 0x7f {
			return false
		}
		if c == '?' && r.query == 0 {
			r.query = int32(cap(buf) - cap(rl.URI) + i)
		}
	}
	r.method = spanOf(buf, rl.Method)
	r.uri = spanOf(buf, rl.URI)
	return true
}

// parseHeader validates one header line and records the headers the
// handshake needs.
func (r *Request) parseHeader(buf, line []byte) bool {
	name, value, ok := parseHeaderLine(line)
	if !ok {
		return false
	}
	switch len(name) {
	case 4:
		if asciiEqualFold(name, "Host") {
			// RFC 9112 §3.2: a request with more than one Host line or an
			// invalid Host value gets a 400.
			if r.hosts > 0 || !validHost(value) {
				return false
			}
			r.hosts = 1
			r.host = spanOf(buf, value)
		}
	case 6:
		if asciiEqualFold(name, "Origin") && !r.origin.isSet() {
			r.origin = spanOf(buf, value)
		}
	case 7:
		if asciiEqualFold(name, "Upgrade") && hasToken(value, "websocket") {
			r.upgradeWS = true
		}
	case 10:
		if asciiEqualFold(name, "Connection") && hasToken(value, "Upgrade") {
			r.connUpgrade = true
		}
	case 14:
		if asciiEqualFold(name, "Content-Length") && string(trimOWS(value)) != "0" {
			r.hasBody = true
		}
	case 17:
		if asciiEqualFold(name, "Transfer-Encoding") {
			r.hasBody = true
		}
		if asciiEqualFold(name, "Sec-WebSocket-Key") {
			r.keys = min(r.keys+1, 2)
			if r.keys == 1 {
				r.key = spanOf(buf, value)
			}
		}
	case 21:
		if asciiEqualFold(name, "Sec-WebSocket-Version") {
			r.versions = min(r.versions+1, 2)
			if r.versions == 1 {
				r.version = spanOf(buf, value)
			}
		}
	case 22:
		if asciiEqualFold(name, "Sec-WebSocket-Protocol") {
			r.nprotos = addSpan(&r.protos, r.nprotos, spanOf(buf, value))
		}
	case 24:
		if asciiEqualFold(name, "Sec-WebSocket-Extensions") {
			r.nexts = addSpan(&r.exts, r.nexts, spanOf(buf, value))
		}
	}
	return true
}

// addSpan records s as the n-th line of a list header and returns the new
// count, which goes one past the array when lines overflow it.
func addSpan(a *[maxListLines]span, n uint8, s span) uint8 {
	if n < maxListLines {
		a[n] = s
	}
	return min(n+1, maxListLines+1)
}

// validHost reports whether v has the characters of uri-host [":" port]
// (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name or an IP literal. It is a
// character check, not a full grammar.
func validHost(v []byte) bool {
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			switch c {
			case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '%', ':', '[', ']':
			default:
				return false
			}
		}
	}
	return true
}

// CheckUpgrade validates the parsed request as a WebSocket opening handshake
// (RFC 6455 §4.2.1) and returns the first rule it breaks, in this order:
// method GET (ErrHandshakeBadMethod, 405), a non-empty Host
// (ErrHandshakeMissingHost, 400), Upgrade listing "websocket"
// (ErrHandshakeBadUpgrade, 426), Connection listing "Upgrade"
// (ErrHandshakeBadConnection, 400), a single Sec-WebSocket-Version of 13
// (ErrHandshakeBadVersion, 426, §4.4), and a single Sec-WebSocket-Key that is
// the base64 of 16 bytes (ErrHandshakeBadKey, 400, §11.3.1). Tokens compare
// case-insensitively and may sit in comma-separated lists. A request that
// Parse has not completed is ErrHandshakeMalformed.
func (r *Request) CheckUpgrade() error {
	switch {
	case r.n == 0:
		return ErrHandshakeMalformed
	case string(r.Method()) != "GET":
		return ErrHandshakeBadMethod
	case !r.host.isSet():
		return ErrHandshakeMissingHost
	case !r.upgradeWS:
		return ErrHandshakeBadUpgrade
	case !r.connUpgrade:
		return ErrHandshakeBadConnection
	case r.versions != 1 || string(r.version.bytes(r.buf)) != "13":
		return ErrHandshakeBadVersion
	case r.keys != 1 || !validKey(r.key.bytes(r.buf)):
		return ErrHandshakeBadKey
	case r.hasBody:
		// Bytes after the header block are the WebSocket stream; a body
		// there would be read as frames (RFC 6455 §4.1: the request is a
		// GET without one).
		return ErrHandshakeMalformed
	}
	return nil
}

// validKey reports whether key is the base64 of exactly 16 bytes.
func validKey(key []byte) bool {
	if len(key) != 24 || key[22] != '=' || key[23] != '=' {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], key)
	return err == nil && n == 16
}

// The views below are valid after Parse has returned n > 0. They alias the
// buf given to the last Parse call and stay valid while that buffer's bytes
// are unchanged; copy what must outlive it.

// Method returns the request method.
func (r *Request) Method() []byte { return r.method.bytes(r.buf) }

// URI returns the request-target as sent.
func (r *Request) URI() []byte { return r.uri.bytes(r.buf) }

// Path returns the request-target before any '?'.
func (r *Request) Path() []byte {
	if r.query == 0 {
		return r.URI()
	}
	return r.buf[r.uri.off:r.query:r.query]
}

// Query returns the request-target after the first '?', without it, or nil
// if there is no '?'.
func (r *Request) Query() []byte {
	if r.query == 0 {
		return nil
	}
	return r.buf[r.query+1 : r.uri.end : r.uri.end]
}

// Host returns the Host header, or nil if absent or empty.
func (r *Request) Host() []byte { return r.host.bytes(r.buf) }

// Origin returns the first Origin header, or nil if absent or empty.
func (r *Request) Origin() []byte { return r.origin.bytes(r.buf) }

// Key returns the first Sec-WebSocket-Key header, or nil if absent or empty.
func (r *Request) Key() []byte { return r.key.bytes(r.buf) }

// IsUpgrade reports whether an Upgrade header lists "websocket": whether the
// client asks for a WebSocket at all, for routing before CheckUpgrade.
func (r *Request) IsUpgrade() bool { return r.n > 0 && r.upgradeWS }

// Protocols appends each subprotocol the client offers, from every
// Sec-WebSocket-Protocol line and comma-separated list, trimmed, in order, to
// dst. It allocates nothing when dst has room.
func (r *Request) Protocols(dst [][]byte) [][]byte {
	return r.appendList(dst, &r.protos, r.nprotos, "Sec-WebSocket-Protocol")
}

// Extensions appends each extension offer from every
// Sec-WebSocket-Extensions line to dst: one entry per comma-separated offer,
// raw with its parameters (e.g. "permessage-deflate; client_max_window_bits").
// It allocates nothing when dst has room.
func (r *Request) Extensions(dst [][]byte) [][]byte {
	return r.appendList(dst, &r.exts, r.nexts, "Sec-WebSocket-Extensions")
}

func (r *Request) appendList(dst [][]byte, a *[maxListLines]span, n uint8, name string) [][]byte {
	if r.n == 0 {
		return dst
	}
	if n <= maxListLines {
		for _, s := range a[:n] {
			dst = appendElems(dst, s.bytes(r.buf))
		}
		return dst
	}
	// More lines than the array holds: rescan the block (cold path).
	block := r.buf[r.hdrs:r.n]
	for len(block) > 0 {
		var k, v []byte
		k, v, block = nextHeader(block)
		if asciiEqualFold(k, name) {
			dst = appendElems(dst, v)
		}
	}
	return dst
}

// Header returns the first value of the header called name, compared
// case-insensitively, or nil if absent. It rescans the header block: a cold
// path for headers the handshake does not keep, still allocation-free. The
// value aliases buf as the other views do.
func (r *Request) Header(name string) []byte {
	if r.n == 0 {
		return nil
	}
	return headerValue(r.buf[r.hdrs:r.n], name)
}

// Raw returns the whole header block, from the request line through the
// empty line that ends it.
func (r *Request) Raw() []byte {
	if r.n == 0 {
		return nil
	}
	return r.buf[r.start:r.n:r.n]
}
