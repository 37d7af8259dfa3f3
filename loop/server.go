package loop

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/ants/v2"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/clock"
	"github.com/wsgate/wsgate/internal/config"
)

// Handler receives a connection's events. Its methods run on the worker
// pool, never on an event loop, so they may block (unless the handler
// declares itself LoopSafe, inline.go); for each connection they run one
// at a time and in order: OnOpen, then each message, then OnClose.
type Handler interface {
	OnOpen(c *Conn)
	// OnMessage receives one complete message. data is valid until
	// OnMessage returns: copy it to keep it.
	OnMessage(c *Conn, op OpCode, data []byte)
	// OnClose reports the end of the connection. err is a *CloseError
	// with the close code (1006 if the connection ended without one).
	OnClose(c *Conn, err error)
}

// HandshakeHook is an optional interface of a Handler: OnHandshake decides
// on an upgrade request before the 101 response. It runs on the event loop
// and must not block. Returning a *HandshakeError (refuse.go) refuses the
// request with its status, reason and header fields; any other error
// refuses it with 403.
type HandshakeHook interface {
	OnHandshake(r *Request) error
}

// Server runs the event loops and the worker pool. Its state comes in
// parts a reader can take one at a time, each declared in the file that
// owns it, with who may touch which field (loop/OWNERSHIP.md has the whole
// map):
//
//   - lifecycle (here): the gnet engine, Start, Wait, Shutdown;
//   - drainState (drain.go): taking the server out of service;
//   - dispatcher (dispatch.go): the Handler and the worker pool its events run on;
//   - loopRegistry (eventloop.go): wsgate's state of each gnet loop;
//   - timebase (clock.go): the coarse clock, its ticker and the jitter source;
//   - endpoint (handshake.go): what a request is answered with;
//   - the product's registries below, each its own type in its own file.
//
// cfg and log are set by NewServer and read-only after.
type Server struct {
	cfg *config.Resolved
	log *slog.Logger

	lifecycle
	drainState
	dispatcher
	loopRegistry
	timebase
	endpoint

	counters  counters        // events off the loops (stats.go)
	topics    topicRegistry   // topics.go
	users     userIndex       // users.go
	admission admission       // admission.go
	mem       *memBudget      // budget.go; nil without Config.MemoryBudget
	sessions  sessionRegistry // resumable sessions (session.go)
	// sessionPrefix starts every session token (the node's, in a
	// cluster: session_cluster.go).
	sessionPrefix string
	cluster       clusterHooks // observer.go
	pace          paceState    // pacing.go

	// noPause makes every pause of reads fail, as where the poller cannot
	// pause (tests of the MaxInbound backstop, inbound.go).
	noPause bool
}

// lifecycle is the server's run state. eng and started are set by OnBoot
// (handler.go) on gnet's goroutine before Start reads them; addr is set by
// Start and read-only after; runErr is written by the goroutine running
// gnet.Run before it closes done, and read only after done; stopped is an
// atomic latch of Shutdown.
type lifecycle struct {
	eng     gnet.Engine
	addr    net.Addr
	started chan struct{} // closed by OnBoot
	done    chan struct{} // closed when gnet.Run returns
	runErr  error
	stopped atomic.Bool
}

// NewServer creates a server from a resolved configuration (its defaults
// applied and checked, config.Resolve), sending connection events to h
// and answering plain GET requests by routes; Start runs it.
func NewServer(cfg *config.Resolved, h Handler, routes []Route) (*Server, error) {
	if cfg == nil || h == nil {
		return nil, errors.New("loop: NewServer needs a resolved Config and a Handler")
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Logger,
		lifecycle: lifecycle{
			started: make(chan struct{}),
			done:    make(chan struct{}),
		},
		dispatcher: dispatcher{handler: h},
		timebase: timebase{
			tickStop: make(chan struct{}),
			tickDone: make(chan struct{}),
			rng:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		},
		endpoint: endpoint{
			wsPath:    []byte(cfg.Path),
			routes:    newRouteTable(routes),
			pingFrame: codec.AppendFrame(nil, ws.OpPing, true, nil),
		},
	}
	if s.clk = cfg.Clock; s.clk == nil {
		s.clk = clock.Real
	}
	if cfg.MemoryBudget > 0 {
		s.mem = newMemBudget(int64(cfg.MemoryBudget), cfg.Loops)
	}
	s.users.seed = maphash.MakeSeed()
	s.admission.seed = maphash.MakeSeed()
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if hook, ok := h.(HandshakeHook); ok {
		s.hook = hook
	}
	s.inline = loopSafe(h)
	pool, err := ants.NewPoolWithFuncGeneric(cfg.Workers, s.work,
		ants.WithNonblocking(true),
		ants.WithPanicHandler(s.workerPanic),
		ants.WithLogger(antsLogger{s.log}))
	if err != nil {
		return nil, fmt.Errorf("loop: worker pool: %w", err)
	}
	s.pool = pool
	return s, nil
}

// Release stops the worker pool NewServer started, for a server that is
// not started (Start releases it itself when it fails; Shutdown, after a
// start). It waits a second at most for handlers still running.
func (s *Server) Release() {
	_ = s.pool.ReleaseTimeout(time.Second)
}

