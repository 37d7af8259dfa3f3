package codec

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// This file parses the PROXY protocol header that an L4 load balancer
// (HAProxy send-proxy/send-proxy-v2, AWS NLB, nginx stream) puts in front of
// the client's bytes to tell the server who the client is. Section numbers
// refer to HAProxy's "The PROXY protocol, Versions 1 & 2"
// (doc/proxy-protocol.txt).

// ProxyHeader is a parsed PROXY protocol header.
type ProxyHeader struct {
	// Version is 1 for the text header, 2 for the binary one.
	Version uint8

	// Local reports that the header carries no client addresses and the
	// connection's own endpoints apply: a v1 "UNKNOWN" line, a v2 LOCAL
	// command (a health check from the proxy itself, §2.2), or a v2 PROXY
	// command with the AF_UNSPEC family. Source and Dest are then zero.
	Local bool

	// Source and Dest are the client's address and the address it
	// connected to, for TCP over IPv4 or IPv6 (v1 TCP4/TCP6, v2
	// AF_INET/AF_INET6 with SOCK_STREAM). Addresses are as sent: an
	// IPv4-mapped IPv6 address stays one (see netip.Addr.Unmap).
	Source, Dest netip.AddrPort
}

// ProxyDetect is what the first bytes of a connection say about a PROXY
// header. See ProxySignature.
type ProxyDetect uint8

const (
	// ProxyMaybe means too few bytes to tell: read more.
	ProxyMaybe ProxyDetect = iota
	// ProxyYes means p starts with a v1 or v2 signature.
	ProxyYes
	// ProxyNo means p cannot start a PROXY header.
	ProxyNo
)

func (d ProxyDetect) String() string {
	switch d {
	case ProxyMaybe:
		return "ProxyMaybe"
	case ProxyYes:
		return "ProxyYes"
	case ProxyNo:
		return "ProxyNo"
	}
	return "ProxyDetect(?)"
}

const (
	// DefaultProxyMaxBytes is the header cap ParseProxyHeader uses when
	// given zero. It holds any v1 line and a v2 header with IPv6 addresses
	// and 460 bytes of TLVs (an AWS NLB sends about 30).
	DefaultProxyMaxBytes = 512

	// ProxyV1MaxBytes is the longest v1 line, CRLF included (§2.1).
	ProxyV1MaxBytes = 107

	// ProxyV2MaxBytes is the longest v2 header the format can express: 16
	// fixed bytes and a 16-bit length (§2.2). A larger cap changes nothing.
	ProxyV2MaxBytes = 16 + 0xffff
)

// Errors returned by ParseProxyHeader. The caller closes the connection on
// any of them; none carries a WebSocket close code, since no WebSocket
// exists yet.
var (
	// ErrProxyMissing: the connection does not start with a v1 or v2
	// signature, so the peer is not sending the PROXY protocol.
	ErrProxyMissing = errors.New("codec: proxy: no PROXY protocol signature")
	// ErrProxyMalformed: the header breaks the syntax of §2.1 or §2.2.
	ErrProxyMalformed = errors.New("codec: proxy: malformed header")
	// ErrProxyTooLarge: the header is longer than the cap, or a v1 line has
	// no CRLF within 107 bytes (§2.1).
	ErrProxyTooLarge = errors.New("codec: proxy: header too large")
	// ErrProxyUnsupported: a valid v2 PROXY command for UDP or a UNIX socket,
	// which a TCP listener does not serve.
	ErrProxyUnsupported = errors.New("codec: proxy: unsupported address family or protocol")
	// ErrProxyVersion: the v2 signature is followed by a version other
	// than 2 (§2.2).
	ErrProxyVersion = errors.New("codec: proxy: unsupported version")
)

// The signatures that start each version. The v2 one begins with CRLF and
// holds a NUL, so no v1 line or HTTP request can start with it (§2.2).
const (
	proxyV1Sig = "PROXY "
	proxyV2Sig = "\r\n\r\n\x00\r\nQUIT\n"
)

// v2 fixed header fields (§2.2).
const (
	proxyV2HeaderLen = 16

	proxyV2Version  = 0x2
	proxyV2CmdLocal = 0x0
	proxyV2CmdProxy = 0x1

	proxyV2Unspec = 0x00
	proxyV2TCP4   = 0x11
	proxyV2UDP4   = 0x12
	proxyV2TCP6   = 0x21
	proxyV2UDP6   = 0x22
	proxyV2Stream = 0x31 // AF_UNIX, SOCK_STREAM
	proxyV2Dgram  = 0x32 // AF_UNIX, SOCK_DGRAM

	proxyV2AddrLen4 = 12 // two IPv4 addresses, two ports
	proxyV2AddrLen6 = 36 // two IPv6 addresses, two ports
	proxyV2TLVLen   = 3  // type, 16-bit length
)

// ProxySignature reports how p starts: ProxyYes if it starts with the v1
// "PROXY " or the 12-byte v2 signature, ProxyNo if it cannot (an HTTP
// request or a TLS record is told apart by its first byte), and ProxyMaybe
// if p is a proper prefix of a signature, empty included. It serves an
// optional PROXY mode: on ProxyNo the bytes are the client's own; on
// ProxyYes the header is parsed with ParseProxyHeader, which then decides
// as in required mode. It never allocates.
func ProxySignature(p []byte) ProxyDetect {
	if len(p) == 0 {
		return ProxyMaybe
	}
	var sig string
	switch p[0] {
	case proxyV1Sig[0]:
		sig = proxyV1Sig
	case proxyV2Sig[0]:
		sig = proxyV2Sig
	default:
		return ProxyNo
	}
	if len(p) >= len(sig) {
		if string(p[:len(sig)]) == sig {
			return ProxyYes
		}
		return ProxyNo
	}
	if string(p) == sig[:len(p)] {
		return ProxyMaybe
	}
	return ProxyNo
}

