package config

import (
	"net/netip"
	"runtime"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/origin"
)

// Resolved is a Config with its defaults applied and every field checked,
// with the parsed forms of the fields that are text: what package loop
// and package gateway read. Only Resolve makes one, so that neither checks
// a field again.
type Resolved struct {
	Config
	Proxy   ProxyMode       // ProxyProtocol
	Trusted []netip.Prefix  // TrustedProxies
	Origins *origin.Matcher // AllowedOrigins; nil allows every origin
	// Deflate is what the upgrade agrees to for permessage-deflate
	// (Compression, CompressionContext); nil when compression is off.
	Deflate *codec.DeflateConfig
}

// Resolve applies the defaults to c and checks it: the one place of both.
// The error is a *Error naming the first invalid field.
func Resolve(c Config) (*Resolved, error) {
	c.applyDefaults()
	r := &Resolved{Config: c}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// WithDefaults returns c with every zero field set to its default, as
// NewServer uses it, or a *Error naming the first invalid field. It does
// not read files (JWTKeyFile): NewServer does.
func (c Config) WithDefaults() (Config, error) {
	r, err := Resolve(c)
	if err != nil {
		c.applyDefaults()
		return c, err
	}
	return r.Config, nil
}

// applyDefaults sets every zero field of c to the value it stands for.
func (c *Config) applyDefaults() {
	procs := runtime.GOMAXPROCS(0)
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Loops == 0 {
		c.Loops = procs
	}
	if c.Workers == 0 {
		c.Workers = max(256, 64*procs)
	}
	if c.HandshakeWorkers == 0 {
		c.HandshakeWorkers = max(256, 64*procs)
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Compression == "" {
		c.Compression = "on"
	}
	if c.CompressionContext == "" {
		c.CompressionContext = "off"
	}
	if c.CompressionMinSize == 0 {
		c.CompressionMinSize = DefaultCompressionMinSize
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxOutbound == 0 {
		c.MaxOutbound = DefaultMaxOutbound
	}
	if c.MailboxMessages == 0 {
		c.MailboxMessages = DefaultMailboxMessages
	}
	if c.MailboxBytes == 0 {
		c.MailboxBytes = DefaultMailboxBytes
	}
	if c.MaxInbound == 0 && c.MailboxBytes > 0 && c.MaxMessageSize > 0 {
		c.MaxInbound = max(DefaultMaxInbound, 2*(c.MailboxBytes+c.MaxMessageSize))
	}
	if c.MaxMsgBurst == 0 {
		c.MaxMsgBurst = c.MaxMsgRate
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.MaxHandshakesPerIP == 0 {
		c.MaxHandshakesPerIP = DefaultMaxHandshakesPerIP
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.ProxyMaxBytes == 0 {
		c.ProxyMaxBytes = DefaultProxyMaxBytes
	}
	if c.AcceptBurst == 0 && c.AcceptRate > 0 {
		c.AcceptBurst = max(1, int(c.AcceptRate))
	}
	if c.BackendRetries == 0 {
		c.BackendRetries = DefaultBackendRetries
	}
	if c.BackendMaxConns == 0 {
		c.BackendMaxConns = c.Workers + c.HandshakeWorkers + DisconnectSenders
	}
	if len(c.BackendHeaders) == 0 {
		c.BackendHeaders = DefaultBackendHeaders
	}
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.PongTimeout, DefaultPongTimeout)
	def(&c.CloseTimeout, DefaultCloseTimeout)
	def(&c.TimerTick, DefaultTimerTick)
	def(&c.BackendTimeout, DefaultBackendTimeout)
	def(&c.DrainWindow, DefaultDrainWindow)
	def(&c.DrainGrace, DefaultDrainGrace)
	def(&c.ResumeWindow, DefaultResumeWindow)
	if c.ResumeBuffer == 0 {
		c.ResumeBuffer = DefaultResumeBuffer
	}
	if c.ClusterName == "" {
		c.ClusterName = DefaultClusterName
	}
	def(&c.ClusterTimeout, DefaultClusterTimeout)
	def(&c.ClusterHeartbeat, DefaultClusterHeartbeat)
}
