package codec

import "errors"

// Client-side handshake failures (RFC 6455 §4.1).
var (
	ErrResponseMalformed  = errors.New("codec: malformed HTTP response")
	ErrResponseTooLarge   = errors.New("codec: response header too large")
	ErrResponseStatus     = errors.New("codec: handshake response status is not 101")
	ErrResponseUpgrade    = errors.New("codec: handshake response lacks Upgrade: websocket")
	ErrResponseConnection = errors.New("codec: handshake response lacks Connection: Upgrade")
	ErrResponseAccept     = errors.New("codec: handshake response has a wrong Sec-WebSocket-Accept")
	ErrResponseProtocol   = errors.New("codec: handshake response selects more than one subprotocol")
)

// Response is an HTTP/1.1 response parsed incrementally from bytes: the
// client's side of the opening handshake. It works like Request: offsets
// into the caller's buffer, zero value ready, Reset to reuse.
type Response struct {
	head // parse state (head.go)
	err  error

	// Status line.
	status       uint16
	major, minor uint8

	// Headers the handshake needs; the first occurrence unless noted.
	accept, protocol       span
	accepts, protocols     uint8 // occurrences, saturating
	upgradeWS, connUpgrade bool
	nexts                  uint8 // Sec-WebSocket-Extensions lines, saturating
	exts                   [maxListLines]span
}

// Reset clears r for a new response and drops its reference to the last
// buffer.
func (r *Response) Reset() { *r = Response{} }

// Parse continues parsing the response, with the contract of Request.Parse:
// buf holds every byte received so far, possibly moved between calls; n == 0
// and a nil error mean more bytes are needed; n > 0 counts the bytes of the
// header block, after which the WebSocket stream begins. maxBytes caps the
// block (0 means DefaultMaxHeaderBytes); over it Parse returns
// ErrResponseTooLarge. Syntax errors return ErrResponseMalformed. Parse checks
// syntax only; Check applies the handshake rules.
func (r *Response) Parse(buf []byte, maxBytes int) (n int, err error) {
	if r.err != nil {
		return 0, r.err
	}
	if n, done := r.resume(buf); done {
		if n == 0 {
			return 0, ErrResponseMalformed
		}
		return n, nil
	}
	limit := clampMax(maxBytes)
	for {
		line, s := r.next(buf, limit, false)
		ok := true
		switch s {
		case stepStart:
			ok = r.parseStatusLine(line)
		case stepHeader:
			ok = r.parseHeader(buf, line)
		default:
			n, r.err = r.stop(s, ErrResponseTooLarge, ErrResponseMalformed)
			return n, r.err
		}
		if !ok {
			r.err = ErrResponseMalformed
			return 0, r.err
		}
	}
}

// parseStatusLine parses "HTTP-version SP status-code SP [reason-phrase]"
// (RFC 9112 §4). The space before an empty reason is optional here, as many
// servers leave it out.
func (r *Response) parseStatusLine(line []byte) bool {
	if len(line) < 12 || line[8] != ' ' || !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) {
		return false
	}
	var ok bool
	if r.major, r.minor, ok = parseHTTPVersion(line[:8]); !ok {
		return false
	}
	status := uint16(line[9]-'0')*100 + uint16(line[10]-'0')*10 + uint16(line[11]-'0')
	if status < 100 {
		return false
	}
	if len(line) > 12 && line[12] != ' ' {
		return false
	}
	for _, c := range line[12:] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	r.status = status
	return true
}

func (r *Response) parseHeader(buf, line []byte) bool {
	name, value, ok := parseHeaderLine(line)
	if !ok {
		return false
	}
	switch len(name) {
	case 7:
		if asciiEqualFold(name, "Upgrade") && hasToken(value, "websocket") {
			r.upgradeWS = true
		}
	case 10:
		if asciiEqualFold(name, "Connection") && hasToken(value, "Upgrade") {
			r.connUpgrade = true
		}
	case 20:
		if asciiEqualFold(name, "Sec-WebSocket-Accept") {
			r.accepts = min(r.accepts+1, 2)
			if r.accepts == 1 {
				r.accept = spanOf(buf, value)
			}
		}
	case 22:
		if asciiEqualFold(name, "Sec-WebSocket-Protocol") {
			r.protocols = min(r.protocols+1, 2)
			if r.protocols == 1 {
				r.protocol = spanOf(buf, value)
			}
		}
	case 24:
		if asciiEqualFold(name, "Sec-WebSocket-Extensions") {
			r.nexts = addSpan(&r.exts, r.nexts, spanOf(buf, value))
		}
	}
	return true
}

// Status returns the response's status code, or 0 before the status line
// has been parsed.
func (r *Response) Status() int { return int(r.status) }

// Header returns the first value of the header called name, compared
// case-insensitively, or nil if absent; like Request.Header, a cold-path
// rescan that aliases buf.
func (r *Response) Header(name string) []byte {
	if r.n == 0 {
		return nil
	}
	return headerValue(r.buf[r.hdrs:r.n], name)
}

// Subprotocol returns the Sec-WebSocket-Protocol the server selected, or nil
// if none. It aliases buf as Header does.
func (r *Response) Subprotocol() []byte {
	if r.n == 0 {
		return nil
	}
	return r.protocol.bytes(r.buf)
}

// Check verifies the parsed response against the client's rules of RFC 6455
// §4.1 for the Sec-WebSocket-Key that was sent: status 101
// (ErrResponseStatus), Upgrade listing "websocket" (ErrResponseUpgrade),
// Connection listing "Upgrade" (ErrResponseConnection), a single
// Sec-WebSocket-Accept matching key (ErrResponseAccept), and at most one
// subprotocol (ErrResponseProtocol). Whether that subprotocol, or any
// extension, was offered is for the caller to check, since it knows what it
// sent.
func (r *Response) Check(key []byte) error {
	if r.n == 0 {
		return ErrResponseMalformed
	}
	if r.status != 101 {
		return ErrResponseStatus
	}
	if !r.upgradeWS {
		return ErrResponseUpgrade
	}
	if !r.connUpgrade {
		return ErrResponseConnection
	}
	want := AcceptKey(key)
	if r.accepts != 1 || string(r.accept.bytes(r.buf)) != string(want[:]) {
		return ErrResponseAccept
	}
	if r.protocols > 1 {
		return ErrResponseProtocol
	}
	if p := r.protocol.bytes(r.buf); p != nil {
		if e, rest := nextElem(p); len(rest) > 0 || len(e) != len(p) {
			return ErrResponseProtocol
		}
	}
	return nil
}
