package config

import (
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/codec"
)

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
	DefaultMaxInbound       = 4 << 20
	DefaultProxyMaxBytes    = codec.DefaultProxyMaxBytes
	DefaultDrainWindow      = 30 * time.Second
	DefaultDrainGrace       = 5 * time.Second
	DefaultResumeWindow     = 2 * time.Minute
	DefaultResumeBuffer     = 64 << 10
	DefaultBackendTimeout   = 5 * time.Second
	DefaultBackendRetries   = 2
	DefaultClusterName      = cluster.DefaultName
	DefaultClusterTimeout   = cluster.DefaultTimeout
	DefaultClusterHeartbeat = cluster.DefaultHeartbeat
)

// Defaults of the bounds on connections that have not completed the
// upgrade, and of the IPv6 prefix that per-address limits count by. A
// carrier-grade NAT puts thousands of phones behind one IPv4 address, and
// after an outage they reconnect together: 1024 upgrades in flight from
// one address leaves such a fleet room (a handshake takes one round trip,
// plus the backend's connect hook), while 3,000 silent connections from
// one address hold at most 1024 slots until the handshake timeout. The
// total bounds what half-open connections can hold: each keeps at most
// MaxHeaderBytes of request (8 KiB by default), so 16384 hold at most 128
// MiB. A /64 is what one IPv6 subscriber is given (RFC 6177), so a client
// cannot dodge per-address limits by changing the low 64 bits.
const (
	DefaultMaxHandshakes      = 16384
	DefaultMaxHandshakesPerIP = 1024
	DefaultIPv6Prefix         = 64
)

// DefaultCompressionMinSize is the default of Config.CompressionMinSize:
// below it the ratio drops while the cost of a compression stays at its
// fixed part (docs/compression.md).
const DefaultCompressionMinSize = 512

// DefaultBackendHeaders are the request headers the backend's connect
// hook receives when Config.BackendHeaders is empty.
var DefaultBackendHeaders = []string{"Authorization", "Cookie", "Origin", "User-Agent", "X-Forwarded-For", "X-Real-Ip"}

// MaxLoops bounds Config.Loops: a connection ID gives its loop 8 bits
// (loop/table.go).
const MaxLoops = 256

// DisconnectSenders is how many goroutines post the backend's disconnect
// hooks; the default of BackendMaxConns counts them.
const DisconnectSenders = 16
