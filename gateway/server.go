package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"net"

	"github.com/wsgate/wsgate/loop"
)

// Types shared with the engine.
type (
	// Conn is one client connection; its methods are safe from any
	// goroutine.
	Conn = loop.Conn
	// Handler receives each connection's events on the worker pool.
	Handler = loop.Handler
	// HandshakeHook is an optional interface of a Handler that accepts or
	// refuses upgrade requests and picks a subprotocol.
	HandshakeHook = loop.HandshakeHook
	// Request is an upgrade request as a HandshakeHook sees it.
	Request = loop.Request
	// OpCode is a message's opcode: OpText or OpBinary.
	OpCode = loop.OpCode
	// StatusCode is a close status code (RFC 6455 §7.4).
	StatusCode = loop.StatusCode
	// Stats is a snapshot of the server's counters.
	Stats = loop.Stats
	// PendingUpgrade is an upgrade a HandshakeHook deferred with
	// Request.Defer; Accept or Reject completes it from any goroutine.
	PendingUpgrade = loop.PendingUpgrade
	// Accept says how to complete a deferred upgrade.
	Accept = loop.Accept
	// ConnInfo describes a connection for operators.
	ConnInfo = loop.ConnInfo
	// ListOptions selects connections for Server.List.
	ListOptions = loop.ListOptions
)

// Message opcodes.
const (
	OpText   = loop.OpText
	OpBinary = loop.OpBinary
)

// Errors of Conn and Server.
var (
	ErrClosed       = loop.ErrClosed
	ErrServerClosed = loop.ErrServerClosed
	ErrBadCloseCode = loop.ErrBadCloseCode
	ErrSlowConsumer = loop.ErrSlowConsumer
	ErrBadTopic     = loop.ErrBadTopic
	ErrBadCursor    = loop.ErrBadCursor
	ErrDraining     = loop.ErrDraining
)

//go:embed demo.html
var demoPage []byte

// Server is a WebSocket server. Create it with NewServer.
type Server struct {
	cfg Config
	srv *loop.Server
}

// NewServer checks cfg, fills in its defaults and returns a server that
// sends connection events to h.
func NewServer(cfg Config, h Handler) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := loop.Options{
		Addr:            cfg.Addr,
		Path:            cfg.Path,
		Loops:           cfg.Loops,
		Workers:         cfg.Workers,
		MaxMessageSize:  cfg.MaxMessageSize,
		MaxHeaderBytes:  cfg.MaxHeaderBytes,
		ReusePort:       cfg.ReusePort,
		MaxOutbound:     cfg.MaxOutbound,
		SlowPolicy:      cfg.SlowPolicy,
		MailboxMessages: cfg.MailboxMessages,
		MailboxBytes:    cfg.MailboxBytes,
		MaxMsgRate:      cfg.MaxMsgRate,
		MaxMsgBurst:     cfg.MaxMsgBurst,
		TimerTick:       cfg.TimerTick,
		Logger:          cfg.Logger,
		Timeouts: loop.Timeouts{
			Handshake:    cfg.HandshakeTimeout,
			PingInterval: max(cfg.PingInterval, 0),
			PongTimeout:  cfg.PongTimeout,
			Idle:         cfg.IdleTimeout,
			MaxLifetime:  cfg.MaxLifetime,
			Close:        cfg.CloseTimeout,
		},
	}
	if cfg.DemoPage {
		opts.DemoPage = renderDemo(cfg.Path)
	}
	if opts.ProxyMode, err = proxyMode(cfg.ProxyProtocol); err != nil {
		return nil, err
	}
	if opts.TrustedProxies, err = parsePrefixes(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	opts.ProxyMaxBytes = cfg.ProxyMaxBytes
	opts.MaxConns, opts.MaxConnsPerIP = cfg.MaxConns, cfg.MaxConnsPerIP
	opts.AcceptRate, opts.AcceptBurst = cfg.AcceptRate, cfg.AcceptBurst
	opts.DrainWindow, opts.DrainGrace = cfg.DrainWindow, cfg.DrainGrace
	srv, err := loop.NewServer(opts, h)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, srv: srv}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Start listens and serves in the background; it returns once connections
// are accepted, or with the error that prevented it.
func (s *Server) Start() error { return s.srv.Start() }

// ListenAndServe starts the server and blocks until it stops. After
// Shutdown it returns ErrServerClosed.
func (s *Server) ListenAndServe() error {
	if err := s.srv.Start(); err != nil {
		return err
	}
	return s.srv.Wait()
}

// Addr returns the listening address once the server has started.
func (s *Server) Addr() net.Addr { return s.srv.Addr() }

// Shutdown refuses new upgrades (503), closes every connection with 1001
// "going away", waits for them to go or for ctx to end, and stops the
// loops and the worker pool.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// BuffersInUse returns how many pooled buffers are checked out in the
// process (messages being read, queued or handled; frames waiting to be
// written). It returns to its baseline when traffic stops.
func BuffersInUse() int64 { return loop.BuffersInUse() }

// Publish sends a message to every subscriber of topic (see
// Conn.Subscribe), encoding it once, and returns how many subscribers it
// was handed to. Deliveries and slow-consumer drops are counted in Stats.
func (s *Server) Publish(topic string, op OpCode, data []byte) (int, error) {
	return s.srv.Publish(topic, op, data)
}

// Subscribers returns the number of connections subscribed to topic.
func (s *Server) Subscribers(topic string) int { return s.srv.Subscribers(topic) }

// Broadcast sends a message to every open connection and returns how many
// it was handed to.
func (s *Server) Broadcast(op OpCode, data []byte) (int, error) {
	return s.srv.Broadcast(op, data)
}

// Lookup returns the open connection with the given ID, or nil.
func (s *Server) Lookup(id uint64) *Conn { return s.srv.Lookup(id) }

// UserConns appends the open connections of user to dst.
func (s *Server) UserConns(user string, dst []*Conn) []*Conn { return s.srv.UserConns(user, dst) }

// List returns a page of open connections and the cursor of the next page
// ("" after the last).
func (s *Server) List(ctx context.Context, o ListOptions) ([]ConnInfo, string, error) {
	return s.srv.List(ctx, o)
}

// Drain takes the server out of service without a reconnect storm: /readyz
// answers 503 and new upgrades get 503 with Retry-After at once; open
// connections are closed with 1001 "going away; retry-after=N", spread
// evenly with jitter over Config.DrainWindow; after the window and
// Config.DrainGrace the rest are closed at once. It returns when no
// connection is left, or when ctx ends (closing the rest at once). The
// listener stays open until Shutdown.
func (s *Server) Drain(ctx context.Context) error { return s.srv.Drain(ctx) }

// Draining reports whether a drain or a shutdown has started.
func (s *Server) Draining() bool { return s.srv.Draining() }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats { return s.srv.Stats() }

// renderDemo returns the demo page talking to path. json.Marshal escapes
// <, > and &, so the path cannot end the script element.
func renderDemo(path string) []byte {
	js, _ := json.Marshal(path)
	return bytes.Replace(demoPage, []byte("{{WS_PATH}}"), js, 1)
}
