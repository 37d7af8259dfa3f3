package codec_test

import (
	"fmt"
	"net/netip"

	"github.com/wsgate/wsgate/codec"
)

// A connection's bytes arrive in pieces; the header is parsed again from
// the start of the buffered bytes each time until it is complete.
func ExampleParseProxyHeader() {
	wire := codec.AppendProxyHeaderV2(nil,
		netip.MustParseAddrPort("203.0.113.7:51000"),
		netip.MustParseAddrPort("198.51.100.2:443"), nil)
	wire = append(wire, "GET / HTTP/1.1\r\n"...)

	var buf []byte
	for _, read := range [][]byte{wire[:10], wire[10:20], wire[20:]} {
		buf = append(buf, read...)
		h, n, err := codec.ParseProxyHeader(buf, 0)
		if err != nil {
			fmt.Println("close:", err)
			return
		}
		if n == 0 {
			fmt.Println("need more after", len(buf), "bytes")
			continue
		}
		fmt.Println("client", h.Source, "to", h.Dest)
		fmt.Printf("client bytes: %q\n", buf[n:])
	}
	// Output:
	// need more after 10 bytes
	// need more after 20 bytes
	// client 203.0.113.7:51000 to 198.51.100.2:443
	// client bytes: "GET / HTTP/1.1\r\n"
}

// With the PROXY protocol optional, ProxySignature tells a header from
// the client's own first bytes.
func ExampleProxySignature() {
	for _, first := range []string{"GET / HTTP/1.1\r\n", "PROX", "PROXY TCP4 "} {
		switch codec.ProxySignature([]byte(first)) {
		case codec.ProxyNo:
			fmt.Printf("%q: no header, serve the bytes\n", first)
		case codec.ProxyMaybe:
			fmt.Printf("%q: read more\n", first)
		case codec.ProxyYes:
			fmt.Printf("%q: parse with ParseProxyHeader\n", first)
		}
	}
	// Output:
	// "GET / HTTP/1.1\r\n": no header, serve the bytes
	// "PROX": read more
	// "PROXY TCP4 ": parse with ParseProxyHeader
}
