// Command gateway runs wsgate: a WebSocket gateway on gnet event loops.
//
// With no flags it listens on :8080, echoes every message back on /ws,
// serves a demo page at http://localhost:8080/, and the admin API,
// /metrics and /debug/pprof/ on 127.0.0.1:9090. With --backend URL the
// backend's connect, message and disconnect hooks are the application.
//
// Settings come from a YAML file (--config), the environment (WSGATE_*)
// and flags, in increasing precedence; --print-config shows the result.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// newLogger builds the command's logger from log_level and log_format.
func newLogger(st *settings, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(st.LogLevel)); err != nil {
		return nil, fmt.Errorf("config: log_level: %q: want debug, info, warn or error", st.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch st.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("config: log_format: %q: want text or json", st.LogFormat)
}

// newServer builds the server st describes; it checks every setting.
func newServer(st *settings) (*gateway.Server, error) {
	if _, err := st.Config.WithDefaults(); err != nil {
		return nil, fieldError(st, err)
	}
	var (
		srv *gateway.Server
		err error
	)
	switch {
	case st.Backend != "":
		if st.App != "echo" {
			return nil, fmt.Errorf("config: app: %q cannot be combined with backend, which is the application", st.App)
		}
		srv, err = gateway.NewServer(st.Config, nil)
	case st.App == "echo":
		srv, err = gateway.NewServer(st.Config, gateway.Echo{})
	case st.App == "broadcast":
		b := &gateway.Broadcast{}
		srv, err = gateway.NewServer(st.Config, b)
		b.Server = srv
	default:
		return nil, fmt.Errorf("config: app: %q: want echo or broadcast", st.App)
	}
	return srv, fieldError(st, err)
}

func run(args, environ []string, stdout, stderr io.Writer) error {
	st, opts, unknown, err := load(args, environ)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(&st, stderr)
	if err != nil {
		return err
	}
	st.Logger = log
	fitBudget(&st, autoBudget, log)
	if opts.printConfig {
		eff, err := st.Config.WithDefaults()
		if err != nil {
			return fieldError(&st, err)
		}
		if _, err := newServer(&st); err != nil { // the checks that need more than the values
			return err
		}
		st.Config = eff
		out, err := printConfig(&st)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	for _, name := range unknown {
		log.Warn("unknown setting in the environment", "var", name)
	}
	srv, err := newServer(&st)
	if err != nil {
		return err
	}
	// SIGTERM or SIGINT drains: /readyz turns 503, upgrades are refused,
	// and open connections are closed with 1001 over --drain-window. A
	// second signal closes every connection at once with 1001 and exits.
	// The handler is in place before the listening line is logged: a
	// signal right after it (a supervisor, a test) must drain, not kill.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	if err := srv.Start(); err != nil {
		return err
	}
	eff := srv.Config()
	limCtx, stopLimiter := context.WithCancel(context.Background())
	defer stopLimiter()
	if st.GoMemoryLimit {
		startMemoryLimiter(limCtx, srv, eff, log)
	}
	app := st.App
	if eff.Backend != "" {
		app = "backend"
	}
	if a := srv.AdminAddr(); a != nil {
		log.Info("admin listening", "addr", a.String(), "token", eff.AdminToken != "")
	}
	log.Info("wsgate listening", "addr", srv.Addr().String(), "path", eff.Path, "app", app, "loops", eff.Loops,
		"workers", eff.Workers, "max_message", eff.MaxMessageSize, "memory_budget", max(eff.MemoryBudget, 0))
	if eff.Backend != "" {
		log.Info("backend", "url", eff.Backend, "timeout", eff.BackendTimeout.String(), "fail_open", eff.BackendFailOpen)
	}
	if node := srv.NodeName(); node != "" {
		log.Info("cluster", "name", eff.ClusterName, "node", node, "nats", len(eff.NATS))
	}
	if eff.DemoPage {
		log.Info("demo page", "url", fmt.Sprintf("http://localhost:%d/", port(srv)))
	}

	s := <-sig
	log.Info("draining", "signal", s.String(), "window", eff.DrainWindow.String(), "conns", srv.Stats().WSConns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case s := <-sig:
			log.Info("second signal: closing every connection now", "signal", s.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	switch err := srv.Drain(ctx); {
	case errors.Is(err, gateway.ErrDraining):
		// POST /v1/drain started it: wait for it, bounded by its own
		// window and grace.
		waitDrained(ctx, srv, eff.DrainWindow+eff.DrainGrace+eff.CloseTimeout)
	case err != nil && !errors.Is(err, context.Canceled):
		return err
	}
	// After a second signal ctx is done: Shutdown closes what is left with
	// 1001 and does not wait.
	shut, cancelShut := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShut()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped", "events_lost", srv.Stats().EventsLost)
	return nil
}

// waitDrained waits until no WebSocket connection is left and every
// OnClose has run, ctx ends, or limit passes.
func waitDrained(ctx context.Context, srv *gateway.Server, limit time.Duration) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(limit)
	for st := srv.Stats(); st.WSConns > 0 || st.HandlerConns > 0; st = srv.Stats() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		case <-deadline:
			return
		}
	}
}

func port(srv *gateway.Server) int {
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}