// ParseProxyHeader parses a PROXY protocol header, v1 or v2, at the start of
// p. It is incremental: n == 0 with a nil error means no answer yet, and
// the caller should read more and call again with all the bytes so far;
// n > 0 means the header is complete, its first n bytes are the header,
// and p[n:] is the start of the client's stream. A header or an error
// found in a prefix of p is the one found in p, so a header split
// anywhere parses as in one piece. On error or n == 0, h is zero.
//
// A wrong signature fails at its first wrong byte (an HTTP request gives
// ErrProxyMissing at once). A v2 header is judged byte
// by byte through its 16-byte fixed part and whole once its block is in; a
// v1 line is judged once its CRLF is in, as §2.1 asks.
//
// maxBytes caps the header; if zero or negative, DefaultProxyMaxBytes is
// used. A v1 line is further capped at ProxyV1MaxBytes (§2.1). Once p holds
// as many bytes as the cap, the call returns a header or an error, never
// "need more"; a v2 header whose length field exceeds the cap fails as soon
// as the 16-byte fixed part is in.
//
// Errors are ErrProxyMissing, ErrProxyMalformed, ErrProxyTooLarge,
// ErrProxyUnsupported and ErrProxyVersion. v2 TLVs are checked to tile the
// bytes after the addresses exactly, but their contents are not read (a
// PP2_TYPE_CRC32C is not verified). It never allocates.
func ParseProxyHeader(p []byte, maxBytes int) (h ProxyHeader, n int, err error) {
	limit := maxBytes
	if limit <= 0 {
		limit = DefaultProxyMaxBytes
	}
	if len(p) > 0 && p[0] == proxyV1Sig[0] {
		limit = min(limit, ProxyV1MaxBytes)
	}
	// Look only at the bytes within the cap, so that nothing past it can
	// change the outcome.
	q := p[:min(len(p), limit)]
	switch ProxySignature(q) {
	case ProxyNo:
		return h, 0, ErrProxyMissing
	case ProxyYes:
		if q[0] == proxyV1Sig[0] {
			h, n, err = parseProxyV1(q)
		} else {
			h, n, err = parseProxyV2(q, limit)
		}
		if n > 0 || err != nil {
			return h, n, err
		}
	}
	if len(p) >= limit {
		return ProxyHeader{}, 0, ErrProxyTooLarge
	}
	return ProxyHeader{}, 0, nil
}

// parseProxyV2 parses a v2 header at the start of p, which starts with the
// v2 signature and is no longer than limit.
func parseProxyV2(p []byte, limit int) (h ProxyHeader, n int, err error) {
	// Judge each fixed byte as it arrives, so that a bad header fails
	// before its length is read.
	if len(p) <= 12 {
		return h, 0, nil
	}
	if p[12]>>4 != proxyV2Version {
		return h, 0, ErrProxyVersion
	}
	cmd := p[12] & 0xf
	if cmd != proxyV2CmdLocal && cmd != proxyV2CmdProxy {
		return h, 0, ErrProxyMalformed // "Receivers must drop connections presenting unexpected values here."
	}
	if len(p) <= 13 {
		return h, 0, nil
	}
	// LOCAL discards the address block "including the family which is
	// ignored" (§2.2), so the family byte is judged only for PROXY.
	fam := p[13]
	addrLen := 0
	if cmd == proxyV2CmdProxy {
		switch fam {
		case proxyV2Unspec:
		case proxyV2TCP4:
			addrLen = proxyV2AddrLen4
		case proxyV2TCP6:
			addrLen = proxyV2AddrLen6
		case proxyV2UDP4, proxyV2UDP6, proxyV2Stream, proxyV2Dgram:
			return h, 0, ErrProxyUnsupported
		default:
			// "must be rejected as invalid by receivers" (§2.2)
			return h, 0, ErrProxyMalformed
		}
	}
	if len(p) < proxyV2HeaderLen {
		return h, 0, nil
	}
	length := int(binary.BigEndian.Uint16(p[14:16]))
	n = proxyV2HeaderLen + length
	if n > limit {
		return h, 0, ErrProxyTooLarge
	}
	if length < addrLen {
		return h, 0, ErrProxyMalformed
	}
	if len(p) < n {
		return h, 0, nil
	}
	if cmd == proxyV2CmdLocal || fam == proxyV2Unspec {
		// The block is skipped whole: with no family there are no known
		// addresses to find the TLVs after.
		return ProxyHeader{Version: 2, Local: true}, n, nil
	}
	if !proxyTLVsValid(p[proxyV2HeaderLen+addrLen : n]) {
		return h, 0, ErrProxyMalformed
	}
	a := p[proxyV2HeaderLen:]
	h.Version = 2
	if fam == proxyV2TCP4 {
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:12]))
	} else {
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:34]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:36]))
	}
	return h, n, nil
}

// proxyTLVsValid reports whether b is a sequence of whole TLVs: a type
// byte, a 16-bit big-endian length and that many bytes of value (§2.2).
func proxyTLVsValid(b []byte) bool {
	for len(b) > 0 {
		if len(b) < proxyV2TLVLen {
			return false
		}
		l := proxyV2TLVLen + int(binary.BigEndian.Uint16(b[1:3]))
		if l > len(b) {
			return false
		}
		b = b[l:]
	}
	return true
}
