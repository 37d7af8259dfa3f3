package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/panjf2000/ants/v2"

	"github.com/wsgate/wsgate/internal/config"
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
	// ResumeHandler is an optional interface of a Handler told when a
	// resumable session resumes on a new connection (docs/resume.md).
	ResumeHandler = loop.ResumeHandler
	// Request is an upgrade request as a HandshakeHook sees it.
	Request = loop.Request
	// OpCode is a message's opcode: OpText or OpBinary.
	OpCode = loop.OpCode
	// StatusCode is a close status code (RFC 6455 §7.4).
	StatusCode = loop.StatusCode
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

// MemoryKindMessages is the key of Stats.MemoryCharges for complete
// messages waiting for or held by the handler and frames queued to be
// written; the others are assembly, unparsed, outbound and handshake.
const MemoryKindMessages = loop.MemoryKindMessages

// Errors of Conn and Server.
var (
	ErrClosed       = loop.ErrClosed
	ErrServerClosed = loop.ErrServerClosed
	ErrBadCloseCode = loop.ErrBadCloseCode
	ErrSlowConsumer = loop.ErrSlowConsumer
	ErrBadTopic     = loop.ErrBadTopic
	ErrBadCursor    = loop.ErrBadCursor
	ErrDraining     = loop.ErrDraining
	ErrNotOpen      = loop.ErrNotOpen
	// ErrMemoryBudget is returned by Conn.Send, Publish and Broadcast
	// while the memory budget (Config.MemoryBudget) is exhausted.
	ErrMemoryBudget = loop.ErrMemoryBudget
)

// Server is a WebSocket server. Create it with NewServer.
type Server struct {
	cfg     Config
	srv     *loop.Server
	gate    *gate
	hook    *gateHook       // nil without an admission policy
	backend *backend        // nil without Config.Backend
	admin   *admin          // nil without Config.Admin
	cluster *gatewayCluster // nil without Config.NATS (cluster.go)
	ready   readiness       // /readyz's answer (routes.go)
}