// Start listens and runs the event loops in the background. It returns
// once the server accepts connections, or with the error that stopped it.
func (s *Server) Start() error {
	// The coarse clock starts at one second, never 0, so that 0 can mean
	// "unset" in the connection stamps.
	s.epoch = s.clk.Now().Add(-time.Second)
	s.coarse.Store(int64(time.Second))
	opts := []gnet.Option{
		gnet.WithNumEventLoop(s.cfg.Loops),
		gnet.WithMulticore(s.cfg.Loops > 1),
		gnet.WithReusePort(s.cfg.ReusePort),
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithLogger(gnetLogger{s.log}),
	}
	go func() {
		defer close(s.done)
		s.runErr = gnet.Run(&gnetHandler{s: s}, "tcp://"+s.cfg.Addr, opts...)
	}()
	select {
	case <-s.started:
	case <-s.done:
		if s.runErr == nil {
			s.runErr = ErrServerClosed
		}
		s.Release()
		return s.runErr
	}
	if fd, err := s.eng.Dup(); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			s.addr = sockaddrToTCP(sa)
		}
		_ = unix.Close(fd)
	}
	go s.ticker()
	return nil
}

// Wait blocks until the server has stopped.
func (s *Server) Wait() error {
	<-s.done
	if s.runErr != nil {
		return s.runErr
	}
	return ErrServerClosed
}

// Addr returns the address the server listens on, once Start returned.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops accepting, closes every open connection with 1001 "going
// away", waits until they are gone or ctx ends, then stops the loops. It
// then waits, bounded by ctx, until the handler has run every event still
// queued, OnClose of every connection included, retrying those that wait
// for a free worker; what cannot run by then is counted (Stats.EventsLost)
// and logged. New upgrades are refused with 503 from the start.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stopped.Swap(true) {
		<-s.done
		return ErrServerClosed
	}
	s.draining.Store(true)
	// New connections would keep the wait below from ending.
	s.stopAccepting()
	for _, l := range s.eventLoops() {
		l.enqueue(command{kind: cmdCloseAll, code: 1001, reason: "server shutting down"})
	}
	var err error
	poll := time.NewTicker(5 * time.Millisecond)
	for s.ConnsOpen() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-poll.C:
			continue
		}
		break
	}
	poll.Stop()
	// The sessions these closes suspended end now, their handlers told
	// (session_life.go), before the loops stop.
	s.endSessions()
	s.onEveryLoop(time.Second, func(*eventLoop) {})
	close(s.tickStop)
	<-s.tickDone
	// Engine.Stop polls every 500 ms for the loops to end; with a context
	// already cancelled it only starts the shutdown, and done tells when
	// gnet.Run has returned.
	stopCtx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.eng.Stop(stopCtx)
	<-s.done
	for _, l := range s.eventLoops() {
		l.shutdown()
	}
	if e := s.flushEvents(ctx); e != nil && err == nil {
		err = e
	}
	// Handlers still running finish on their own; Release waits for the
	// pool's workers so that none outlives the server.
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(dl), 50*time.Millisecond))
	}
	if e := s.pool.ReleaseTimeout(wait); e != nil && err == nil {
		err = e
	}
	for _, l := range s.eventLoops() {
		l.closeWaker()
	}
	return err
}

// flushEvents runs once the loops have stopped: it hands the connections
// on the loops' retry lists to workers as they free up (the loops, which
// did that, are gone; their lists are this goroutine's now), until every
// OnClose has run or ctx ends. What is left then is dropped, counted and
// logged.
func (s *Server) flushEvents(ctx context.Context) error {
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		waiting := false
		for _, l := range s.eventLoops() {
			if len(l.retry) > 0 {
				l.retryDispatch()
				waiting = waiting || len(l.retry) > 0
			}
		}
		if !waiting && s.handlerConns.Load() == 0 {
			return nil
		}
		select {
		case <-poll.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	var lost int64
	for _, l := range s.eventLoops() {
		for _, c := range l.retry {
			c.mu.Lock()
			if c.mflags&mOpen != 0 {
				lost++
			}
			if d := c.data.Load(); d != nil {
				for i := int(d.mhead); i < len(d.mailbox); i++ {
					s.putHandled(c, d.mailbox[i].buf)
					lost++
				}
				clear(d.mailbox)
				d.mailbox, d.mhead, d.mbytes = nil, 0, 0
			}
			c.mflags &^= mWaiting | mOpen
			c.mu.Unlock()
		}
		clear(l.retry)
		l.retry = l.retry[:0]
	}
	s.counters.eventsLost.Add(lost)
	s.log.Error("wsgate: shutdown deadline: handler events never ran", "events", lost,
		"connections_without_onclose", s.handlerConns.Load())
	return ctx.Err()
}

// eventLoops returns the loops that have seen a connection.
func (s *Server) eventLoops() []*eventLoop {
	if p := s.loopList.Load(); p != nil {
		return *p
	}
	return nil
}

// loopOf returns wsgate's state for gnet loop el, creating it on first use.
// It runs on el.
func (s *Server) loopOf(el gnet.EventLoop) *eventLoop {
	if v, ok := s.loops.Load(el); ok {
		return v.(*eventLoop)
	}
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if v, ok := s.loops.Load(el); ok {
		return v.(*eventLoop)
	}
	l := newEventLoop(s, el)
	l.idx = len(s.eventLoops())
	l.budget.shedFn = l.shedRound
	if err := l.startWaker(); err != nil {
		s.log.Warn("wsgate: loop waker unavailable; falling back to gnet Execute", "err", err)
	}
	s.loops.Store(el, l)
	list := append(append([]*eventLoop(nil), s.eventLoops()...), l)
	s.loopList.Store(&list)
	return l
}

func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	}
	return nil
}
