package codec

import (
	"bytes"
	"net/netip"
)

// parseProxyV1 parses a v1 line at the start of p, which starts with
// "PROXY " and is no longer than the cap:
//
//	"PROXY" SP ( "UNKNOWN" [ SP <anything> ] / ( "TCP4" / "TCP6" ) SP src SP dst SP sport SP dport ) CRLF
//
// §2.1 has the receiver wait for the CRLF before it decodes the addresses,
// so that each is known to be complete; nothing past the first CRLF is read.
func parseProxyV1(p []byte) (h ProxyHeader, n int, err error) {
	end := bytes.Index(p[len(proxyV1Sig):], []byte("\r\n"))
	if end < 0 {
		return h, 0, nil
	}
	line := p[len(proxyV1Sig) : len(proxyV1Sig)+end]
	n = len(proxyV1Sig) + end + 2

	var is6 bool
	switch {
	case bytes.HasPrefix(line, []byte("TCP4 ")):
	case bytes.HasPrefix(line, []byte("TCP6 ")):
		is6 = true
	case bytes.HasPrefix(line, []byte("UNKNOWN")) && (len(line) == 7 || line[7] == ' '):
		// "the receiver must ignore anything presented before the CRLF".
		return ProxyHeader{Version: 1, Local: true}, n, nil
	default:
		return h, 0, ErrProxyMalformed
	}

	// Four fields, each followed by exactly one space but the last.
	var f [4][]byte
	rest := line[len("TCP4 "):]
	for i := range 3 {
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			return h, 0, ErrProxyMalformed
		}
		f[i], rest = rest[:sp], rest[sp+1:]
	}
	f[3] = rest

	var src, dst netip.Addr
	var ok1, ok2 bool
	if is6 {
		src, ok1 = proxyParseIPv6(f[0])
		dst, ok2 = proxyParseIPv6(f[1])
	} else {
		src, ok1 = proxyParseIPv4(f[0])
		dst, ok2 = proxyParseIPv4(f[1])
	}
	sport, ok3 := proxyParsePort(f[2])
	dport, ok4 := proxyParsePort(f[3])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return h, 0, ErrProxyMalformed
	}
	return ProxyHeader{
		Version: 1,
		Source:  netip.AddrPortFrom(src, sport),
		Dest:    netip.AddrPortFrom(dst, dport),
	}, n, nil
}

// proxyParsePort parses a v1 port: a decimal in [0..65535] with no leading
// zero, "to avoid any possible confusion with octal numbers" (§2.1).
func proxyParsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 0xffff {
		return 0, false
	}
	return uint16(v), true
}

// proxyParseIPv4 parses "exactly 4 integers in the range [0..255]
// inclusive written in decimal representation separated by exactly one
// dot", with no leading zero (§2.1). It accepts what netip.ParseAddr
// accepts as IPv4, without the string that would cost an allocation.
func proxyParseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	field, digits, v := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && v == 0 {
				return netip.Addr{}, false
			}
			v = v*10 + int(c-'0')
			digits++
			if v > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || field == 3 {
				return netip.Addr{}, false
			}
			ip[field] = byte(v)
			field, digits, v = field+1, 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if digits == 0 || field != 3 {
		return netip.Addr{}, false
	}
	ip[3] = byte(v)
	return netip.AddrFrom4(ip), true
}

// proxyParseIPv6 parses an IPv6 address in the text form of RFC 4291 §2.2:
// groups of one to four hex digits, at most one "::", and an optional
// dotted IPv4 tail, which HAProxy sends for IPv4-mapped clients
// ("::ffff:192.0.2.1"). It accepts what netip.ParseAddr accepts as IPv6
// without a zone, and follows its structure.
func proxyParseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // index in ip where "::" stands
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, 0
		for ; off < len(s); off++ {
			d := proxyUnhex(s[off])
			if d < 0 {
				break
			}
			if off == 4 {
				return netip.Addr{}, false
			}
			acc = acc<<4 | d
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			// The IPv4 tail takes the last 32 bits, starting at this group.
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return netip.Addr{}, false
			}
			a4, ok := proxyParseIPv4(s)
			if !ok {
				return netip.Addr{}, false
			}
			b4 := a4.As4()
			copy(ip[i:], b4[:])
			i += 4
			s = nil
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		// Move the groups after "::" to the end and zero the gap.
		gap := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+gap] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+gap])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}

func proxyUnhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
