// Command gateway runs wsgate: a WebSocket gateway on gnet event loops.
//
// With no flags it listens on :8080, echoes every message back on /ws and
// serves a demo page at http://localhost:8080/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// sizeFlag is a flag.Value for byte sizes with units.
type sizeFlag struct{ v *int }

func (f sizeFlag) String() string {
	if f.v == nil {
		return ""
	}
	return fmt.Sprint(*f.v)
}

func (f sizeFlag) Set(s string) error {
	n, err := gateway.ParseSize(s)
	if err != nil {
		return err
	}
	*f.v = n
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg := gateway.Config{
		MaxMessageSize: gateway.DefaultMaxMessageSize,
		MaxHeaderBytes: gateway.DefaultMaxHeaderBytes,
		MaxOutbound:    gateway.DefaultMaxOutbound,
		MailboxBytes:   gateway.DefaultMailboxBytes,
	}
	fs.StringVar(&cfg.Addr, "listen", gateway.DefaultAddr, "TCP address to listen on")
	fs.StringVar(&cfg.Path, "path", gateway.DefaultPath, "WebSocket endpoint path")
	fs.IntVar(&cfg.Loops, "loops", 0, "event loops (0: GOMAXPROCS)")
	fs.IntVar(&cfg.Workers, "workers", 0, "handler worker pool size (0: max(256, 64*GOMAXPROCS))")
	fs.Var(sizeFlag{&cfg.MaxMessageSize}, "max-message", "largest message, e.g. 1MiB, 64KiB or 1048576")
	fs.Var(sizeFlag{&cfg.MaxHeaderBytes}, "max-header-bytes", "largest HTTP request header block, e.g. 8KiB")
	fs.BoolVar(&cfg.ReusePort, "reuse-port", false, "set SO_REUSEPORT so several processes can share the port")
	demo := fs.Bool("demo", true, "serve the demo page at GET /")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", gateway.DefaultHandshakeTimeout, "time allowed to complete the upgrade")
	ping := fs.Duration("ping-interval", gateway.DefaultPingInterval, "quiet time before a ping (0 disables pings)")
	fs.DurationVar(&cfg.PongTimeout, "pong-timeout", gateway.DefaultPongTimeout, "time to answer a ping before the connection is dropped")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "close after this long without a data message (0: off)")
	fs.DurationVar(&cfg.MaxLifetime, "max-lifetime", 0, "close with 1001 after this connection age, ±10% (0: off)")
	fs.DurationVar(&cfg.CloseTimeout, "close-timeout", gateway.DefaultCloseTimeout, "time for the peer to answer our close frame")
	fs.DurationVar(&cfg.TimerTick, "timer-tick", gateway.DefaultTimerTick, "deadline granularity")
	fs.Var(sizeFlag{&cfg.MaxOutbound}, "max-outbound", "bytes queued for one connection before the slow-consumer policy applies, e.g. 1MiB")
	slowPolicy := fs.String("slow-policy", "close", "full outbound queue: close (1008 slow consumer) or drop (count and drop the message)")
	fs.IntVar(&cfg.MailboxMessages, "mailbox-messages", gateway.DefaultMailboxMessages, "messages waiting for a connection's handler before 1008")
	fs.Var(sizeFlag{&cfg.MailboxBytes}, "mailbox-bytes", "bytes waiting for a connection's handler before 1008, e.g. 1MiB")
	fs.IntVar(&cfg.MaxMsgRate, "max-msg-rate", 0, "messages per second per connection before 1008 (0: off)")
	fs.IntVar(&cfg.MaxMsgBurst, "max-msg-burst", 0, "burst allowed above --max-msg-rate (0: one second's worth)")
	fs.StringVar(&cfg.ProxyProtocol, "proxy-protocol", "off", "PROXY protocol v1/v2 header from a load balancer: off, optional or required")
	trusted := fs.String("trusted-proxies", "", "comma-separated CIDRs whose PROXY headers are believed (empty: all)")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "WebSocket connections before upgrades get 503 (0: unbounded)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 0, "connections per client address before 503 (0: unbounded)")
	fs.Float64Var(&cfg.AcceptRate, "accept-rate", 0, "upgrades per second before 503 (0: unlimited)")
	fs.IntVar(&cfg.AcceptBurst, "accept-burst", 0, "burst above --accept-rate (0: one second's worth)")
	fs.DurationVar(&cfg.DrainWindow, "drain-window", gateway.DefaultDrainWindow, "on SIGTERM, spread the 1001 closes over this long")
	fs.DurationVar(&cfg.DrainGrace, "drain-grace", gateway.DefaultDrainGrace, "after the drain window, wait this long before closing the rest")
	app := fs.String("app", "echo", "built-in application: echo (each message back to its sender) or broadcast (each message to every client)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	cfg.Logger = log
	cfg.DemoPage = *demo
	cfg.PingInterval = *ping
	if *trusted != "" {
		cfg.TrustedProxies = strings.Split(*trusted, ",")
	}
	if *ping == 0 {
		cfg.PingInterval = -1 // the flag's 0 means off; Config's 0 means default
	}

	switch *slowPolicy {
	case "close":
		cfg.SlowPolicy = gateway.SlowClose
	case "drop":
		cfg.SlowPolicy = gateway.SlowDrop
	default:
		return fmt.Errorf("--slow-policy %q: want close or drop", *slowPolicy)
	}

	var (
		srv *gateway.Server
		err error
	)
	switch *app {
	case "echo":
		srv, err = gateway.NewServer(cfg, gateway.Echo{})
	case "broadcast":
		b := &gateway.Broadcast{}
		srv, err = gateway.NewServer(cfg, b)
		b.Server = srv
	default:
		return fmt.Errorf("--app %q: want echo or broadcast", *app)
	}
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	eff := srv.Config()
	log.Info("wsgate listening", "addr", srv.Addr().String(), "path", eff.Path, "app", *app, "loops", eff.Loops,
		"workers", eff.Workers, "max_message", eff.MaxMessageSize)
	if eff.DemoPage {
		log.Info("demo page", "url", fmt.Sprintf("http://localhost:%d/", port(srv)))
	}

	// SIGTERM or SIGINT drains: /readyz turns 503, upgrades are refused,
	// and open connections are closed with 1001 over --drain-window. A
	// second signal closes the rest at once.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info("draining", "signal", s.String(), "window", eff.DrainWindow.String(), "conns", srv.Stats().WSConns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		s := <-sig
		log.Info("second signal: closing every connection now", "signal", s.String())
		cancel()
	}()
	if err := srv.Drain(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	shut, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("stopped")
	return nil
}

func port(srv *gateway.Server) int {
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}
