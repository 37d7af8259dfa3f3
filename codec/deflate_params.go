package codec

import "strconv"

// DeflateName is the extension token of permessage-deflate (RFC 7692 §7).
const DeflateName = "permessage-deflate"

// The LZ77 window sizes permessage-deflate can negotiate, as base-2
// logarithms (RFC 7692 §7.1.2).
const (
	MinDeflateWindowBits = 8
	MaxDeflateWindowBits = 15
)

// DefaultDeflateWindowBits is the window a connection keeps per direction
// with context takeover when DeflateConfig.WindowBits is 0: 4 KiB, as gws
// keeps. On streams of 1 KiB JSON messages it recovers most of what a
// 32 KiB window would (see BenchmarkContextWindow), at an eighth of the
// memory per connection.
const DefaultDeflateWindowBits = 12

// DeflateParams are the parameters of one permessage-deflate element of a
// Sec-WebSocket-Extensions header (RFC 7692 §7.1): a client's offer, or the
// server's response, which is the agreement both sides then follow.
//
// A window size of 0 means the parameter is absent: an absent
// server_max_window_bits or client_max_window_bits allows the full 15-bit
// window. In an offer, client_max_window_bits without a value reads as 15
// and 15 is written without one: both say the client accepts any window the
// server picks (§7.1.2.2). In a response the parameter always has a value.
//
// The struct is 4 bytes and comparable, so a connection can keep it inline
// and a publisher can group subscribers by it.
type DeflateParams struct {
	// ServerNoContextTakeover: the server starts every message with an empty
	// window (§7.1.1.1), so its compressors can be shared between
	// connections.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the client starts every message with an
	// empty window (§7.1.1.2), so the server keeps no inflate state between
	// a connection's messages.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits is server_max_window_bits: the server's LZ77
	// window is at most 1<<ServerMaxWindowBits bytes (§7.1.2.1).
	ServerMaxWindowBits uint8
	// ClientMaxWindowBits is client_max_window_bits: the client's LZ77
	// window is at most 1<<ClientMaxWindowBits bytes (§7.1.2.2).
	ClientMaxWindowBits uint8
}

// windowBits turns a parameter into the window in force: 15 when absent.
func windowBits(b uint8) int {
	if b == 0 {
		return MaxDeflateWindowBits
	}
	return int(b)
}

// Send returns how the endpoint playing role compresses what it sends under
// the agreement p: whether it may keep its LZ77 window between messages
// (context takeover), and the base-2 logarithm of the largest distance its
// matches may reach. With context takeover the sender chooses how much of
// its past to keep, up to 1<<bits bytes: the peer keeps all of it, so any
// shorter Window is valid (a server keeps DeflateConfig's window).
func (p DeflateParams) Send(role Role) (contextTakeover bool, bits int) {
	if role == RoleServer {
		return !p.ServerNoContextTakeover, windowBits(p.ServerMaxWindowBits)
	}
	return !p.ClientNoContextTakeover, windowBits(p.ClientMaxWindowBits)
}

// Receive returns what the endpoint playing role must keep to inflate what
// its peer sends under p: whether the peer takes over context, so that the
// last 1<<bits bytes of the peer's plain text are the dictionary of its next
// message.
func (p DeflateParams) Receive(role Role) (contextTakeover bool, bits int) {
	if role == RoleServer {
		return p.Send(RoleClient)
	}
	return p.Send(RoleServer)
}

// AppendResponse appends the Sec-WebSocket-Extensions value that answers an
// offer with p, e.g. "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover". Parameters come in a fixed order, window
// sizes with their value.
func (p DeflateParams) AppendResponse(dst []byte) []byte { return p.appendElem(dst, false) }

// AppendOffer appends p as a client's offer, e.g. "permessage-deflate;
// client_max_window_bits". A ClientMaxWindowBits of 15 is written without a
// value, as browsers write it.
func (p DeflateParams) AppendOffer(dst []byte) []byte { return p.appendElem(dst, true) }

func (p DeflateParams) appendElem(dst []byte, offer bool) []byte {
	dst = append(dst, DeflateName...)
	if p.ServerNoContextTakeover {
		dst = append(dst, "; server_no_context_takeover"...)
	}
	if p.ClientNoContextTakeover {
		dst = append(dst, "; client_no_context_takeover"...)
	}
	if p.ServerMaxWindowBits != 0 {
		dst = append(dst, "; server_max_window_bits="...)
		dst = strconv.AppendUint(dst, uint64(p.ServerMaxWindowBits), 10)
	}
	if p.ClientMaxWindowBits != 0 {
		dst = append(dst, "; client_max_window_bits"...)
		if !offer || p.ClientMaxWindowBits != MaxDeflateWindowBits {
			dst = append(dst, '=')
			dst = strconv.AppendUint(dst, uint64(p.ClientMaxWindowBits), 10)
		}
	}
	return dst
}

