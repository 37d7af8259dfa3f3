package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/loop"
)

// proxyMode parses Config.ProxyProtocol.
func proxyMode(s string) (loop.ProxyMode, error) {
	switch s {
	case "", "off":
		return loop.ProxyOff, nil
	case "optional":
		return loop.ProxyOptional, nil
	case "required":
		return loop.ProxyRequired, nil
	}
	return 0, fmt.Errorf("gateway: Config.ProxyProtocol %q: want off, optional or required", s)
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
			return nil, fmt.Errorf("gateway: Config.TrustedProxies: %q is not a CIDR or an address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Defaults used for the zero values of Config's fields.
const (
	DefaultAddr             = ":8080"
	DefaultPath             = "/ws"
	DefaultMaxMessageSize   = 1 << 20
	DefaultMaxHeaderBytes   = 8 << 10
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultCloseTimeout     = 3 * time.Second
	DefaultTimerTick        = 100 * time.Millisecond
	DefaultMaxOutbound      = 1 << 20
	DefaultMailboxMessages  = 64
	DefaultMailboxBytes     = 1 << 20
	DefaultProxyMaxBytes    = codec.DefaultProxyMaxBytes
	DefaultDrainWindow      = 30 * time.Second
	DefaultDrainGrace       = 5 * time.Second
)

// SlowPolicy says what happens to a message that would overflow a
// connection's outbound queue.
type SlowPolicy = loop.SlowPolicy

// Slow-consumer policies.
const (
	// SlowClose closes the connection with 1008 "slow consumer".
	SlowClose = loop.SlowClose
	// SlowDrop drops the message, counts it in Stats.SlowDropped, and keeps
	// the connection.
	SlowDrop = loop.SlowDrop
)

// Config configures a Server. The zero value is a working configuration;
// each field's comment gives the value its zero stands for.
type Config struct {
	// Addr is the TCP address to listen on. If empty, DefaultAddr (":8080").
	Addr string
	// Path is the WebSocket endpoint. If empty, DefaultPath ("/ws").
	Path string
	// Loops is the number of event loops. If zero, runtime.GOMAXPROCS(0).
	Loops int
	// Workers is the size of the handler pool. If zero,
	// max(256, 64*GOMAXPROCS). Handlers that block (a database, a backend
	// call) need more.
	Workers int
	// MaxMessageSize bounds a message, all fragments together; a longer one
	// closes the connection with 1009. If zero, DefaultMaxMessageSize (1 MiB).
	MaxMessageSize int
	// MaxHeaderBytes bounds the HTTP request header block; a longer one is
	// answered with 431. If zero, DefaultMaxHeaderBytes (8 KiB).
	MaxHeaderBytes int
	// ReusePort sets SO_REUSEPORT so that several processes can share Addr.
	ReusePort bool
	// DemoPage serves a page at GET / that talks to Path. Off if false.
	DemoPage bool

	// HandshakeTimeout drops a client that has not completed the upgrade in
	// time. If zero, DefaultHandshakeTimeout (5s).
	HandshakeTimeout time.Duration
	// PingInterval is how long a connection may be quiet before the server
	// pings it. If zero, DefaultPingInterval (30s); negative disables pings.
	PingInterval time.Duration
	// PongTimeout is how long a pinged client has to send any frame before
	// it is dropped. If zero, DefaultPongTimeout (10s).
	PongTimeout time.Duration
	// IdleTimeout closes (1000, "idle timeout") a connection with no data
	// message in either direction for that long. If zero, off.
	IdleTimeout time.Duration
	// MaxLifetime closes (1001) a connection after that long, ±10%, so
	// that clients rebalance across gateway nodes. If zero, off.
	MaxLifetime time.Duration
	// CloseTimeout bounds the wait for the peer's answer to our close
	// frame. If zero, DefaultCloseTimeout (3s).
	CloseTimeout time.Duration
	// TimerTick is the granularity of every deadline above: none fires more
	// than one tick late. If zero, DefaultTimerTick (100ms).
	TimerTick time.Duration

	// MaxOutbound bounds the bytes queued for one connection: messages
	// handed to Send or Publish and not yet written, plus what the socket
	// would not take. A message over the bound is handled by SlowPolicy. If
	// zero, DefaultMaxOutbound (1 MiB).
	MaxOutbound int
	// SlowPolicy applies when a connection's outbound queue is full. The
	// zero value is SlowClose.
	SlowPolicy SlowPolicy
	// MailboxMessages and MailboxBytes bound the messages waiting for a
	// connection's handler; a client that outruns its handler is closed
	// with 1008. If zero, DefaultMailboxMessages (64) and
	// DefaultMailboxBytes (1 MiB).
	MailboxMessages int
	MailboxBytes    int
	// MaxMsgRate limits each connection to that many messages per second
	// (token bucket, MaxMsgBurst deep); over it the connection is closed
	// with 1008. If zero, off.
	MaxMsgRate int
	// MaxMsgBurst is the token bucket size for MaxMsgRate. If zero,
	// MaxMsgRate (one second's worth).
	MaxMsgBurst int

	// ProxyProtocol is "off" (or empty), "optional" or "required": whether
	// connections start with a PROXY protocol v1/v2 header, as sent by
	// HAProxy (send-proxy, send-proxy-v2) or AWS NLB. Its address becomes
	// the connection's RemoteAddr everywhere. With "required", a connection
	// without one is closed.
	ProxyProtocol string
	// TrustedProxies lists the CIDRs (or single addresses) of the proxies
	// whose PROXY headers are believed; a header from anyone else closes
	// the connection. If empty, every peer is trusted.
	TrustedProxies []string
	// ProxyMaxBytes bounds a PROXY header. If zero, DefaultProxyMaxBytes.
	ProxyMaxBytes int

	// MaxConns bounds the WebSocket connections of the server; an upgrade
	// over it gets 503 with Retry-After. If zero, unbounded.
	MaxConns int
	// MaxConnsPerIP bounds the connections of one client address (after
	// PROXY protocol). If zero, unbounded.
	MaxConnsPerIP int
	// AcceptRate limits upgrades per second (token bucket, AcceptBurst
	// deep); over it, 503 with Retry-After. If zero, unlimited.
	AcceptRate float64
	// AcceptBurst is the bucket size for AcceptRate. If zero, one second's
	// worth (at least 1).
	AcceptBurst int

	// DrainWindow is the time over which Drain spreads the closes of open
	// connections. If zero, DefaultDrainWindow (30s).
	DrainWindow time.Duration
	// DrainGrace is how long after the window Drain waits before closing
	// what remains at once. If zero, DefaultDrainGrace (5s).
	DrainGrace time.Duration

	// Logger receives the server's logs. If nil, logs are discarded.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default, or an
// error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
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
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
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
	if c.MaxMsgBurst == 0 {
		c.MaxMsgBurst = c.MaxMsgRate
	}
	if c.ProxyMaxBytes == 0 {
		c.ProxyMaxBytes = DefaultProxyMaxBytes
	}
	if c.AcceptBurst == 0 && c.AcceptRate > 0 {
		c.AcceptBurst = max(1, int(c.AcceptRate))
	}
	def(&c.DrainWindow, DefaultDrainWindow)
	def(&c.DrainGrace, DefaultDrainGrace)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.PongTimeout, DefaultPongTimeout)
	def(&c.CloseTimeout, DefaultCloseTimeout)
	def(&c.TimerTick, DefaultTimerTick)
	switch {
	case c.Path[0] != '/':
		return c, fmt.Errorf("gateway: Config.Path %q must start with /", c.Path)
	case c.Loops < 0:
		return c, errors.New("gateway: Config.Loops is negative")
	case c.Workers < 0:
		return c, errors.New("gateway: Config.Workers is negative")
	case c.MaxMessageSize < 0 || c.MaxMessageSize > 1<<30:
		return c, errors.New("gateway: Config.MaxMessageSize must be within 0..1GiB")
	case c.MailboxBytes > 1<<30:
		return c, errors.New("gateway: Config.MailboxBytes must not exceed 1GiB")
	case c.MaxHeaderBytes < 256:
		return c, errors.New("gateway: Config.MaxHeaderBytes must be at least 256")
	case c.MaxOutbound < 0, c.MailboxMessages < 0, c.MailboxBytes < 0, c.MaxMsgRate < 0, c.MaxMsgBurst < 0:
		return c, errors.New("gateway: Config limits must not be negative")
	case c.MaxConns < 0, c.MaxConnsPerIP < 0, c.AcceptRate < 0, c.AcceptBurst < 0:
		return c, errors.New("gateway: Config admission limits must not be negative")
	case c.ProxyMaxBytes < codec.ProxyV1MaxBytes || c.ProxyMaxBytes > codec.ProxyV2MaxBytes:
		return c, fmt.Errorf("gateway: Config.ProxyMaxBytes must be within %d..%d", codec.ProxyV1MaxBytes, codec.ProxyV2MaxBytes)
	case c.SlowPolicy != SlowClose && c.SlowPolicy != SlowDrop:
		return c, errors.New("gateway: Config.SlowPolicy is not SlowClose or SlowDrop")
	case c.HandshakeTimeout < 0, c.PongTimeout < 0, c.CloseTimeout < 0, c.TimerTick < 0,
		c.IdleTimeout < 0, c.MaxLifetime < 0, c.DrainWindow < 0, c.DrainGrace < 0:
		return c, errors.New("gateway: Config durations other than PingInterval must not be negative")
	}
	return c, nil
}
