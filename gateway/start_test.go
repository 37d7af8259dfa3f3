package gateway_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// A Start that fails (its port, or its admin port, is taken) leaves no
// goroutine of the server behind: the worker and handshake pools go too.
func TestFailedStartReleases(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	try := func(cfg gateway.Config) {
		t.Helper()
		srv, err := gateway.NewServer(cfg, gateway.Echo{})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err == nil {
			t.Fatalf("Start on a taken port (%+v) succeeded", cfg.Addr)
		}
	}
	// A first round warms up what stays for the process (the runtime's,
	// the test's own).
	try(gateway.Config{Addr: taken.Addr().String(), Loops: 1})
	base := runtime.NumGoroutine()
	for range 5 {
		try(gateway.Config{Addr: taken.Addr().String(), Loops: 1, JWTSecret: "s"}) // the handshake pool too
		try(gateway.Config{Addr: "127.0.0.1:0", Admin: taken.Addr().String(), Loops: 1})
	}
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > base && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after 10 failed starts, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