// String returns p as an offer would write it, for logs and tests.
func (p DeflateParams) String() string { return string(p.AppendOffer(nil)) }

// parseResult is what parseDeflate found in one extension element.
type parseResult uint8

const (
	notDeflate    parseResult = iota // another extension, or no name at all
	deflateOK                        // a well-formed permessage-deflate element
	deflateBadElt                    // permessage-deflate with a parameter RFC 7692 §7 rules out
)

// parseDeflate parses one element of a Sec-WebSocket-Extensions list (RFC
// 6455 §9.1):
//
//	extension       = extension-token *( ";" extension-param )
//	extension-param = token [ "=" ( token | quoted-string ) ]
//
// If the element's token is permessage-deflate it checks the parameters as
// RFC 7692 §7 requires of both roles: each of the four at most once, no
// other name, the context takeover flags without a value, and window sizes
// that are integers 8 to 15 without leading zeros (§7.1.2), possibly
// quoted (RFC 6455 §9.1 allows a quoted-string whose content is a token).
// server_max_window_bits always needs a value; client_max_window_bits may go
// without one only in an offer. Whitespace around ';' and '=' is allowed.
func parseDeflate(elem []byte, offer bool) (p DeflateParams, res parseResult) {
	name, rest := nextParam(elem)
	if string(name) != DeflateName {
		return p, notDeflate
	}
	var seen uint8
	for rest != nil {
		var param []byte
		param, rest = nextParam(rest)
		key, val, hasVal := splitParam(param)
		var bit uint8
		switch string(key) {
		case "server_no_context_takeover":
			bit = 1
			p.ServerNoContextTakeover = true
		case "client_no_context_takeover":
			bit = 2
			p.ClientNoContextTakeover = true
		case "server_max_window_bits":
			bit = 4
			if p.ServerMaxWindowBits = parseWindowBits(val); p.ServerMaxWindowBits == 0 {
				return p, deflateBadElt
			}
		case "client_max_window_bits":
			bit = 8
			switch {
			case hasVal:
				if p.ClientMaxWindowBits = parseWindowBits(val); p.ClientMaxWindowBits == 0 {
					return p, deflateBadElt
				}
			case offer:
				p.ClientMaxWindowBits = MaxDeflateWindowBits
			default:
				return p, deflateBadElt
			}
		default:
			return p, deflateBadElt
		}
		if seen&bit != 0 || (bit <= 2 && hasVal) {
			return p, deflateBadElt
		}
		seen |= bit
	}
	return p, deflateOK
}

// nextParam returns the first ';'-separated part of s with whitespace
// trimmed, and the rest after the ';', which is nil when there is none (so
// that a trailing ';' yields one more, empty, part). A ';' inside a
// quoted-string does not split.
func nextParam(s []byte) (part, rest []byte) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';':
			return trimOWS(s[:i]), s[i+1:]
		}
	}
	return trimOWS(s), nil
}

// splitParam splits "name[=value]" around the first '=' outside a
// quoted-string, with whitespace trimmed; the value may still be quoted.
func splitParam(param []byte) (key, val []byte, hasVal bool) {
	for i, c := range param {
		if c == '"' {
			break
		}
		if c == '=' {
			return trimOWS(param[:i]), trimOWS(param[i+1:]), true
		}
	}
	return param, nil, false
}

// parseWindowBits parses a window size, 8 to 15 without leading zeros
// (RFC 7692 §7.1.2.1, §7.1.2.2), as a token or as a quoted-string whose
// content, after unescaping, is that token (RFC 6455 §9.1). It returns 0 for
// anything else.
func parseWindowBits(v []byte) uint8 {
	var d [2]byte
	n := 0
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		for i := 1; i < len(v)-1; i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v)-1 {
				i++
				c = v[i]
			}
			if n == len(d) {
				return 0
			}
			d[n] = c
			n++
		}
	} else {
		if len(v) > len(d) {
			return 0
		}
		n = copy(d[:], v)
	}
	switch {
	case n == 1 && (d[0] == '8' || d[0] == '9'):
		return d[0] - '0'
	case n == 2 && d[0] == '1' && '0' <= d[1] && d[1] <= '5':
		return 10 + d[1] - '0'
	}
	return 0
}