// NewServer checks cfg, fills in its defaults and returns a server that
// sends connection events to h. With Config.Backend set, h must be nil:
// the backend bridge is the application.
//
// The gateway's admission policy (AllowedOrigins, the JWT settings,
// Backend's connect hook) runs before h's own HandshakeHook, if h has
// one; a HandshakeHook cannot be combined with the JWT settings or
// Backend, whose checks may complete off the event loop.
func NewServer(cfg Config, h Handler) (*Server, error) {
	rc, err := config.Resolve(cfg)
	if err != nil {
		return nil, err
	}
	if rc.Logger == nil {
		rc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log := rc.Logger
	s := &Server{cfg: rc.Config}
	jwt, err := newJWTVerifier(&s.cfg)
	if err != nil {
		return nil, err
	}
	if err := checkClusterFiles(&s.cfg); err != nil {
		return nil, err
	}
	if cfg.Backend != "" {
		if h != nil {
			return nil, badField("Backend", "the backend bridge is the application: pass a nil Handler")
		}
		s.backend = newBackend(&s.cfg)
		h = bridge{s.backend}
	}
	if h == nil {
		return nil, errors.New("gateway: nil Handler")
	}
	s.gate = &gate{app: h, log: log}
	appHook, _ := h.(HandshakeHook)
	if appHook != nil && (jwt != nil || s.backend != nil) {
		return nil, badField("JWTSecret", "the Handler has its own HandshakeHook, which the JWT settings and Backend cannot be combined with")
	}
	var handler Handler = s.gate
	// In a cluster the policy also fetches sessions from other nodes
	// (resume_cluster.go), on the handshake pool.
	remote := len(s.cfg.NATS) > 0 && s.cfg.ResumeWindow > 0 && appHook == nil
	if rc.Origins != nil || jwt != nil || s.backend != nil || appHook != nil || remote {
		s.hook = &gateHook{gate: s.gate, appHook: appHook, origins: rc.Origins, jwt: jwt, backend: s.backend, s: s}
		if jwt != nil && !jwt.cheap || s.backend != nil || remote {
			s.hook.pool, err = ants.NewPoolWithFuncGeneric(s.cfg.HandshakeWorkers, s.hook.decide,
				ants.WithNonblocking(true),
				ants.WithPanicHandler(func(v any) { log.Error("wsgate: handshake worker panic", "panic", fmt.Sprint(v)) }))
			if err != nil {
				return nil, fmt.Errorf("gateway: handshake pool: %w", err)
			}
		}
		handler = s.hook
	}
	if rc.Proxy != config.ProxyOff && rc.TrustsEveryone() {
		log.Warn("wsgate: trusted_proxies trusts every peer: any client that reaches the port directly can claim any address",
			"trusted_proxies", rc.TrustedProxies)
	}
	s.srv, err = loop.NewServer(rc, handler, s.routes())
	if err != nil {
		s.releasePools()
		return nil, err
	}
	if s.cfg.Admin != "" {
		s.admin = newAdmin(s)
	}
	return s, nil
}

// releasePools stops the goroutines NewServer started, waiting a while
// for connect hooks in flight (each bounded by its own timeout).
func (s *Server) releasePools() {
	if s.hook != nil && s.hook.pool != nil {
		_ = s.hook.pool.ReleaseTimeout(s.cfg.BackendTimeout + time.Second)
	}
}

// Config returns the configuration in effect, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Start listens and serves in the background, the admin server too if
// Config.Admin is set; it returns once connections are accepted, or with
// the error that prevented it. A Server whose Start failed has released
// its goroutines and cannot be started again: make a new one.
func (s *Server) Start() error {
	// A start that fails releases what NewServer started (the pools'
	// goroutines): the Server is not usable after it.
	if s.admin != nil {
		// The admin address first: a port in use fails the start before
		// any client could connect.
		if err := s.admin.start(); err != nil {
			s.srv.Release()
			s.releasePools()
			return err
		}
	}
	if err := s.startCluster(); err != nil {
		if s.admin != nil {
			_ = s.admin.shutdown(context.Background())
		}
		s.srv.Release()
		s.releasePools()
		return err
	}
	if err := s.srv.Start(); err != nil { // it released its own pool
		s.stopCluster(context.Background())
		if s.admin != nil {
			_ = s.admin.shutdown(context.Background())
		}
		s.releasePools()
		return err
	}
	if s.backend != nil {
		s.backend.start()
	}
	return nil
}

// ListenAndServe starts the server and blocks until it stops. After
// Shutdown it returns ErrServerClosed.
func (s *Server) ListenAndServe() error {
	if err := s.Start(); err != nil {
		return err
	}
	return s.srv.Wait()
}

// AdminAddr returns the admin server's address once the server has
// started, or nil without one.
func (s *Server) AdminAddr() net.Addr {
	if s.admin == nil || s.admin.ln == nil {
		return nil
	}
	return s.admin.ln.Addr()
}

// Addr returns the listening address once the server has started.
func (s *Server) Addr() net.Addr { return s.srv.Addr() }

// Shutdown stops accepting connections, closes every connection with 1001
// "going away", waits for them to go or for ctx to end, and stops the
// loops. It waits, until ctx ends, for the handler to run every event still
// queued (each connection's OnClose included; what the deadline cuts off is
// counted in Stats.EventsLost and logged), then stops the worker pools,
// sends the backend's disconnect hooks still queued, until ctx ends, and
// stops the admin server, which serves until then.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.backend != nil {
		s.backend.msgCancel() // replies could not reach the clients anyway
	}
	err := s.srv.Shutdown(ctx)
	s.stopCluster(ctx)
	s.releasePools()
	if s.backend != nil {
		s.backend.shutdown(ctx)
	}
	if s.admin != nil {
		if e := s.admin.shutdown(ctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// BuffersInUse returns how many pooled buffers are checked out in the
// process (messages being read, queued or handled; frames waiting to be
// written). It returns to its baseline when traffic stops.
func BuffersInUse() int64 { return loop.BuffersInUse() }

// Publish sends a message to every subscriber of topic (see
// Conn.Subscribe), encoding it once, and returns how many subscribers it
// was handed to. Deliveries and slow-consumer drops are counted in Stats.
// In a cluster it reaches every node's subscribers, and counts this
// node's (see publish, cluster.go).
// While the memory budget is exhausted it returns ErrMemoryBudget.
func (s *Server) Publish(topic string, op OpCode, data []byte) (int, error) {
	return s.publish(kindTopic, topic, op, data) // cluster.go
}

// Subscribers returns the number of connections subscribed to topic.
func (s *Server) Subscribers(topic string) int { return s.srv.Subscribers(topic) }

// Broadcast sends a message to every open connection and returns how many
// it was handed to.
// In a cluster it reaches every node's connections, and counts this
// node's.
func (s *Server) Broadcast(op OpCode, data []byte) (int, error) {
	return s.publish(kindAll, "", op, data) // cluster.go
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
// Config.DrainGrace the rest get a close frame and are cut. Connections
// that have not upgraded do not hold it open. It returns when no WebSocket
// connection is left and the handler has seen every OnClose, or when ctx
// ends (closing the rest at once with 1001). With Config.ReusePort the
// listener stops accepting at once, so that the kernel hands new
// connections to the other processes on the port; otherwise it stays open
// until Shutdown, answering upgrades and /readyz with 503.
func (s *Server) Drain(ctx context.Context) error { return s.srv.Drain(ctx) }

// Draining reports whether a drain or a shutdown has started.
func (s *Server) Draining() bool { return s.srv.Draining() }
