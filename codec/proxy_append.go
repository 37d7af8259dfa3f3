package codec

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// AppendProxyHeaderV1 appends to b a v1 PROXY line from src to dst and
// returns the extended buffer. Two IPv4 addresses give a TCP4 line; two
// valid addresses of which one is IPv6 give a TCP6 line with the IPv4 one
// mapped (::ffff:a.b.c.d), as HAProxy does; an invalid address gives
// "PROXY UNKNOWN". Zones are dropped. It is meant for tests and load
// generators; it does not allocate if b has room.
func AppendProxyHeaderV1(b []byte, src, dst netip.AddrPort) []byte {
	sa, da := src.Addr().WithZone(""), dst.Addr().WithZone("")
	switch {
	case !sa.IsValid() || !da.IsValid():
		return append(b, "PROXY UNKNOWN\r\n"...)
	case sa.Is4() && da.Is4():
		b = append(b, "PROXY TCP4 "...)
	default:
		b = append(b, "PROXY TCP6 "...)
		sa, da = netip.AddrFrom16(sa.As16()), netip.AddrFrom16(da.As16())
	}
	b = sa.AppendTo(b)
	b = append(b, ' ')
	b = da.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, "\r\n"...)
}

// AppendProxyHeaderV2 appends to b a v2 PROXY header from src to dst,
// followed by tlvs, and returns the extended buffer. tlvs is copied as is:
// it should hold whole TLVs (type byte, 16-bit big-endian length, value).
// Two IPv4 addresses give AF_INET; two valid addresses of which one is IPv6
// give AF_INET6 with the IPv4 one mapped; an invalid address gives the LOCAL
// command with AF_UNSPEC, as HAProxy sends for health checks. All use
// SOCK_STREAM. It panics if tlvs does not fit the 16-bit length. It is
// meant for tests and load generators; it does not allocate if b has room.
func AppendProxyHeaderV2(b []byte, src, dst netip.AddrPort, tlvs []byte) []byte {
	sa, da := src.Addr(), dst.Addr()
	cmd, fam, addrLen := byte(proxyV2CmdProxy), byte(proxyV2TCP6), proxyV2AddrLen6
	switch {
	case !sa.IsValid() || !da.IsValid():
		cmd, fam, addrLen = proxyV2CmdLocal, proxyV2Unspec, 0
	case sa.Is4() && da.Is4():
		fam, addrLen = proxyV2TCP4, proxyV2AddrLen4
	}
	if len(tlvs) > 0xffff-addrLen {
		panic("codec: proxy: TLVs too long for a v2 header")
	}
	b = append(b, proxyV2Sig...)
	b = append(b, proxyV2Version<<4|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(addrLen+len(tlvs)))
	switch fam {
	case proxyV2TCP4:
		s4, d4 := sa.As4(), da.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	case proxyV2TCP6:
		s16, d16 := sa.As16(), da.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	if addrLen > 0 {
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
	}
	return append(b, tlvs...)
}
