package loop

import (
	"net/netip"
	"testing"
	"time"
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
		// The kind shares the flags word: neither may change the other.
		const others = fUpgraded | fClosing | fGone | fDiscard | fDraining | fInPaused | fPinged
		c.flags.set(others)
		c.setRemote(want)
		if got := c.remoteAddr(); got != want {
			t.Errorf("%q: remoteAddr = %v, want %v", s, got, want)
		}
		if got := c.flags.v.Load() &^ (3 << addrShift); got != others {
			t.Errorf("%q: flags %#x after setRemote, want %#x", s, got, others)
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

// The time of an unanswered ping is kept in lastRead (pinged): pingedAt
// gives it back exactly, a frame read in the tick of the ping or later
// answers it, and the flag leaves the rest of the flags word alone.
func TestPingedAt(t *testing.T) {
	const interval = 30 * time.Second
	c := new(Conn)
	c.flags.set(fUpgraded)
	c.heard(5)
	if _, ok := c.pingedAt(interval); ok {
		t.Fatal("a ping reported before any was sent")
	}
	now := 5 + int64(interval) + 7
	c.pinged(now, interval)
	if at, ok := c.pingedAt(interval); !ok || at != now {
		t.Fatalf("pingedAt = %d, %v; want %d, true", at, ok, now)
	}
	if !c.flags.has(fUpgraded) {
		t.Fatal("pinged cleared another flag")
	}
	c.heard(now)
	if at, ok := c.pingedAt(interval); ok || c.lastRead != now {
		t.Fatalf("after a frame: pingedAt = %d, %v, lastRead %d; want none, %d", at, ok, c.lastRead, now)
	}
	if !c.flags.has(fUpgraded) {
		t.Fatal("heard cleared another flag")
	}
}
