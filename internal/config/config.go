// Package config declares wsgate's configuration once: the Config struct
// that a library user fills (package gateway names it gateway.Config, an
// alias), whose tags cmd/gateway turns into flags, environment variables
// and YAML keys; the defaults that its zero values stand for; and the one
// validation, Resolve, whose result the engine (package loop) and the
// gateway read directly without checking it again.
//
// It never reads files, the network or the environment: NewServer reads
// the key and credential files the Config names, cmd/gateway the sources
// of the settings.
package config

import (
	"log/slog"
	"time"

	"github.com/wsgate/wsgate/internal/clock"
)

// SlowPolicy says what happens to a message that would take a
// connection's outbound queue over Config.MaxOutbound.
type SlowPolicy uint8

const (
	// SlowClose closes the connection with 1008 "slow consumer".
	SlowClose SlowPolicy = iota
	// SlowDrop drops the message, counts it in Stats.SlowDropped, and keeps
	// the connection.
	SlowDrop
)

// ProxyMode says whether connections start with a PROXY protocol header
// (v1 or v2, as HAProxy's send-proxy and AWS NLB send): Config.ProxyProtocol
// parsed.
type ProxyMode uint8

const (
	// ProxyOff reads no PROXY header.
	ProxyOff ProxyMode = iota
	// ProxyOptional reads a PROXY header if the connection starts with one.
	ProxyOptional
	// ProxyRequired closes connections that do not start with one.
	ProxyRequired
)

