package codec

import (
	"net/netip"
	"strings"
	"testing"
)

// The v2 signature written out (§2.2), so that the tests do not borrow the
// parser's own constant.
const tSig2 = "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"

// Address blocks used in the v2 cases: 192.0.2.1:56324 -> 198.51.100.2:443
// and 2001:db8::1:56324 -> 2001:db8::2:443.
const (
	tAddr4 = "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\xdc\x04" + "\x01\xbb"
	tAddr6 = "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02" +
		"\xdc\x04" + "\x01\xbb"
	// An AWS NLB VPC endpoint TLV (type 0xEA, subtype 0x01) and a NOOP.
	tTLVs = "\xea\x00\x17\x01vpce-08d2bf15fefcffe00" + "\x04\x00\x00"
	// The longest v1 address and the longest v1 TCP6 tail.
	tFFFF   = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	tTail6  = tFFFF + " " + tFFFF + " 65535 65535\r\n"
	tLine4  = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
	tTrail  = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	tLocal2 = tSig2 + "\x20\x00\x00\x00"
)

var (
	tSrc4 = netip.MustParseAddrPort("192.0.2.1:56324")
	tDst4 = netip.MustParseAddrPort("198.51.100.2:443")
	tSrc6 = netip.MustParseAddrPort("[2001:db8::1]:56324")
	tDst6 = netip.MustParseAddrPort("[2001:db8::2]:443")
	tMax6 = netip.MustParseAddrPort("[" + tFFFF + "]:65535")
)

// proxyCase is one header on the wire and what it parses to. A case with a
// zero hdr and a nil err is an incomplete header ("need more").
type proxyCase struct {
	name string
	wire string
	max  int // maxBytes; 0 selects the default
	hdr  ProxyHeader
	err  error
	// built: wire is exactly AppendProxyHeaderV<hdr.Version>(hdr.Source,
	// hdr.Dest, tlvs), so the case also tests the builder.
	built bool
	tlvs  string
}

func proxyV1(src, dst netip.AddrPort) ProxyHeader {
	return ProxyHeader{Version: 1, Source: src, Dest: dst}
}

func proxyV2(src, dst netip.AddrPort) ProxyHeader {
	return ProxyHeader{Version: 2, Source: src, Dest: dst}
}

var (
	proxyLocal1 = ProxyHeader{Version: 1, Local: true}
	proxyLocal2 = ProxyHeader{Version: 2, Local: true}
)

