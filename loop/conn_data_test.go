package loop

import (
	"net/netip"
	"testing"
)

// The compact address gives back exactly the netip.AddrPort it was given.
func TestRemoteAddrRoundTrip(t *testing.T) {
	for _, s := range []string{
		"", "127.0.0.1:61001", "0.0.0.0:0", "[::1]:443", "[::ffff:10.1.2.3]:8080",
		"[2001:db8::1]:65535", "[fe80::1%eth0]:61002", "[::]:1", "[::ffff:10.1.2.3%eth0]:2",
		"[::ffff:0.0.0.0]:0", "[2001:db8::ffff:10.1.2.3]:3",
	} {
		var want netip.AddrPort
		if s != "" {
			want = netip.MustParseAddrPort(s)
		}
		c := new(Conn)
		c.setRemote(want)
		if got := c.remoteAddr(); got != want {
			t.Errorf("%q: remoteAddr = %v, want %v", s, got, want)
		}
		// Only IPv6 needs ext: IPv4 and IPv4-mapped addresses without
		// a zone are kept in the Conn.
		ip := want.Addr()
		v6 := ip.Is6() && (!ip.Is4In6() || ip.Zone() != "")
		if (c.ext.Load() != nil) != v6 {
			t.Errorf("%q: ext allocated %v, want %v", s, c.ext.Load() != nil, v6)
		}
	}
	// A later address replaces the first (a PROXY header's).
	c := new(Conn)
	c.setRemote(netip.MustParseAddrPort("[fe80::1%eth0]:1"))
	c.setRemote(netip.MustParseAddrPort("192.0.2.7:2"))
	if got := c.remoteAddr(); got != netip.MustParseAddrPort("192.0.2.7:2") {
		t.Errorf("after a second setRemote: %v", got)
	}
	c.setRemote(netip.MustParseAddrPort("[2001:db8::2]:3"))
	if got := c.remoteAddr(); got != netip.MustParseAddrPort("[2001:db8::2]:3") {
		t.Errorf("after a third setRemote: %v", got)
	}
}
