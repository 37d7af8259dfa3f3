package config

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/origin"
)

// check validates r's Config, defaults filled in, and fills the parsed
// fields.
func (r *Resolved) check() error {
	c := &r.Config
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Loops", c.Loops}, {"Workers", c.Workers}, {"HandshakeWorkers", c.HandshakeWorkers},
		{"MaxMessageSize", c.MaxMessageSize}, {"MaxOutbound", c.MaxOutbound},
		{"MailboxMessages", c.MailboxMessages}, {"MailboxBytes", c.MailboxBytes}, {"MaxInbound", c.MaxInbound},
		{"MaxMsgRate", c.MaxMsgRate}, {"MaxMsgBurst", c.MaxMsgBurst}, {"BackendMaxConns", c.BackendMaxConns},
		{"CompressionMinSize", c.CompressionMinSize}, {"MaxConns", c.MaxConns}, {"MaxConnsPerIP", c.MaxConnsPerIP}, {"AcceptBurst", c.AcceptBurst},
		{"ResumeBuffer", c.ResumeBuffer},
	} {
		if f.v < 0 {
			return badField(f.name, "must not be negative")
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"HandshakeTimeout", c.HandshakeTimeout}, {"PongTimeout", c.PongTimeout}, {"CloseTimeout", c.CloseTimeout},
		{"TimerTick", c.TimerTick}, {"IdleTimeout", c.IdleTimeout}, {"MaxLifetime", c.MaxLifetime},
		{"BackendTimeout", c.BackendTimeout}, {"DrainWindow", c.DrainWindow}, {"DrainGrace", c.DrainGrace},
		{"ClusterTimeout", c.ClusterTimeout}, {"ClusterHeartbeat", c.ClusterHeartbeat},
	} {
		if f.v < 0 {
			return badField(f.name, "must not be negative")
		}
	}
	switch {
	case c.Loops > MaxLoops:
		return badField("Loops", "must not exceed "+strconv.Itoa(MaxLoops))
	case c.Path[0] != '/':
		return badField("Path", "must start with /")
	case c.MaxHeaderBytes < 256 || c.MaxHeaderBytes > maxHeaderBytesLimit:
		return badField("MaxHeaderBytes", "must be within 256..1MiB")
	case c.IPv6Prefix < 0 || c.IPv6Prefix > 128:
		return badField("IPv6Prefix", "must be within 1..128")
	case c.MaxMessageSize > 1<<30:
		return badField("MaxMessageSize", "must not exceed 1GiB")
	case c.MailboxBytes > 1<<30:
		return badField("MailboxBytes", "must not exceed 1GiB")
	case c.MaxInbound < c.MailboxBytes+c.MaxMessageSize:
		return badField("MaxInbound", "must be at least MailboxBytes + MaxMessageSize ("+strconv.Itoa(c.MailboxBytes+c.MaxMessageSize)+")")
	case c.AcceptRate < 0:
		return badField("AcceptRate", "must not be negative")
	case c.ProxyMaxBytes < codec.ProxyV1MaxBytes || c.ProxyMaxBytes > codec.ProxyV2MaxBytes:
		return badField("ProxyMaxBytes", "must be within "+strconv.Itoa(codec.ProxyV1MaxBytes)+".."+strconv.Itoa(codec.ProxyV2MaxBytes))
	case c.SlowPolicy != SlowClose && c.SlowPolicy != SlowDrop:
		return badField("SlowPolicy", "is not SlowClose or SlowDrop")
	case c.JWTSecret != "" && c.JWTKeyFile != "":
		return badField("JWTKeyFile", "JWTSecret and JWTKeyFile exclude each other")
	case c.MemoryBudget > 0 && c.MemoryBudget/4 < c.MaxMessageSize:
		return badField("MemoryBudget", "must be at least 4 × MaxMessageSize ("+strconv.Itoa(4*c.MaxMessageSize)+")")
	}
	var err error
	if r.Deflate, err = deflateConfig(c.Compression, c.CompressionContext); err != nil {
		return err
	}
	if r.Proxy, err = proxyMode(c.ProxyProtocol); err != nil {
		return err
	}
	if r.Trusted, err = parsePrefixes(c.TrustedProxies); err != nil {
		return err
	}
	if r.Proxy != ProxyOff && len(r.Trusted) == 0 {
		// Fail closed: trusting every sender by default would let any
		// client that reaches the port claim any address.
		return badField("TrustedProxies", "required when the PROXY protocol is "+c.ProxyProtocol+
			": list the load balancers' addresses (CIDRs), or 0.0.0.0/0,::/0 to trust every peer")
	}
	for _, h := range c.AdminHosts {
		if h == "" || strings.ContainsAny(h, "/ \r\n") {
			return badField("AdminHosts", "bad host "+strconv.Quote(h))
		}
	}
	if r.Origins, err = origin.NewMatcher(c.AllowedOrigins); err != nil {
		return badField("AllowedOrigins", err.Error())
	}
	if c.Backend != "" {
		u, err := url.Parse(c.Backend)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return badField("Backend", "want an http:// or https:// URL, got "+c.Backend)
		}
	}
	for _, h := range c.BackendHeaders {
		if h == "" || strings.ContainsAny(h, " :\r\n") {
			return badField("BackendHeaders", "bad header name "+h)
		}
	}
	if err := c.checkCluster(); err != nil {
		return err
	}
	if c.Admin != "" {
		host, _, err := net.SplitHostPort(c.Admin)
		if err != nil {
			return badField("Admin", err.Error())
		}
		if c.AdminToken == "" && !loopbackHost(host) {
			return badField("AdminToken", "required when Admin ("+c.Admin+") is not a loopback address")
		}
	}
	return nil
}

// maxHeaderBytesLimit bounds Config.MaxHeaderBytes: browsers send a few
// KiB, and a larger cap only lets each half-open connection hold more.
const maxHeaderBytesLimit = 1 << 20

// TrustsEveryone reports whether a trusted prefix covers a whole address
// family: every peer may claim any address in a PROXY header.
func (r *Resolved) TrustsEveryone() bool {
	for _, p := range r.Trusted {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

// loopbackHost reports whether host (of host:port) only accepts local
// connections. An empty host listens on every interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// deflateConfig parses Config.Compression and Config.CompressionContext.
func deflateConfig(on, ctx string) (*codec.DeflateConfig, error) {
	var d codec.DeflateConfig
	switch ctx {
	case "", "off":
	case "on":
		d.ContextTakeover = true
	default:
		return nil, badField("CompressionContext", "want on or off, got "+ctx)
	}
	switch on {
	case "", "on":
		return &d, nil
	case "off":
		return nil, nil
	}
	return nil, badField("Compression", "want on or off, got "+on)
}

// proxyMode parses Config.ProxyProtocol.
func proxyMode(s string) (ProxyMode, error) {
	switch s {
	case "", "off":
		return ProxyOff, nil
	case "optional":
		return ProxyOptional, nil
	case "required":
		return ProxyRequired, nil
	}
	return 0, badField("ProxyProtocol", "want off, optional or required, got "+s)
}

// parsePrefixes parses Config.TrustedProxies: CIDRs or single addresses.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, badField("TrustedProxies", strconv.Quote(v)+" is not a CIDR or an address")
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
