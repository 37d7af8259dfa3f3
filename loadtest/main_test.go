//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testkit"
)

// TestMain lets the test binary act as a --procs child: the parent re-execs
// os.Executable(), which under go test is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if os.Getenv(childBigLineEnv) == "1" {
			writeBigLine(os.Stdout)
		}
		os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	before := goleak.IgnoreCurrent()
	code := m.Run()
	testkit.Cleanup()
	if peers.dir != "" {
		os.RemoveAll(peers.dir)
	}
	// Every loop, runner and --procs reader must be gone once a run has
	// returned. The in-process echo servers' connection goroutines may
	// still be finishing when their test's cleanup returns; so may the
	// HTTP client's idle connections used for /healthz.
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// gw is the gateway binary (testkit.Gateway) and its --help, when the
// module has cmd/gateway.
var gw struct {
	once sync.Once
	bin  string
	help string
	err  error
}

// server is what a scenario test runs against: the real gateway when the
// module has one, else an in-process echo server on gobwas/ws.
type server struct {
	url   string
	kind  string // "wsgate" or "in-process echo"
	help  string // the gateway's --help, to see which bounds it has
	cmd   *exec.Cmd
	drain func() // in-process only: close every connection with 1001
}

func buildGateway(t *testing.T) {
	gw.once.Do(func() {
		if _, err := os.Stat(filepath.Join("..", "cmd", "gateway")); err != nil {
			return
		}
		if gw.bin, gw.err = testkit.Gateway(); gw.err != nil {
			return
		}
		help, _ := exec.Command(gw.bin, "--help").CombinedOutput()
		gw.help = string(help)
	})
	if gw.err != nil {
		t.Fatal(gw.err)
	}
}

func freePort(t *testing.T) int { return testkit.FreePort(t) }

func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	buildGateway(t)
	if gw.bin == "" {
		return startEcho(t)
	}
	port := freePort(t)
	cmd, logs, err := launchGateway(port, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopGateway(cmd)
		if t.Failed() {
			t.Logf("gateway output:\n%s", logs.String())
		}
	})
	return &server{url: fmt.Sprintf("ws://127.0.0.1:%d/ws", port), kind: "wsgate", help: gw.help, cmd: cmd}
}

// launchGateway starts the built gateway on port and waits for its
// listening line (testkit.Launch).
func launchGateway(port int, extra ...string) (*exec.Cmd, *syncBuffer, error) {
	// A short drain, so that SIGTERM in the storm test closes everyone
	// within its run rather than over the default 30s window.
	// No admin server: its default port would be shared by every gateway
	// the tests start.
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--path", "/ws", "--drain-window", "500ms", "--drain-grace", "500ms", "--admin", ""}, extra...)
	logs := &syncBuffer{}
	p, err := testkit.Launch(gw.bin, nil, logs, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("%v\n%s", err, logs.String())
	}
	return p.Cmd, logs, nil
}

// stopGateway asks the gateway to drain (SIGTERM) and kills it if it has not
// exited after 15 s.
func stopGateway(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// syncBuffer is a bytes.Buffer the gateway's output goroutines and the test
// may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startEcho runs an echo server in the test process: one goroutine per
// connection, gobwas/ws's helpers. It echoes each message with its opcode,
// answers pings and closes, and has no bound on what a client leaves
// unread.
func startEcho(t *testing.T) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		c, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			for {
				msg, op, err := wsutil.ReadClientData(c)
				if err != nil {
					return
				}
				if err := wsutil.WriteServerMessage(c, op, msg); err != nil {
					return
				}
			}
		}()
	})}
	go srv.Serve(ln)
	s := &server{url: "ws://" + ln.Addr().String() + "/ws", kind: "in-process echo"}
	s.drain = func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = ws.WriteFrame(c, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "drain")))
			c.Close()
		}
	}
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// runScenario runs the command in this process with --json and returns the
// parsed report; it fails the test unless the exit status is 0.
func runScenario(t *testing.T, args ...string) *Report {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	args = append(args, "--json", path, "--loops", "2")
	var out, errb bytes.Buffer
	if code := realMain(args, &out, &errb); code != 0 {
		t.Fatalf("loadtest %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	t.Logf("loadtest %s\n%s%s", strings.Join(args, " "), out.String(), errb.String())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	return &rep
}
