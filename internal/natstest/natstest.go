// Package natstest runs an embedded NATS server (nats-server/v2) for the
// tests of the cluster and gateway packages: a real server on a loopback
// port, which a test can stop and start again on the same port.
//
// It is for tests only; nothing outside _test.go files imports it.
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server.
type Server struct {
	t     testing.TB
	port  int
	srv   *server.Server
	tweak func(*server.Options)
}

// Start runs a server on a free loopback port and stops it when the test
// ends.
func Start(t testing.TB) *Server { return StartWith(t, nil) }

// StartWith is Start with options of the test's own (TLS, users).
func StartWith(t testing.TB, tweak func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, port: -1, tweak: tweak}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: s.port, NoLog: true, NoSigs: true, ServerName: "natstest"}
	if s.tweak != nil {
		s.tweak(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("natstest: the NATS server did not start")
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// URL returns the server's client URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Stop shuts the server down; its clients see the connection drop.
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// NumSubscriptions returns the subscriptions the server holds.
func (s *Server) NumSubscriptions() uint32 { return s.srv.NumSubscriptions() }
