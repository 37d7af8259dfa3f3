// Package testkit is what the tests of several packages share: a program
// a test needs (that fails under CI rather than skip), a free port, the
// gateway binary built once per test process, and starting it and waiting
// until it is ready (Launch: its listening line); its subpackage raw is the
// raw WebSocket client. Only _test.go files import them.
//
// testkit never sleeps for a fixed time to let something happen: it waits
// for an event, bounded.
package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (.ci/run exports CI=true),
// where every dependency is installed and a missing one is a failure.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing fails t under CI and skips it otherwise, saying what is
// missing and how to install it.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing; .ci/run installs it (%s)", what, install)
	}
	t.Skipf("%s is missing (%s)", what, install)
}

// Need returns the path of program name (looked up in PATH, or a path),
// or calls Missing.
func Need(t testing.TB, name, install string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			Missing(t, name, install)
		}
		return name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, install)
	}
	return p
}

// FreePort returns a loopback port the kernel just handed out and took
// back, for a program that must be told its port.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Root returns the module's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var gateway struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Gateway returns the path of the gateway binary (cmd/gateway), built
// once per test process; Cleanup removes it.
func Gateway() (string, error) {
	gateway.once.Do(func() {
		gateway.dir, gateway.err = os.MkdirTemp("", "wsgate-bin-")
		if gateway.err != nil {
			return
		}
		gateway.bin = filepath.Join(gateway.dir, "wsgate")
		cmd := exec.Command("go", "build", "-o", gateway.bin, "./cmd/gateway")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			gateway.err = fmt.Errorf("go build ./cmd/gateway: %v\n%s", err, out)
		}
	})
	return gateway.bin, gateway.err
}

// Cleanup removes what Gateway built; TestMain calls it after m.Run.
func Cleanup() {
	if gateway.dir != "" {
		os.RemoveAll(gateway.dir)
	}
}
