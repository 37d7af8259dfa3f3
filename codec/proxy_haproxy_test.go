package codec

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestParseProxyHeaderHAProxy parses headers captured from HAProxy's
// send-proxy and send-proxy-v2 (testdata/proxy/haproxy.cfg says how),
// each followed by the client's request or, for health checks, nothing,
// and checks that the builders reproduce them.
func TestParseProxyHeaderHAProxy(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	lo4 := netip.MustParseAddr("127.0.0.1")
	lo6 := netip.MustParseAddr("::1")
	mapped := netip.MustParseAddr("::ffff:127.0.0.1")
	ap := netip.AddrPortFrom
	tests := []struct {
		file string
		hdr  ProxyHeader
		n    int
		rest string
		tlvs int // bytes of TLVs at the end of the header
	}{
		{file: "haproxy-send-proxy-tcp4.bin", hdr: proxyV1(ap(lo4, 40001), ap(lo4, 18001)), n: 44, rest: get},
		{file: "haproxy-send-proxy-tcp6.bin", hdr: proxyV1(ap(lo6, 40002), ap(lo6, 18002)), n: 32, rest: get},
		{file: "haproxy-send-proxy-v4mapped.bin", hdr: proxyV1(ap(mapped, 41008), ap(mapped, 18008)), n: 58, rest: get},
		{file: "haproxy-send-proxy-check.bin", hdr: proxyV1(ap(lo4, 40404), ap(lo4, 19007)), n: 44},
		{file: "haproxy-send-proxy-v2-tcp4.bin", hdr: proxyV2(ap(lo4, 40003), ap(lo4, 18003)), n: 28, rest: get},
		{file: "haproxy-send-proxy-v2-tcp6.bin", hdr: proxyV2(ap(lo6, 40004), ap(lo6, 18004)), n: 52, rest: get},
		{file: "haproxy-send-proxy-v2-v4mapped.bin", hdr: proxyV2(ap(mapped, 41009), ap(mapped, 18009)), n: 52, rest: get},
		// PP2_TYPE_CRC32C and PP2_TYPE_UNIQUE_ID TLVs.
		{file: "haproxy-send-proxy-v2-tlvs.bin", hdr: proxyV2(ap(lo4, 40005), ap(lo4, 18005)), n: 79, rest: get, tlvs: 51},
		// Health checks over send-proxy-v2 use the LOCAL command.
		{file: "haproxy-send-proxy-v2-check.bin", hdr: proxyLocal2, n: 16},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := os.ReadFile(filepath.Join("testdata", "proxy", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			h, n, err := ParseProxyHeader(p, 0)
			if h != tt.hdr || n != tt.n || err != nil {
				t.Fatalf("got (%+v, %d, %v), want (%+v, %d, nil)", h, n, err, tt.hdr, tt.n)
			}
			if rest := string(p[n:]); rest != tt.rest {
				t.Errorf("client bytes %q, want %q", rest, tt.rest)
			}
			// Our builders write what HAProxy writes.
			var built []byte
			if h.Version == 1 {
				built = AppendProxyHeaderV1(nil, h.Source, h.Dest)
			} else {
				built = AppendProxyHeaderV2(nil, h.Source, h.Dest, p[n-tt.tlvs:n])
			}
			if string(built) != string(p[:n]) {
				t.Errorf("built %q, HAProxy sent %q", built, p[:n])
			}
			for k := range n {
				if _, n, err := ParseProxyHeader(p[:k], 0); n != 0 || err != nil {
					t.Fatalf("prefix %d: (%d, %v), want need more", k, n, err)
				}
			}
		})
	}
}
