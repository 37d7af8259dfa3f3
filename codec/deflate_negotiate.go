package codec

import "errors"

// DeflateConfig is what a server agrees to when it negotiates
// permessage-deflate. The zero value is the default: no context takeover in
// either direction, so that a connection holds no compression state between
// messages and compressors are shared by every connection of a loop.
type DeflateConfig struct {
	// ContextTakeover keeps the LZ77 window between messages, in both
	// directions where the client allows it: better ratios on streams of
	// similar messages, for a window of 1<<WindowBits bytes per direction
	// per connection. A client that offers server_no_context_takeover, or
	// that cannot be asked for a smaller window (no client_max_window_bits in
	// its offer), still gets no context takeover in that direction.
	ContextTakeover bool
	// WindowBits is the base-2 logarithm of the window each connection
	// keeps per direction with context takeover, 8 to 15. If zero,
	// DefaultDeflateWindowBits is used.
	WindowBits uint8
}

func (c DeflateConfig) windowBits() uint8 {
	if c.WindowBits == 0 {
		return DefaultDeflateWindowBits
	}
	return min(max(c.WindowBits, MinDeflateWindowBits), MaxDeflateWindowBits)
}

// answer returns the response to a well-formed offer. Every well-formed
// offer is acceptable, so the first one wins (RFC 7692 §5: offers come in
// the client's order of preference):
//
//   - server_no_context_takeover is always answered when the configuration
//     has no context takeover, which a server may do whether or not the
//     client offered it (§7.1.1.1), and whenever the client offered it.
//   - server_max_window_bits is echoed with the offered value (§7.1.2.1:
//     the same or a smaller value accepts it); Deflater honours any size
//     from 8 to 15, so no offer is declined for its window.
//   - client_no_context_takeover is answered when the configuration has no
//     context takeover (a server may always send it, §7.1.1.2), when the
//     client offered it, and when the client did not offer
//     client_max_window_bits: such a client may use a 32 KiB window that
//     the server cannot ask it to shrink (a response must not carry
//     client_max_window_bits then, §7.1.2.2), and keeping 32 KiB per
//     connection is what this configuration exists to avoid.
//   - Otherwise client_max_window_bits is answered with the configured
//     window, or the client's value when smaller, so that the client's
//     matches never reach past what the server keeps.
func (c DeflateConfig) answer(o DeflateParams) DeflateParams {
	var p DeflateParams
	p.ServerNoContextTakeover = !c.ContextTakeover || o.ServerNoContextTakeover
	p.ServerMaxWindowBits = o.ServerMaxWindowBits
	if !c.ContextTakeover || o.ClientNoContextTakeover || o.ClientMaxWindowBits == 0 {
		p.ClientNoContextTakeover = true
	} else {
		p.ClientMaxWindowBits = min(o.ClientMaxWindowBits, c.windowBits())
	}
	return p
}

// negotiateList answers the first acceptable permessage-deflate offer in a
// comma-separated Sec-WebSocket-Extensions value.
func (c DeflateConfig) negotiateList(list []byte) (DeflateParams, bool) {
	for len(list) > 0 {
		var e []byte
		e, list = nextElem(list)
		if o, res := parseDeflate(e, true); res == deflateOK {
			return c.answer(o), true
		}
	}
	return DeflateParams{}, false
}

// NegotiateDeflate chooses among the permessage-deflate offers of the
// request, from every Sec-WebSocket-Extensions line in order, and returns
// the response parameters with true, or false if no offer is acceptable.
// Call it once CheckUpgrade has accepted the request, and send the result
// with AppendUpgradeResponseDeflate; with false, or when compression is off,
// send AppendUpgradeResponse: the connection runs uncompressed.
//
// A malformed offer (a parameter RFC 7692 does not define, one given twice,
// a window size outside 8 to 15 or with leading zeros, a value on a flag,
// server_max_window_bits without a value) is declined and the next one
// considered, as RFC 7692 §7 requires: "A server MUST decline an extension
// negotiation offer for this extension if" it meets any of those
// conditions. When every offer is malformed the server declines them
// all and the handshake still succeeds, uncompressed: declining is the
// answer the RFC gives for a bad offer, and RFC 6455 §9.1 lets a server
// accept none of the extensions offered. No request is refused for its
// Sec-WebSocket-Extensions header. Other extensions are ignored.
//
// It allocates nothing.
func (r *Request) NegotiateDeflate(c DeflateConfig) (DeflateParams, bool) {
	if r.n == 0 {
		return DeflateParams{}, false
	}
	if r.nexts <= maxListLines {
		for _, s := range r.exts[:r.nexts] {
			if p, ok := c.negotiateList(s.bytes(r.buf)); ok {
				return p, true
			}
		}
		return DeflateParams{}, false
	}
	// More lines than the array holds: rescan the block (cold path).
	block := r.buf[r.hdrs:r.n]
	for len(block) > 0 {
		var k, v []byte
		k, v, block = nextHeader(block)
		if asciiEqualFold(k, "Sec-WebSocket-Extensions") {
			if p, ok := c.negotiateList(v); ok {
				return p, true
			}
		}
	}
	return DeflateParams{}, false
}