var proxyCases = []proxyCase{
	// v1, valid (§2.1).
	{name: "v1/tcp4", wire: tLine4, hdr: proxyV1(tSrc4, tDst4), built: true},
	{name: "v1/tcp4-extremes", wire: "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
		hdr: proxyV1(netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("255.255.255.255:65535")), built: true},
	{name: "v1/tcp6", wire: "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n", hdr: proxyV1(tSrc6, tDst6), built: true},
	{name: "v1/tcp6-longest", wire: "PROXY TCP6 " + tTail6, hdr: proxyV1(tMax6, tMax6), built: true},
	{name: "v1/tcp6-uncompressed-upper", wire: "PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 2001:db8:0:0:0:0:0:2 56324 443\r\n",
		hdr: proxyV1(tSrc6, tDst6)},
	{name: "v1/tcp6-v4-mapped", wire: "PROXY TCP6 ::ffff:192.0.2.1 ::ffff:198.51.100.2 56324 443\r\n",
		hdr: proxyV1(netip.MustParseAddrPort("[::ffff:192.0.2.1]:56324"), netip.MustParseAddrPort("[::ffff:198.51.100.2]:443")), built: true},
	{name: "v1/tcp6-unspecified", wire: "PROXY TCP6 :: ::1 1 2\r\n",
		hdr: proxyV1(netip.MustParseAddrPort("[::]:1"), netip.MustParseAddrPort("[::1]:2")), built: true},
	{name: "v1/unknown", wire: "PROXY UNKNOWN\r\n", hdr: proxyLocal1, built: true},
	{name: "v1/unknown-longest", wire: "PROXY UNKNOWN " + tTail6, hdr: proxyLocal1},
	{name: "v1/unknown-anything", wire: "PROXY UNKNOWN \x00\xff\n\r \r\n", hdr: proxyLocal1},
	{name: "v1/tcp4-at-cap", wire: tLine4, max: len(tLine4), hdr: proxyV1(tSrc4, tDst4)},

	// v1, invalid.
	{name: "v1/http", wire: "GET / HTTP/1.1\r\n", err: ErrProxyMissing},
	{name: "v1/lowercase-proxy", wire: "proxy TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", err: ErrProxyMissing},
	{name: "v1/no-space", wire: "PROXYTCP4 192.0.2.1 198.51.100.2 56324 443\r\n", err: ErrProxyMissing},
	{name: "v1/double-space", wire: "PROXY  TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/lowercase-proto", wire: "PROXY tcp4 192.0.2.1 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/udp4", wire: "PROXY UDP4 192.0.2.1 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/proto-only", wire: "PROXY TCP4\r\n", err: ErrProxyMalformed},
	{name: "v1/empty", wire: "PROXY \r\n", err: ErrProxyMalformed},
	{name: "v1/unknown-suffix", wire: "PROXY UNKNOWNX\r\n", err: ErrProxyMalformed},
	{name: "v1/too-few-fields", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n", err: ErrProxyMalformed},
	{name: "v1/too-many-fields", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 80\r\n", err: ErrProxyMalformed},
	{name: "v1/trailing-space", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n", err: ErrProxyMalformed},
	{name: "v1/empty-field", wire: "PROXY TCP4 192.0.2.1  198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tab", wire: "PROXY TCP4 192.0.2.1\t198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/lf-only", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n" + tTrail, err: ErrProxyMalformed},
	{name: "v1/port-leading-zero", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 0443\r\n", err: ErrProxyMalformed},
	{name: "v1/port-zero-zero", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 00 443\r\n", err: ErrProxyMalformed},
	{name: "v1/port-65536", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 65536\r\n", err: ErrProxyMalformed},
	{name: "v1/port-six-digits", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 100000 443\r\n", err: ErrProxyMalformed},
	{name: "v1/port-sign", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 +1 443\r\n", err: ErrProxyMalformed},
	{name: "v1/port-hex", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 0x1bb 443\r\n", err: ErrProxyMalformed},
	{name: "v1/addr4-leading-zero", wire: "PROXY TCP4 192.0.2.01 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/addr4-256", wire: "PROXY TCP4 192.0.2.256 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/addr4-three-parts", wire: "PROXY TCP4 192.0.2 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/addr4-five-parts", wire: "PROXY TCP4 192.0.2.1.5 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/addr4-trailing-dot", wire: "PROXY TCP4 192.0.2.1 198.51.100. 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp4-with-ipv6", wire: "PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-with-ipv4", wire: "PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-zone", wire: "PROXY TCP6 fe80::1%eth0 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-two-ellipses", wire: "PROXY TCP6 2001::db8::1 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-triple-colon", wire: "PROXY TCP6 ::: 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-five-digit-group", wire: "PROXY TCP6 2001:0db80::1 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-nine-groups", wire: "PROXY TCP6 1:2:3:4:5:6:7:8:9 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-empty-ellipsis", wire: "PROXY TCP6 1:2:3:4:5:6:7::8 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-seven-groups", wire: "PROXY TCP6 1:2:3:4:5:6:7 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-bad-v4-tail", wire: "PROXY TCP6 ::ffff:192.0.2.01 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/tcp6-bracketed", wire: "PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 443\r\n", err: ErrProxyMalformed},
	{name: "v1/no-crlf-in-107", wire: "PROXY UNKNOWN " + strings.Repeat("x", 93), err: ErrProxyTooLarge},
	{name: "v1/108-bytes", wire: "PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r\n", err: ErrProxyTooLarge},
	{name: "v1/cap-inside-signature", wire: "P000", max: 1, err: ErrProxyTooLarge},
	{name: "v1/over-cap", wire: tLine4, max: len(tLine4) - 1, err: ErrProxyTooLarge},

	// v1, incomplete.
	{name: "v1/nothing", wire: ""},
	{name: "v1/partial-signature", wire: "PROX"},
	{name: "v1/no-crlf-yet", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443"},
	{name: "v1/cr-without-lf", wire: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r"},
	{name: "v1/garbage-before-crlf", wire: "PROXY TCP4 not an address"},

	// v2, valid (§2.2).
	{name: "v2/tcp4", wire: tSig2 + "\x21\x11\x00\x0c" + tAddr4, hdr: proxyV2(tSrc4, tDst4), built: true},
	{name: "v2/tcp6", wire: tSig2 + "\x21\x21\x00\x24" + tAddr6, hdr: proxyV2(tSrc6, tDst6), built: true},
	{name: "v2/tcp4-tlvs", wire: tSig2 + "\x21\x11\x00\x29" + tAddr4 + tTLVs, hdr: proxyV2(tSrc4, tDst4), built: true, tlvs: tTLVs},
	{name: "v2/tcp6-empty-tlv", wire: tSig2 + "\x21\x21\x00\x27" + tAddr6 + "\x05\x00\x00", hdr: proxyV2(tSrc6, tDst6), built: true, tlvs: "\x05\x00\x00"},
	{name: "v2/tcp4-at-default-cap", wire: tSig2 + "\x21\x11\x01\xf0" + tAddr4 + "\xe0\x01\xe1" + strings.Repeat("\xaa", 0x1e1),
		hdr: proxyV2(tSrc4, tDst4), built: true, tlvs: "\xe0\x01\xe1" + strings.Repeat("\xaa", 0x1e1)},
	{name: "v2/tcp4-at-max-cap", wire: tSig2 + "\x21\x11\xff\xff" + tAddr4 + "\xe0\xff\xf0" + strings.Repeat("\xaa", 0xfff0),
		max: ProxyV2MaxBytes, hdr: proxyV2(tSrc4, tDst4), built: true, tlvs: "\xe0\xff\xf0" + strings.Repeat("\xaa", 0xfff0)},
	{name: "v2/tcp6-v4-mapped", wire: tSig2 + "\x21\x21\x00\x24" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x01" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc6\x33\x64\x02" + "\xdc\x04\x01\xbb",
		hdr: proxyV2(netip.MustParseAddrPort("[::ffff:192.0.2.1]:56324"), netip.MustParseAddrPort("[::ffff:198.51.100.2]:443")), built: true},
	{name: "v2/local", wire: tLocal2, hdr: proxyLocal2, built: true},
	{name: "v2/local-tlvs", wire: tSig2 + "\x20\x00\x00\x29" + tTLVs + tAddr4, hdr: proxyLocal2, built: true, tlvs: tTLVs + tAddr4},
	{name: "v2/local-with-addresses", wire: tSig2 + "\x20\x11\x00\x0c" + tAddr4, hdr: proxyLocal2},
	{name: "v2/local-ignores-family", wire: tSig2 + "\x20\xff\x00\x03abc", hdr: proxyLocal2},
	{name: "v2/local-short-block", wire: tSig2 + "\x20\x21\x00\x04" + "\xff\x00\x09\x00", hdr: proxyLocal2},
	{name: "v2/proxy-unspec", wire: tSig2 + "\x21\x00\x00\x00", hdr: proxyLocal2},
	{name: "v2/proxy-unspec-block", wire: tSig2 + "\x21\x00\x00\x05hello", hdr: proxyLocal2},

	// v2, invalid.
	{name: "v2/bad-signature-last-byte", wire: "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0d" + "\x21\x11\x00\x0c" + tAddr4, err: ErrProxyMissing},
	{name: "v2/bad-signature-early", wire: "\x0d\x0a\x0d\x0a\x01", err: ErrProxyMissing},
	{name: "v2/http-leading-crlf", wire: "\r\nGET / HTTP/1.1\r\n", err: ErrProxyMissing},
	{name: "v2/version-1", wire: tSig2 + "\x11\x11\x00\x0c" + tAddr4, err: ErrProxyVersion},
	{name: "v2/version-0", wire: tSig2 + "\x01\x11\x00\x0c" + tAddr4, err: ErrProxyVersion},
	{name: "v2/version-3", wire: tSig2 + "\x31\x11\x00\x0c" + tAddr4, err: ErrProxyVersion},
	{name: "v2/version-15", wire: tSig2 + "\xf0", err: ErrProxyVersion},
	{name: "v2/command-2", wire: tSig2 + "\x22\x11\x00\x0c" + tAddr4, err: ErrProxyMalformed},
	{name: "v2/command-15", wire: tSig2 + "\x2f", err: ErrProxyMalformed},
	{name: "v2/udp4", wire: tSig2 + "\x21\x12\x00\x0c" + tAddr4, err: ErrProxyUnsupported},
	{name: "v2/udp6", wire: tSig2 + "\x21\x22\x00\x24" + tAddr6, err: ErrProxyUnsupported},
	{name: "v2/unix-stream", wire: tSig2 + "\x21\x31", err: ErrProxyUnsupported},
	{name: "v2/unix-dgram", wire: tSig2 + "\x21\x32", err: ErrProxyUnsupported},
	{name: "v2/family-inet-unspec", wire: tSig2 + "\x21\x10\x00\x0c" + tAddr4, err: ErrProxyMalformed},
	{name: "v2/family-unspec-stream", wire: tSig2 + "\x21\x01\x00\x00", err: ErrProxyMalformed},
	{name: "v2/family-inet-proto-3", wire: tSig2 + "\x21\x13\x00\x0c" + tAddr4, err: ErrProxyMalformed},
	{name: "v2/family-4", wire: tSig2 + "\x21\x41\x00\x0c" + tAddr4, err: ErrProxyMalformed},
	{name: "v2/tcp4-short-length", wire: tSig2 + "\x21\x11\x00\x0b" + tAddr4[:11], err: ErrProxyMalformed},
	{name: "v2/tcp4-zero-length", wire: tSig2 + "\x21\x11\x00\x00", err: ErrProxyMalformed},
	{name: "v2/tcp6-ipv4-length", wire: tSig2 + "\x21\x21\x00\x0c" + tAddr4, err: ErrProxyMalformed},
	{name: "v2/tlv-short-header", wire: tSig2 + "\x21\x11\x00\x0e" + tAddr4 + "\x04\x00", err: ErrProxyMalformed},
	{name: "v2/tlv-one-byte", wire: tSig2 + "\x21\x11\x00\x0d" + tAddr4 + "\x04", err: ErrProxyMalformed},
	{name: "v2/tlv-value-overruns", wire: tSig2 + "\x21\x11\x00\x11" + tAddr4 + "\x02\x00\x05ab" + tTrail, err: ErrProxyMalformed},
	{name: "v2/tlv-second-overruns", wire: tSig2 + "\x21\x11\x00\x12" + tAddr4 + "\x04\x00\x00\x02\x00\x01", err: ErrProxyMalformed},
	{name: "v2/tlv-length-ffff", wire: tSig2 + "\x21\x21\x00\x28" + tAddr6 + "\x01\xff\xff\x00", err: ErrProxyMalformed},
	{name: "v2/over-default-cap", wire: tSig2 + "\x21\x11\x01\xf1", err: ErrProxyTooLarge},
	{name: "v2/length-ffff", wire: tSig2 + "\x21\x21\xff\xff", err: ErrProxyTooLarge},
	{name: "v2/local-over-cap", wire: tSig2 + "\x20\x00\x02\x00", err: ErrProxyTooLarge},
	{name: "v2/tcp4-over-small-cap", wire: tSig2 + "\x21\x11\x00\x0c" + tAddr4, max: 27, err: ErrProxyTooLarge},
	{name: "v2/cap-below-fixed-part", wire: tSig2 + "\x21\x11\x00", max: 15, err: ErrProxyTooLarge},

	// v2, incomplete.
	{name: "v2/partial-signature", wire: tSig2[:7]},
	{name: "v2/signature", wire: tSig2},
	{name: "v2/fixed-part", wire: tSig2 + "\x21\x11\x00\x0c"},
	{name: "v2/partial-addresses", wire: tSig2 + "\x21\x21\x00\x24" + tAddr6[:35]},
	{name: "v2/partial-tlvs", wire: tSig2 + "\x21\x11\x00\x29" + tAddr4 + tTLVs[:28]},
}

// wantN is the n a case expects for its whole wire.
func (tc *proxyCase) wantN() int {
	if tc.hdr.Version == 0 {
		return 0
	}
	return len(tc.wire)
}

func (tc *proxyCase) check(t *testing.T, what string, h ProxyHeader, n int, err error) {
	t.Helper()
	if h != tc.hdr || n != tc.wantN() || err != tc.err {
		t.Errorf("%s: got (%+v, %d, %v), want (%+v, %d, %v)", what, h, n, err, tc.hdr, tc.wantN(), tc.err)
	}
}

func TestParseProxyHeader(t *testing.T) {
	for _, tc := range proxyCases {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseProxyHeader([]byte(tc.wire), tc.max)
			tc.check(t, "whole", h, n, err)

			// What follows a complete header or an error is never read.
			if tc.hdr.Version != 0 || tc.err != nil {
				h, n, err = ParseProxyHeader([]byte(tc.wire+tTrail), tc.max)
				tc.check(t, "with client bytes after", h, n, err)
			}
		})
	}
}

// TestParseProxyHeaderSplit feeds every case one more byte at a time, as a
// connection might deliver it: every prefix must say "need more" or give
// the final answer, and a valid header must need all its bytes.
func TestParseProxyHeaderSplit(t *testing.T) {
	for _, tc := range proxyCases {
		t.Run(tc.name, func(t *testing.T) {
			p := []byte(tc.wire)
			for k := range len(p) + 1 {
				h, n, err := ParseProxyHeader(p[:k], tc.max)
				if n == 0 && err == nil {
					if h != (ProxyHeader{}) {
						t.Fatalf("prefix %d: need more with header %+v", k, h)
					}
					continue
				}
				if tc.hdr.Version != 0 && k < len(p) {
					t.Fatalf("prefix %d of %d: got (%+v, %d, %v) before the header is complete", k, len(p), h, n, err)
				}
				tc.check(t, "prefix", h, n, err)
				return
			}
			if tc.hdr.Version != 0 || tc.err != nil {
				t.Fatal("no prefix, whole wire included, gave an answer")
			}
		})
	}
}

func TestAppendProxyHeaderCases(t *testing.T) {
	for _, tc := range proxyCases {
		if !tc.built {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			var got []byte
			switch tc.hdr.Version {
			case 1:
				got = AppendProxyHeaderV1(prefix, tc.hdr.Source, tc.hdr.Dest)
			case 2:
				got = AppendProxyHeaderV2(prefix, tc.hdr.Source, tc.hdr.Dest, []byte(tc.tlvs))
			}
			if want := "prefix" + tc.wire; string(got) != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// TestProxyHeaderRoundTrip builds headers of both versions from address
// pairs and parses them back.
func TestProxyHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		src, dst  string
		wantLocal bool
		// For a mixed pair the IPv4 address comes back IPv4-mapped.
		wantSrc, wantDst string
	}{
		{name: "ipv4", src: "10.0.0.1:1", dst: "10.0.0.2:65535"},
		{name: "ipv6", src: "[2001:db8:1:2:3:4:5:6]:1234", dst: "[fe80::]:80"},
		{name: "ipv6-zone-dropped", src: "[fe80::1%eth0]:1234", dst: "[::1]:80", wantSrc: "[fe80::1]:1234"},
		{name: "mixed", src: "192.0.2.1:5", dst: "[2001:db8::2]:443", wantSrc: "[::ffff:192.0.2.1]:5"},
		{name: "mixed-other-way", src: "[2001:db8::1]:5", dst: "192.0.2.1:443", wantDst: "[::ffff:192.0.2.1]:443"},
		{name: "v4-mapped", src: "[::ffff:10.1.2.3]:7", dst: "[::ffff:10.1.2.4]:8"},
		{name: "invalid-source", dst: "10.0.0.2:80", wantLocal: true},
		{name: "invalid-both", wantLocal: true},
	}
	parse := func(s string) netip.AddrPort {
		if s == "" {
			return netip.AddrPort{}
		}
		return netip.MustParseAddrPort(s)
	}
	for _, tt := range tests {
		for version, vname := range map[uint8]string{1: "v1", 2: "v2"} {
			t.Run(tt.name+"/"+vname, func(t *testing.T) {
				src, dst := parse(tt.src), parse(tt.dst)
				want := ProxyHeader{Version: version, Local: tt.wantLocal}
				if !tt.wantLocal {
					want.Source, want.Dest = src, dst
					if tt.wantSrc != "" {
						want.Source = parse(tt.wantSrc)
					}
					if tt.wantDst != "" {
						want.Dest = parse(tt.wantDst)
					}
				}
				var wire []byte
				if version == 1 {
					wire = AppendProxyHeaderV1(nil, src, dst)
				} else {
					wire = AppendProxyHeaderV2(nil, src, dst, []byte(tTLVs))
				}
				h, n, err := ParseProxyHeader(wire, 0)
				if h != want || n != len(wire) || err != nil {
					t.Errorf("%q: got (%+v, %d, %v), want (%+v, %d, nil)", wire, h, n, err, want, len(wire))
				}
			})
		}
	}
}

func TestAppendProxyHeaderV2TooLong(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for TLVs over the 16-bit length")
		}
	}()
	AppendProxyHeaderV2(nil, tSrc6, tDst6, make([]byte, 0xffff-proxyV2AddrLen6+1))
}

func TestProxySignature(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// Every prefix shorter than yesAt is ProxyMaybe and every longer
		// one ProxyYes; with yesAt < 0, prefixes from noAt on are ProxyNo.
		yesAt, noAt int
	}{
		{name: "v1", in: "PROXY TCP4 192.0.2.1", yesAt: 6},
		{name: "v2", in: tSig2 + "\x21\x11", yesAt: 12},
		{name: "http", in: "GET / HTTP/1.1", yesAt: -1, noAt: 1},
		{name: "tls", in: "\x16\x03\x01\x02\x00", yesAt: -1, noAt: 1},
		{name: "almost-v1", in: "PROXY\t", yesAt: -1, noAt: 6},
		{name: "almost-v2", in: tSig2[:11] + "X", yesAt: -1, noAt: 12},
		{name: "http-leading-crlf", in: "\r\n\r\nGET", yesAt: -1, noAt: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k := range len(tt.in) + 1 {
				want := ProxyMaybe
				switch {
				case tt.yesAt >= 0 && k >= tt.yesAt:
					want = ProxyYes
				case tt.yesAt < 0 && k >= tt.noAt:
					want = ProxyNo
				}
				if got := ProxySignature([]byte(tt.in[:k])); got != want {
					t.Errorf("ProxySignature(%q) = %v, want %v", tt.in[:k], got, want)
				}
			}
		})
	}
}

// TestProxyParseAddr checks the allocation-free address parsers against
// netip.ParseAddr, the reference the v1 line is meant to match.
func TestProxyParseAddr(t *testing.T) {
	for _, s := range []string{
		"", "0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3.04", "1.2.3.256", "1.2.3",
		"1.2.3.4.", ".1.2.3", "1..2.3", "1.2.3.4.5", "1.2.3.-4", "1.2.3.4 ", "1.2.3.1000",
		"::", "::1", "1::", ":", ":::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7::8", "1:2:3:4:5:6::8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3",
		"12345::", "0001:0002::", "ABCD:ef01::", "g::", "::ffff:1.2.3.4", "::1.2.3.4", "1.2.3.4::",
		"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1::1.2.3.4",
		"1:2:3:4:5:6::1.2.3.4", "::ffff:1.2.3", "::ffff:01.2.3.4", "::a.2.3.4", "fe80::1%eth0",
		"fe80::1%", "1:", ":1", "1:::2", "::ffff:1.2.3.4:5",
	} {
		want, err := netip.ParseAddr(s)
		want4 := err == nil && want.Is4()
		want6 := err == nil && want.Is6() && want.Zone() == ""
		if got, ok := proxyParseIPv4([]byte(s)); ok != want4 || (ok && got != want) {
			t.Errorf("proxyParseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
		if got, ok := proxyParseIPv6([]byte(s)); ok != want6 || (ok && got != want) {
			t.Errorf("proxyParseIPv6(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	}
}

func TestParseProxyHeaderAllocs(t *testing.T) {
	for _, tc := range proxyCases {
		p := []byte(tc.wire)
		allocs := testing.AllocsPerRun(10, func() {
			proxySinkHeader, proxySinkN, proxySinkErr = ParseProxyHeader(p, tc.max)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, allocs)
		}
	}
}

func TestAppendProxyHeaderAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	tlvs := []byte(tTLVs)
	allocs := testing.AllocsPerRun(10, func() {
		buf = AppendProxyHeaderV1(buf[:0], tSrc6, tDst6)
		buf = AppendProxyHeaderV2(buf[:0], tSrc6, tDst6, tlvs)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call into a large enough buffer, want 0", allocs)
	}
}

var (
	proxySinkHeader ProxyHeader
	proxySinkN      int
	proxySinkErr    error
)

func BenchmarkParseProxyHeader(b *testing.B) {
	for _, name := range []string{"v1/tcp4", "v1/tcp6-longest", "v1/unknown", "v2/tcp4", "v2/tcp6", "v2/tcp4-tlvs", "v2/local"} {
		var p []byte
		for _, tc := range proxyCases {
			if tc.name == name {
				p = []byte(tc.wire + tTrail)
			}
		}
		if p == nil {
			b.Fatalf("no case %q", name)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				proxySinkHeader, proxySinkN, proxySinkErr = ParseProxyHeader(p, 0)
			}
			if proxySinkErr != nil || proxySinkN == 0 {
				b.Fatal(proxySinkN, proxySinkErr)
			}
		})
	}
}

func BenchmarkProxySignature(b *testing.B) {
	p := []byte(tTrail)
	b.ReportAllocs()
	var d ProxyDetect
	for b.Loop() {
		d = ProxySignature(p)
	}
	if d != ProxyNo {
		b.Fatal(d)
	}
}

// proxyErrKnown reports whether err is nil or one of the parser's errors.
func proxyErrKnown(err error) bool {
	switch err {
	case nil, ErrProxyMissing, ErrProxyMalformed, ErrProxyTooLarge, ErrProxyUnsupported, ErrProxyVersion:
		return true
	}
	return false
}
