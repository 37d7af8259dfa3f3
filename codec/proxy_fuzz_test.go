package codec

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzProxyHeader parses data whole and split at a fuzzer-chosen offset,
// as two reads would deliver it, under a fuzzer-chosen cap (0 for the
// default). The two must agree, the answer must depend on no byte past
// the header, and "need more" must never come once the cap is reached.
func FuzzProxyHeader(f *testing.F) {
	for _, tc := range proxyCases {
		if len(tc.wire) < 1024 {
			f.Add([]byte(tc.wire+tTrail), uint16(len(tc.wire)/2), uint16(tc.max))
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "proxy", "*.bin"))
	for _, name := range files {
		p, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, uint16(len(p)/3), uint16(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, split, maxBytes uint16) {
		limit := int(maxBytes)
		if limit == 0 {
			limit = DefaultProxyMaxBytes
		}
		if len(data) > 0 && data[0] == 'P' {
			limit = min(limit, ProxyV1MaxBytes)
		}

		h, n, err := ParseProxyHeader(data, int(maxBytes))
		if !proxyErrKnown(err) {
			t.Fatalf("unknown error %v", err)
		}
		switch {
		case err != nil || n == 0:
			if h != (ProxyHeader{}) || n != 0 {
				t.Fatalf("(%+v, %d, %v): header or length with no header", h, n, err)
			}
			if err == nil && len(data) >= limit {
				t.Fatalf("need more with %d bytes, cap %d", len(data), limit)
			}
		default:
			if n > len(data) || n > limit {
				t.Fatalf("n = %d, with %d bytes and cap %d", n, len(data), limit)
			}
			if h.Version != 1 && h.Version != 2 {
				t.Fatalf("version %d", h.Version)
			}
			if h.Local != !h.Source.IsValid() || h.Local != !h.Dest.IsValid() {
				t.Fatalf("%+v: Local does not match the addresses", h)
			}
			// The header alone gives the same answer, one byte less is
			// not enough.
			if h2, n2, err2 := ParseProxyHeader(data[:n], int(maxBytes)); h2 != h || n2 != n || err2 != nil {
				t.Fatalf("header alone: (%+v, %d, %v), whole: (%+v, %d)", h2, n2, err2, h, n)
			}
			if _, n2, err2 := ParseProxyHeader(data[:n-1], int(maxBytes)); n2 != 0 || err2 != nil {
				t.Fatalf("header less one byte: n = %d, err = %v", n2, err2)
			}
		}

		k := int(split) % (len(data) + 1)
		h1, n1, err1 := ParseProxyHeader(data[:k], int(maxBytes))
		if (n1 != 0 || err1 != nil) && (h1 != h || n1 != n || err1 != err) {
			t.Fatalf("split at %d: (%+v, %d, %v), whole: (%+v, %d, %v)", k, h1, n1, err1, h, n, err)
		}

		switch ProxySignature(data) {
		case ProxyNo:
			// A cap shorter than a signature hides where it went wrong.
			if err != ErrProxyMissing && (err != ErrProxyTooLarge || limit >= len(proxyV2Sig)) {
				t.Fatalf("ProxyNo but err = %v", err)
			}
		case ProxyYes:
			if err == ErrProxyMissing {
				t.Fatal("ProxyYes but ErrProxyMissing")
			}
		case ProxyMaybe:
			if n != 0 || (err != nil && err != ErrProxyTooLarge) {
				t.Fatalf("ProxyMaybe but (%d, %v)", n, err)
			}
		}

		// A parsed header rebuilds to one that parses the same.
		if n > 0 && !h.Local {
			var wire []byte
			if h.Version == 1 {
				wire = AppendProxyHeaderV1(nil, h.Source, h.Dest)
			} else {
				wire = AppendProxyHeaderV2(nil, h.Source, h.Dest, nil)
			}
			if h2, n2, err2 := ParseProxyHeader(wire, 0); h2 != h || n2 != len(wire) || err2 != nil {
				t.Fatalf("rebuilt %q: (%+v, %d, %v), want %+v", wire, h2, n2, err2, h)
			}
		}
	})
}

// FuzzProxyAddr checks the v1 address parsers against netip.ParseAddr.
func FuzzProxyAddr(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7::", "fe80::1%eth0", "01.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := netip.ParseAddr(s)
		want4 := err == nil && want.Is4()
		want6 := err == nil && want.Is6() && want.Zone() == ""
		b := []byte(s)
		if got, ok := proxyParseIPv4(b); ok != want4 || (ok && got != want) {
			t.Fatalf("proxyParseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
		if got, ok := proxyParseIPv6(b); ok != want6 || (ok && got != want) {
			t.Fatalf("proxyParseIPv6(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
		if !bytes.Equal(b, []byte(s)) {
			t.Fatal("input modified")
		}
	})
}
