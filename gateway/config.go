package gateway

import "github.com/wsgate/wsgate/internal/config"

// Config configures a Server. The zero value is a working configuration;
// each field's comment gives the value its zero stands for.
//
// It is declared once, in an internal package that the engine reads
// directly; gateway.Config is that type, so composite literals such as
// gateway.Config{Addr: ":8080"} and every field and method work as on a
// type of this package. The wsgate tags name each field in cmd/gateway's
// configuration: the YAML key, the environment variable (WSGATE_ and the
// name in upper case) and the flag (-- and the name with dashes). Options
// after the name: size (a byte count with units, see ParseSize), secret
// (redacted when printed), zero_off (on the command line 0 or "off"
// disables; stored negative).
//
// Config.WithDefaults returns the configuration as NewServer uses it, every
// zero field set to its default, or a *ConfigError naming the first invalid
// field.
type Config = config.Config

// ConfigError reports an invalid Config field: Field is the field's name
// (e.g. "MaxMessageSize"), Msg what is wrong with it.
type ConfigError = config.Error

// SlowPolicy says what happens to a message that would overflow a
// connection's outbound queue.
type SlowPolicy = config.SlowPolicy

// Slow-consumer policies.
const (
	// SlowClose closes the connection with 1008 "slow consumer".
	SlowClose = config.SlowClose
	// SlowDrop drops the message, counts it in Stats.SlowDropped, and keeps
	// the connection.
	SlowDrop = config.SlowDrop
)

// Defaults used for the zero values of Config's fields (see each field).
const (
	DefaultAddr               = config.DefaultAddr
	DefaultPath               = config.DefaultPath
	DefaultMaxMessageSize     = config.DefaultMaxMessageSize
	DefaultCompressionMinSize = config.DefaultCompressionMinSize
	DefaultMaxHeaderBytes     = config.DefaultMaxHeaderBytes
	DefaultHandshakeTimeout   = config.DefaultHandshakeTimeout
	DefaultPingInterval       = config.DefaultPingInterval
	DefaultPongTimeout        = config.DefaultPongTimeout
	DefaultCloseTimeout       = config.DefaultCloseTimeout
	DefaultTimerTick          = config.DefaultTimerTick
	DefaultMaxOutbound        = config.DefaultMaxOutbound
	DefaultMailboxMessages    = config.DefaultMailboxMessages
	DefaultMailboxBytes       = config.DefaultMailboxBytes
	DefaultMaxInbound         = config.DefaultMaxInbound
	DefaultProxyMaxBytes      = config.DefaultProxyMaxBytes
	DefaultDrainWindow        = config.DefaultDrainWindow
	DefaultDrainGrace         = config.DefaultDrainGrace
	DefaultBackendTimeout     = config.DefaultBackendTimeout
	DefaultBackendRetries     = config.DefaultBackendRetries
	DefaultClusterName        = config.DefaultClusterName
	DefaultClusterTimeout     = config.DefaultClusterTimeout
	DefaultClusterHeartbeat   = config.DefaultClusterHeartbeat
	DefaultMaxHandshakes      = config.DefaultMaxHandshakes
	DefaultMaxHandshakesPerIP = config.DefaultMaxHandshakesPerIP
	DefaultIPv6Prefix         = config.DefaultIPv6Prefix
)

// DefaultBackendHeaders are the request headers the backend's connect
// hook receives when Config.BackendHeaders is empty.
var DefaultBackendHeaders = config.DefaultBackendHeaders

func badField(field, msg string) error { return &ConfigError{Field: field, Msg: msg} }