// AppendUpgradeResponseDeflate appends the 101 response of
// AppendUpgradeResponse with a "Sec-WebSocket-Extensions:" line carrying
// deflate.AppendResponse, the answer NegotiateDeflate returned. It
// allocates nothing when dst has room.
func AppendUpgradeResponseDeflate(dst []byte, key, subprotocol []byte, deflate DeflateParams, extra []byte) []byte {
	dst = appendUpgradeHead(dst, key, subprotocol)
	dst = append(dst, "Sec-WebSocket-Extensions: "...)
	dst = deflate.AppendResponse(dst)
	dst = append(dst, "\r\n"...)
	dst = append(dst, extra...)
	return append(dst, "\r\n"...)
}

// AppendDeflateOffer appends the request header line offering offer,
// "Sec-WebSocket-Extensions: permessage-deflate; ...\r\n", for the extra
// argument of AppendClientRequest.
func AppendDeflateOffer(dst []byte, offer DeflateParams) []byte {
	dst = append(dst, "Sec-WebSocket-Extensions: "...)
	dst = offer.AppendOffer(dst)
	return append(dst, "\r\n"...)
}

// Client-side extension failures (RFC 6455 §4.1, RFC 7692 §5, §7).
var (
	ErrResponseExtension = errors.New("codec: handshake response selects an extension the client did not offer")
	ErrResponseDeflate   = errors.New("codec: handshake response has permessage-deflate parameters the client did not allow")
)

// Deflate checks the server's Sec-WebSocket-Extensions against the offer
// the client sent (nil if it offered nothing) and returns the agreement,
// with true if the server accepted permessage-deflate. Call it after Check.
//
// It fails with ErrResponseExtension if the response selects any extension
// but permessage-deflate, or permessage-deflate when nothing was offered
// (RFC 6455 §4.1), and with ErrResponseDeflate if it accepts more than one
// offer (RFC 7692 §5) or has a parameter the offer did not allow (§7: an
// unknown or repeated parameter, a bad value, client_max_window_bits
// without a value or not offered, a server_max_window_bits missing or above
// the offered one, no server_no_context_takeover although the client asked
// for it). The client then fails the connection.
//
// An offered client_no_context_takeover is kept in the agreement even if
// the response does not repeat it: the client promised it (§7.1.1.2).
func (r *Response) Deflate(offer *DeflateParams) (DeflateParams, bool, error) {
	var agreed DeflateParams
	found := false
	var bad error
	r.eachExtension(func(e []byte) bool {
		p, res := parseDeflate(e, false)
		switch {
		case res == notDeflate || offer == nil:
			bad = ErrResponseExtension
		case res == deflateBadElt || found || !allowedBy(p, offer):
			bad = ErrResponseDeflate
		default:
			found, agreed = true, p
			agreed.ClientNoContextTakeover = p.ClientNoContextTakeover || offer.ClientNoContextTakeover
		}
		return bad == nil
	})
	if bad != nil {
		return DeflateParams{}, false, bad
	}
	return agreed, found, nil
}

// allowedBy reports whether the response p accepts the offer o.
func allowedBy(p DeflateParams, o *DeflateParams) bool {
	switch {
	case o.ServerNoContextTakeover && !p.ServerNoContextTakeover:
		return false
	case o.ServerMaxWindowBits != 0 && (p.ServerMaxWindowBits == 0 || p.ServerMaxWindowBits > o.ServerMaxWindowBits):
		return false
	case p.ClientMaxWindowBits > o.ClientMaxWindowBits: // includes "not offered" (0)
		return false
	}
	return true
}

// eachExtension calls yield with each element of every
// Sec-WebSocket-Extensions line of the response, in order, until yield
// returns false.
func (r *Response) eachExtension(yield func(elem []byte) bool) {
	if r.n == 0 {
		return
	}
	each := func(list []byte) bool {
		for len(list) > 0 {
			var e []byte
			e, list = nextElem(list)
			if len(e) > 0 && !yield(e) {
				return false
			}
		}
		return true
	}
	if r.nexts <= maxListLines {
		for _, s := range r.exts[:r.nexts] {
			if !each(s.bytes(r.buf)) {
				return
			}
		}
		return
	}
	block := r.buf[r.hdrs:r.n]
	for len(block) > 0 {
		var k, v []byte
		k, v, block = nextHeader(block)
		if asciiEqualFold(k, "Sec-WebSocket-Extensions") && !each(v) {
			return
		}
	}
}
