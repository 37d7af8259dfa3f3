package loop

import (
	"net/netip"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/config"
)

// Reasons a connection failed at the PROXY stage, for Stats.
const (
	proxyUntrusted = iota // a header from an address outside TrustedProxies
	proxyMissing          // required, and the connection did not start with one
	proxyMalformed        // a bad or oversized header
	numProxyErrors
)

var proxyErrorNames = [numProxyErrors]string{"untrusted", "missing", "malformed"}

// trusted reports whether a PROXY header from ip may be believed: the
// peer is one of the configured proxies. With none configured nobody is:
// a forged header would otherwise let any client claim any address.
func (s *Server) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.cfg.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readProxy parses the PROXY header at the start of the stream. The address
// it carries replaces the connection's RemoteAddr for everything after:
// handlers, logs, limits.
func (l *eventLoop) readProxy(c *Conn) gnet.Action {
	s := l.srv
	gc := c.gc()
	max := s.cfg.ProxyMaxBytes
	buf, _ := gc.Peek(min(gc.InboundBuffered(), max))
	switch codec.ProxySignature(buf) {
	case codec.ProxyMaybe:
		return gnet.None
	case codec.ProxyNo:
		if s.cfg.Proxy == config.ProxyRequired {
			l.stats.proxyErrors[proxyMissing].Add(1)
			return gnet.Close
		}
		c.state = stateHandshake // optional: a direct client
		if !l.countClient(c) {
			return gnet.Close
		}
		return l.readHandshake(c)
	}
	if !s.trusted(c.remoteAddr().Addr()) {
		l.stats.proxyErrors[proxyUntrusted].Add(1)
		return gnet.Close
	}
	h, n, err := codec.ParseProxyHeader(buf, max)
	if err != nil {
		l.stats.proxyErrors[proxyMalformed].Add(1)
		return gnet.Close
	}
	if n == 0 {
		return gnet.None
	}
	if !h.Local && h.Source.IsValid() {
		c.setRemote(netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port()))
	}
	_, _ = gc.Discard(n)
	c.state = stateHandshake
	if !l.countClient(c) {
		return gnet.Close // its client has too many handshakes open
	}
	if gc.InboundBuffered() > 0 {
		return l.readHandshake(c)
	}
	return gnet.None
}