// Config configures a Server. The zero value is a working configuration;
// each field's comment gives the value its zero stands for.
//
// The wsgate tags name each field in cmd/gateway's configuration: the YAML
// key, the environment variable (WSGATE_ and the name in upper case) and
// the flag (-- and the name with dashes). Options after the name: size (a
// byte count with units, see ParseSize), secret (redacted when printed),
// zero_off (on the command line 0 or "off" disables; stored negative).
type Config struct {
	// Addr is the TCP address to listen on. If empty, DefaultAddr (":8080").
	Addr string `wsgate:"listen" help:"TCP address for WebSocket clients"`
	// Path is the WebSocket endpoint. If empty, DefaultPath ("/ws").
	Path string `wsgate:"path" help:"WebSocket endpoint path"`
	// Loops is the number of event loops. If zero, runtime.GOMAXPROCS(0).
	Loops int `wsgate:"loops" help:"event loops"`
	// Workers is the size of the handler pool. If zero,
	// max(256, 64*GOMAXPROCS). Handlers that block (a database, a backend
	// call) need more.
	Workers int `wsgate:"workers" help:"handler worker pool size; bounds concurrent backend message hooks"`
	// MaxMessageSize bounds a message, all fragments together; a longer one
	// closes the connection with 1009. It also bounds a message pushed
	// through the admin API or returned by the backend. If zero,
	// DefaultMaxMessageSize (1 MiB).
	MaxMessageSize int `wsgate:"max_message,size" help:"largest message (bytes, or KiB/MiB/GiB); larger closes with 1009"`
	// MaxHeaderBytes bounds the HTTP request header block; a longer one is
	// answered with 431. If zero, DefaultMaxHeaderBytes (8 KiB).
	MaxHeaderBytes int `wsgate:"max_header_bytes,size" help:"largest upgrade request header; larger gets 431"`
	// ReusePort sets SO_REUSEPORT so that several processes can share Addr.
	ReusePort bool `wsgate:"reuse_port" help:"SO_REUSEPORT, for several processes on one port"`
	// DemoPage serves a page at GET / that talks to Path. Off if false.
	DemoPage bool `wsgate:"demo" help:"serve the demo page at GET /"`

	// Compression is "on" (or empty) or "off": whether the upgrade
	// negotiates permessage-deflate (RFC 7692) with clients that offer it.
	// Off declines every offer. See docs/compression.md.
	Compression string `wsgate:"compression" help:"permessage-deflate (RFC 7692) with clients that offer it: on or off"`
	// CompressionContext is "off" (or empty) or "on": context takeover, a
	// window of 4 KiB per direction per connection that agrees, charged to
	// the memory budget. Off: no compression state while a connection is
	// idle.
	CompressionContext string `wsgate:"compression_context" help:"permessage-deflate context takeover (a 4 KiB window per direction per connection): on or off"`
	// CompressionMinSize is the smallest outbound message compressed;
	// smaller ones go plain. If zero, DefaultCompressionMinSize (512).
	CompressionMinSize int `wsgate:"compression_min_size,size" help:"smallest outbound message that is compressed (bytes)"`

	// HandshakeTimeout drops a client that has not completed the upgrade in
	// time. If zero, DefaultHandshakeTimeout (5s).
	HandshakeTimeout time.Duration `wsgate:"handshake_timeout" help:"time to complete the upgrade, backend connect hook included"`
	// PingInterval is how long a connection may be quiet before the server
	// pings it. If zero, DefaultPingInterval (30s); negative disables pings.
	PingInterval time.Duration `wsgate:"ping_interval,zero_off" help:"quiet time before the server pings (0 or off disables)"`
	// PongTimeout is how long a pinged client has to send any frame before
	// it is dropped. If zero, DefaultPongTimeout (10s).
	PongTimeout time.Duration `wsgate:"pong_timeout" help:"time to answer a ping with any frame before the connection is dropped"`
	// IdleTimeout closes (1000, "idle timeout") a connection with no data
	// message in either direction for that long. If zero, off.
	IdleTimeout time.Duration `wsgate:"idle_timeout" help:"close 1000 after no data message either way (0: off)"`
	// MaxLifetime closes (1001) a connection after that long, ±10%, so
	// that clients rebalance across gateway nodes. If zero, off.
	MaxLifetime time.Duration `wsgate:"max_lifetime" help:"close 1001 after this age, ±10%, so clients rebalance (0: off)"`
	// CloseTimeout bounds the wait for the peer's answer to our close
	// frame. If zero, DefaultCloseTimeout (3s).
	CloseTimeout time.Duration `wsgate:"close_timeout" help:"time for the peer to answer our close frame"`
	// TimerTick is the granularity of every deadline above: none fires more
	// than one tick late. If zero, DefaultTimerTick (100ms).
	TimerTick time.Duration `wsgate:"timer_tick" help:"deadline granularity"`

	// MaxOutbound bounds the bytes queued for one connection: messages
	// handed to Send or Publish and not yet written, plus what the socket
	// would not take. A message over the bound is handled by SlowPolicy. If
	// zero, DefaultMaxOutbound (1 MiB).
	MaxOutbound int `wsgate:"max_outbound,size" help:"bytes queued for one client; over it the slow-consumer policy applies"`
	// SlowPolicy applies when a connection's outbound queue is full. The
	// zero value is SlowClose.
	SlowPolicy SlowPolicy `wsgate:"slow_policy" help:"full outbound queue: close (1008 slow consumer) or drop (count and drop)"`
	// MailboxMessages and MailboxBytes bound the messages waiting for a
	// connection's handler: when either is reached, the gateway stops
	// reading from the client, whose TCP sends slow down, until the
	// handler has worked the mailbox down to half. Nothing is dropped and
	// no connection is closed for a burst, whatever its size. If zero,
	// DefaultMailboxMessages (64) and DefaultMailboxBytes (1 MiB).
	MailboxMessages int `wsgate:"mailbox_messages" help:"messages waiting for a client's handler before reading from it pauses"`
	MailboxBytes    int `wsgate:"mailbox_bytes,size" help:"bytes waiting for a client's handler before reading from it pauses"`
	// MaxInbound bounds the bytes one connection holds inbound: messages
	// waiting for its handler plus bytes read and not parsed yet. With
	// reads paused at the mailbox bounds this is not reached; it is the
	// backstop where a pause cannot be applied, and closes with 1008. If
	// zero, the larger of DefaultMaxInbound (4 MiB) and twice
	// MailboxBytes + MaxMessageSize; it must be at least MailboxBytes +
	// MaxMessageSize.
	MaxInbound int `wsgate:"max_inbound,size" help:"bytes one client may have the gateway hold inbound (waiting messages and unparsed input); over it 1008"`
	// MaxMsgRate limits each connection to that many messages per second
	// (token bucket, MaxMsgBurst deep); over it the connection is closed
	// with 1008. If zero, off.
	MaxMsgRate int `wsgate:"max_msg_rate" help:"messages per second per client before 1008 (0: off)"`
	// MaxMsgBurst is the token bucket size for MaxMsgRate. If zero,
	// MaxMsgRate (one second's worth).
	MaxMsgBurst int `wsgate:"max_msg_burst" help:"burst allowed above max_msg_rate (0: one second's worth)"`

	// ProxyProtocol is "off" (or empty), "optional" or "required": whether
	// connections start with a PROXY protocol v1/v2 header, as sent by
	// HAProxy (send-proxy, send-proxy-v2) or AWS NLB. Its address becomes
	// the connection's RemoteAddr everywhere. With "required", a connection
	// without one is closed.
	ProxyProtocol string `wsgate:"proxy_protocol" help:"PROXY protocol v1/v2 header from a load balancer: off, optional or required"`
	// TrustedProxies lists the CIDRs (or single addresses) of the proxies
	// whose PROXY headers are believed; a header from anyone else closes
	// the connection. It must be set when ProxyProtocol is optional or
	// required: an empty list trusts no one, and NewServer refuses it
	// rather than start a server that closes every proxied connection.
	// "0.0.0.0/0" and "::/0" trust every peer, so that any client reaching
	// the port directly can claim any address and dodge the per-address
	// limits; NewServer allows them but logs a warning.
	TrustedProxies []string `wsgate:"trusted_proxies" help:"CIDRs of the load balancers whose PROXY headers are believed; required with proxy_protocol (0.0.0.0/0,::/0 trusts anyone)"`
	// ProxyMaxBytes bounds a PROXY header. If zero, DefaultProxyMaxBytes.
	ProxyMaxBytes int `wsgate:"proxy_max_bytes,size" help:"largest PROXY protocol header"`

	// MaxConns bounds the WebSocket connections of the server; an upgrade
	// over it gets 503 with Retry-After. If zero, unbounded.
	MaxConns int `wsgate:"max_conns" help:"WebSocket connections before upgrades get 503 (0: unbounded)"`
	// MaxConnsPerIP bounds the connections of one client address (after
	// PROXY protocol; IPv6 by IPv6Prefix). If zero, unbounded.
	MaxConnsPerIP int `wsgate:"max_conns_per_ip" help:"connections per client address before 503 (0: unbounded)"`
	// AcceptRate limits upgrades per second (token bucket, AcceptBurst
	// deep); over it, 503 with Retry-After. If zero, unlimited.
	AcceptRate float64 `wsgate:"accept_rate" help:"upgrades per second before 503 (0: unlimited)"`
	// AcceptBurst is the bucket size for AcceptRate. If zero, one second's
	// worth (at least 1).
	AcceptBurst int `wsgate:"accept_burst" help:"burst above accept_rate (0: one second's worth)"`

	// MaxHandshakes bounds the TCP connections that have not completed the
	// upgrade (reading a PROXY header or the request, or waiting for the
	// connect hook); MaxHandshakesPerIP bounds them per client address.
	// Past either, a new TCP connection is closed at once, before anything
	// is allocated for it, and counted (Stats.HandshakeLimitCloses). With
	// the PROXY protocol the client's address is known only after the
	// header: a connection from a trusted proxy counts in the total from
	// the start and against its client's address once the header is read;
	// one from anyone else counts against its own address at once. If
	// zero, DefaultMaxHandshakes (16384) and DefaultMaxHandshakesPerIP
	// (1024); negative means unbounded.
	MaxHandshakes      int `wsgate:"max_handshakes,zero_off" help:"TCP connections not yet upgraded; past it new ones are closed at once (0 or off: unbounded)"`
	MaxHandshakesPerIP int `wsgate:"max_handshakes_per_ip,zero_off" help:"TCP connections not yet upgraded per client address; past it new ones are closed at once (0 or off: unbounded)"`
	// IPv6Prefix is the prefix length by which MaxConnsPerIP and
	// MaxHandshakesPerIP count IPv6 clients: every address of one /64 is
	// one client. IPv4 addresses, IPv4-mapped IPv6 ones included, count
	// whole. If zero, DefaultIPv6Prefix (64); at most 128.
	IPv6Prefix int `wsgate:"ipv6_prefix" help:"IPv6 prefix length that per-address limits count clients by"`

	// DrainWindow is the time over which Drain spreads the closes of open
	// connections. If zero, DefaultDrainWindow (30s).
	DrainWindow time.Duration `wsgate:"drain_window" help:"on SIGTERM or POST /v1/drain, spread the 1001 closes over this long"`
	// DrainGrace is how long after the window Drain waits before closing
	// what remains at once. If zero, DefaultDrainGrace (5s).
	DrainGrace time.Duration `wsgate:"drain_grace" help:"after the drain window, wait this long before closing the rest"`

	// ResumeWindow is how long a resumable session (docs/resume.md) is
	// kept after its connection is lost, for the client to resume it. If
	// zero, DefaultResumeWindow (2m); negative keeps no sessions (the
	// envelope is still spoken, HELLO carries no session).
	ResumeWindow time.Duration `wsgate:"resume_window,zero_off" help:"how long a lost resumable session is kept for its client to resume (0 or off: no sessions)"`
	// ResumeBuffer bounds the unacknowledged message payload bytes a
	// resumable session keeps, charged to the memory budget; past it the
	// oldest are dropped and a resume that needs them is told it missed
	// messages. If zero, DefaultResumeBuffer (64 KiB).
	ResumeBuffer int `wsgate:"resume_buffer,size" help:"unacknowledged bytes a resumable session keeps for a resume"`

	// AllowedOrigins, if not empty, refuses (403) a browser whose Origin
	// header matches none of its entries: an exact origin
	// ("https://app.example.com"), a host of any scheme
	// ("app.example.com"), a wildcard of subdomains ("*.example.com" or
	// "https://*.example.com", not example.com itself), or "*". A request
	// without Origin (not from a browser) is let through: the check stops
	// cross-site WebSocket hijacking, it does not authenticate.
	AllowedOrigins []string `wsgate:"allowed_origins" help:"browser origins allowed to connect: https://app.example.com, app.example.com, *.example.com (empty: any)"`
	// JWTSecret, if set, requires an HS256 JSON Web Token at the upgrade
	// (see JWTKeyFile for where it is read from).
	JWTSecret string `wsgate:"jwt_secret,secret" help:"require an HS256 JWT signed with this secret"`
	// JWTKeyFile, if set, requires a JWT signed with the key in this PEM
	// file: an RSA public key (RS256), an ECDSA P-256 key (ES256) or an
	// Ed25519 key (EdDSA), bare or in a certificate. The token comes from
	// "Authorization: Bearer", the token query parameter, or a
	// Sec-WebSocket-Protocol entry "bearer.TOKEN"; its sub claim becomes
	// Conn.User, exp is required and exp and nbf are enforced. A missing or
	// bad token is refused with 401. JWTSecret and JWTKeyFile exclude each
	// other.
	JWTKeyFile string `wsgate:"jwt_key" help:"require a JWT signed by the RS256, ES256 or EdDSA public key in this PEM file"`
	// JWTIssuer and JWTAudience, if set, must match the token's iss and
	// aud claims.
	JWTIssuer   string `wsgate:"jwt_issuer" help:"required iss claim (empty: not checked)"`
	JWTAudience string `wsgate:"jwt_audience" help:"required aud claim (empty: not checked)"`
	// HandshakeWorkers is the size of the pool that checks JWT signatures
	// and calls the backend's connect hook, off the event loops. An
	// upgrade that finds it full is refused with 503 and Retry-After. If
	// zero, max(256, 64*GOMAXPROCS).
	HandshakeWorkers int `wsgate:"handshake_workers" help:"pool for token checks and connect hooks; full answers 503"`

	// Backend, an http or https URL, makes the backend bridge the
	// application: POST Backend/connect decides each upgrade, each client
	// message is POSTed to Backend/message and a 200 answer is sent back,
	// and Backend/disconnect hears of each closed connection. The Handler
	// passed to NewServer must then be nil. See README.md for the protocol.
	Backend string `wsgate:"backend" help:"backend URL: POST /connect, /message, /disconnect (replaces the built-in app)"`
	// BackendTimeout bounds each backend request, waiting for a connection
	// included; the connect hook gets at most 3/4 of HandshakeTimeout, so
	// that the client hears the answer. If zero, DefaultBackendTimeout (5s).
	BackendTimeout time.Duration `wsgate:"backend_timeout" help:"time limit of each backend request"`
	// BackendFailOpen accepts an upgrade when the connect hook fails
	// (timeout, network error, 5xx) instead of refusing it with 503.
	BackendFailOpen bool `wsgate:"backend_fail_open" help:"accept upgrades when the connect hook fails, instead of 503"`
	// BackendResumeHook posts URL/resumed to the backend each time a
	// resumable session (docs/resume.md) resumes on a new connection. Off
	// if false: a resume then costs the backend nothing.
	BackendResumeHook bool `wsgate:"backend_resume_hook" help:"post /resumed to the backend when a session resumes on a new connection"`
	// BackendMaxConns bounds the TCP connections to the backend. If zero,
	// Workers + HandshakeWorkers + the disconnect senders: as many as
	// there can be requests at once, so none waits for a connection.
	BackendMaxConns int `wsgate:"backend_max_conns" help:"TCP connections to the backend (0: one per possible concurrent request)"`
	// BackendRetries is how many times a failed disconnect hook is
	// retried, with backoff. If zero, DefaultBackendRetries (2); negative
	// means none.
	BackendRetries int `wsgate:"backend_retries,zero_off" help:"retries of a failed disconnect hook (0 or off: none)"`
	// BackendHeaders are the upgrade request headers passed to the connect
	// hook. If empty, DefaultBackendHeaders.
	BackendHeaders []string `wsgate:"backend_headers" help:"request headers passed to the connect hook"`

	// MemoryBudget bounds the memory all connections together hold beyond
	// their fixed state: messages being received, waiting for or held by
	// the handler, queued to be written, output the sockets would not take,
	// input not parsed yet, handshakes. From 90% of it new upgrades get 503
	// and the connections holding the most output for clients that do not
	// read (or the largest fragmented messages) are closed with 1013 until
	// it is down to 80%; at 100% reading pauses and Send and Publish return
	// ErrMemoryBudget. It must be at least 4 × MaxMessageSize. If zero or
	// negative, off (cmd/gateway's default is half the memory of its
	// cgroup, or of the machine).
	MemoryBudget int `wsgate:"memory_budget,size,zero_off" help:"memory all connections may hold beyond their fixed state; from 90% upgrades get 503 and the largest holders are shed (0 or off: none)"`

	// Admin is the address of the admin HTTP server: the push and
	// connection API under /v1/, Prometheus metrics at /metrics, and
	// /debug/pprof/. If empty, there is none.
	Admin string `wsgate:"admin" help:"admin API, /metrics and /debug/pprof/ address (empty: off)"`
	// AdminHosts lists the names (host, or host:port) by which the admin
	// server may be addressed, besides the ones it accepts anyway:
	// localhost and loopback addresses when it listens on loopback, its
	// own address when it listens on one, any IP address when it listens
	// on all. A request with any other Host is refused with 403: a page
	// that rebinds its own DNS name to 127.0.0.1 cannot read the API.
	AdminHosts []string `wsgate:"admin_hosts" help:"host names the admin server answers to, besides localhost and IP addresses"`
	// AdminToken, if set, is required on every admin request as
	// "Authorization: Bearer TOKEN". It must be set when Admin is not a
	// loopback address.
	AdminToken string `wsgate:"admin_token,secret" help:"bearer token for the admin address; required unless it is loopback"`

	// Cluster (docs/cluster.md). With NATS set the server joins the
	// cluster of the gateways that use the same NATS servers and
	// ClusterName: pushes, publishes, broadcasts and the admin API reach
	// connections on every node. If empty, the server is a single node and
	// nothing of the cluster runs.
	NATS []string `wsgate:"nats" help:"NATS server URLs: join the cluster of the gateways using them (empty: a single node)"`
	// NATSCredentials, NATSNKey, NATSUser and NATSPassword, NATSToken
	// authenticate to NATS: a credentials file (user JWT and NKey seed),
	// an NKey seed file, a user and password, a token.
	NATSCredentials string `wsgate:"nats_creds" help:"NATS credentials file (user JWT and NKey seed)"`
	NATSNKey        string `wsgate:"nats_nkey" help:"NATS NKey seed file"`
	NATSUser        string `wsgate:"nats_user" help:"NATS user name (with nats_password)"`
	NATSPassword    string `wsgate:"nats_password,secret" help:"NATS password"`
	NATSToken       string `wsgate:"nats_token,secret" help:"NATS authentication token"`
	// NATSTLSCA is a PEM file of the CAs that sign the NATS servers'
	// certificates; NATSTLSCert and NATSTLSKey a client certificate, for
	// servers that verify clients. Use tls:// URLs (or a server that
	// requires TLS).
	NATSTLSCA   string `wsgate:"nats_tls_ca" help:"PEM file of the CAs of the NATS servers' certificates"`
	NATSTLSCert string `wsgate:"nats_tls_cert" help:"PEM client certificate for NATS (with nats_tls_key)"`
	NATSTLSKey  string `wsgate:"nats_tls_key" help:"PEM private key of nats_tls_cert"`
	// NodeID names this gateway in the cluster: 1 to 64 bytes of A-Z a-z
	// 0-9 _ -. A boot token is added to it, so connection IDs of a
	// restarted node never repeat. If empty, the host name and process ID.
	NodeID string `wsgate:"node_id" help:"this gateway's name in the cluster (default: host name and process id)"`
	// ClusterName separates clusters sharing NATS servers (same rules as
	// NodeID). If empty, DefaultClusterName ("default").
	ClusterName string `wsgate:"cluster_name" help:"the cluster's name: gateways on the same NATS form one cluster per name"`
	// ClusterTimeout bounds a request to another node (a push to one of
	// its connections, say) and the wait for every node's answer. If
	// zero, DefaultClusterTimeout (2s).
	ClusterTimeout time.Duration `wsgate:"cluster_timeout" help:"deadline of a request to another node and of cluster-wide answers"`
	// ClusterHeartbeat is how often a node announces itself; the others
	// forget a node silent for three. If zero, DefaultClusterHeartbeat (1s).
	ClusterHeartbeat time.Duration `wsgate:"cluster_heartbeat" help:"how often a node announces itself; one silent for three is gone"`
	// ClusterReadyCheck makes /readyz answer 503 while NATS is
	// unreachable. If false it answers 200 with a note: a NATS outage then
	// does not take every gateway out of the balancer.
	ClusterReadyCheck bool `wsgate:"cluster_ready_check" help:"/readyz answers 503 while NATS is unreachable (default: 200 with a note)"`

	// Logger receives the server's logs: at debug level one line per
	// connection opened and closed, never one per message. If nil, logs
	// are discarded.
	Logger *slog.Logger `wsgate:"-"`
	// Clock is the time source of the coarse clock (timeouts, pings,
	// lifetimes, pacing) and of Drain's and Shutdown's waits. If nil,
	// the system clock; tests pass a clock.Fake and step it.
	Clock clock.Clock `wsgate:"-"`
}

// Error reports an invalid Config field (gateway.ConfigError).
type Error struct {
	Field string // the Config field, e.g. "MaxMessageSize"
	Msg   string
}

func (e *Error) Error() string { return "gateway: Config." + e.Field + ": " + e.Msg }

func badField(field, msg string) error { return &Error{Field: field, Msg: msg} }
