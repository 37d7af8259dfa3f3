package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testkit"
)

// These tests run the real binary, as a user would.

var binary string

func TestMain(m *testing.M) {
	var err error
	if binary, err = testkit.Gateway(); err != nil {
		panic(err)
	}
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

type gatewayProc struct {
	cmd   *exec.Cmd
	addr  string
	logs  chan string
	admin string // the admin address, if it listens
}

// start runs the binary on a free port and waits for its listening line.
func start(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	return startAt(t, "127.0.0.1:0", args...)
}

// startAt runs the binary on addr and waits for its listening line. The
// admin server gets a free port too, unless args say otherwise: tests run
// in parallel with other packages' gateways.
func startAt(t *testing.T, addr string, args ...string) *gatewayProc {
	t.Helper()
	return startEnv(t, nil, append([]string{"--listen", addr, "--admin", "127.0.0.1:0"}, args...)...)
}

// startEnv runs the binary with extra environment variables and waits
// for its listening line (testkit.Launch).
func startEnv(t *testing.T, env []string, args ...string) *gatewayProc {
	t.Helper()
	p, err := testkit.Launch(binary, env, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cmd.Process.Kill(); p.Cmd.Wait() })
	return &gatewayProc{cmd: p.Cmd, addr: p.Addr, logs: p.Logs, admin: p.Admin}
}

func TestEchoApp(t *testing.T) {
	p := start(t)
	c, _, err := gorilla.DefaultDialer.Dial("ws://"+p.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(gorilla.BinaryMessage, []byte{1, 2, 3})
	if typ, msg, err := c.ReadMessage(); err != nil || typ != gorilla.BinaryMessage || string(msg) != "\x01\x02\x03" {
		t.Fatalf("echo: %d %q %v", typ, msg, err)
	}
}

func TestBroadcastApp(t *testing.T) {
	p := start(t, "--app", "broadcast", "--loops", "2")
	var clients []*gorilla.Conn
	for range 3 {
		c, _, err := gorilla.DefaultDialer.Dial("ws://"+p.addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// A broadcast reaches the connections open when it is made; wait
	// until the last one is surely registered by a round trip of its own.
	clients[2].WriteMessage(gorilla.TextMessage, []byte("hello"))
	for _, c := range clients {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hello" {
			t.Fatalf("got %q %v", msg, err)
		}
	}
	clients[0].WriteMessage(gorilla.TextMessage, []byte("from 0"))
	for _, c := range clients {
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "from 0" {
			t.Fatalf("got %q %v", msg, err)
		}
	}
}

// SIGTERM drains: clients get 1001 within the drain window and the process
// exits 0.
// SIGTERM drains: the client gets 1001 with a reconnect hint drawn from 1
// to the window's seconds plus one (loop's drainReason), and the process
// exits 0. When the
// close comes is the in-process drain tests' concern (gateway, on a fake
// clock); the read deadline here only bounds a hung process.
func TestSIGTERM(t *testing.T) {
	p := start(t, "--drain-window", "1s", "--drain-grace", "1s")
	c, _, err := gorilla.DefaultDialer.Dial("ws://"+p.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	ce, ok := err.(*gorilla.CloseError)
	if !ok || ce.Code != gorilla.CloseGoingAway {
		p.cmd.Wait()
		for l := range p.logs {
			t.Log(l)
		}
		t.Fatalf("client saw %v, want 1001", err)
	}
	var hint int
	at := strings.Index(ce.Text, "retry-after=")
	if _, err := fmt.Sscanf(ce.Text[max(at, 0):], "retry-after=%d", &hint); at < 0 || err != nil || hint < 1 || hint > 2 {
		t.Fatalf("close reason %q: want a retry-after hint of 1 or 2 seconds for the 1s window", ce.Text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("gateway did not exit after SIGTERM")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-message", "12parsecs"},
		{"--app", "chat"},
		{"--slow-policy", "maybe"},
		{"--log-level", "loud"},
		{"--path", "ws"},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: exit 0, want failure", args)
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(args[0], "--"), "-", "_")
		if !strings.Contains(string(out), "config: "+name+": ") {
			t.Errorf("%v: message does not name the flag: %s", args, out)
		}
	}
	_ = io.Discard
}
