//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The servers of bench/peers (the raw-epoll floor and the echo and
// broadcast servers on gorilla/websocket, gws and nbio), built from their
// own module and run as processes: each must carry the echo and the
// fanout scenarios cleanly, as the comparison relies on, and so must
// wsgate's broadcast app.

var peers struct {
	once sync.Once
	dir  string
	err  error
}

// buildPeers builds every server of bench/peers once per test run (TestMain
// removes the directory). It
// fails, not skips, when they do not build: the comparison needs them.
func buildPeers(t *testing.T) string {
	t.Helper()
	peers.once.Do(func() {
		peers.dir, peers.err = os.MkdirTemp("", "wsgate-peers-")
		if peers.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", peers.dir+"/", "./floor", "./gorilla", "./gws", "./nbio")
		cmd.Dir = filepath.Join("..", "bench", "peers")
		if out, err := cmd.CombinedOutput(); err != nil {
			peers.err = fmt.Errorf("building bench/peers: %v\n%s", err, out)
		}
	})
	if peers.err != nil {
		t.Fatal(peers.err)
	}
	return peers.dir
}

// startPeer runs one of the bench/peers servers on a fresh port.
func startPeer(t *testing.T, name string, extra ...string) string {
	t.Helper()
	dir := buildPeers(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(filepath.Join(dir, name), append([]string{"--listen", addr, "--path", "/ws"}, extra...)...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 200 {
			t.Fatalf("%s did not answer /healthz: %v\n%s", name, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "ws://" + addr + "/ws"
}

func checkFanout(t *testing.T, rep *Report, subs int64) {
	t.Helper()
	checkClean(t, rep)
	f := rep.Fanout
	if f == nil {
		t.Fatal("no fanout section in the report")
	}
	if f.Subscribers != subs || f.Published == 0 || f.Expected != f.Published*subs {
		t.Errorf("fanout %+v: want %d subscribers and published messages", f, subs)
	}
	if f.Lost != 0 || f.Delivered != f.Expected {
		t.Errorf("fanout: delivered %d of %d, lost %d", f.Delivered, f.Expected, f.Lost)
	}
	if rep.LatencyUS.Count != f.Delivered {
		t.Errorf("latency histogram holds %d values for %d deliveries", rep.LatencyUS.Count, f.Delivered)
	}
}

func TestPeers(t *testing.T) {
	for _, name := range []string{"floor", "gorilla", "gws", "nbio"} {
		t.Run(name+"/echo", func(t *testing.T) {
			url := startPeer(t, name)
			rep := runScenario(t, "echo", "--url", url, "--conns", "20", "--inflight", "2", "--size", "1024", "--duration", "1s")
			checkClean(t, rep)
			if rep.Sent == 0 || rep.Sent != rep.Received {
				t.Errorf("sent %d, received %d", rep.Sent, rep.Received)
			}
			if rep.Close.Answered != 20 {
				t.Errorf("close answers %+v, want 20", rep.Close)
			}
		})
		t.Run(name+"/fanout", func(t *testing.T) {
			url := startPeer(t, name, "--broadcast")
			rep := runScenario(t, "fanout", "--url", url, "--conns", "20", "--rate", "100", "--size", "256", "--duration", "1s")
			checkFanout(t, rep, 20)
		})
	}
}

// TestFanoutGateway runs the fanout scenario against cmd/gateway's
// broadcast app, over two --procs children: the publisher is in the first,
// and every connection of both must receive each message.
func TestFanoutGateway(t *testing.T) {
	s := startServer(t, "--app", "broadcast")
	if s.kind != "wsgate" {
		t.Skip("the in-process server echoes; it does not broadcast")
	}
	rep := runScenario(t, "fanout", "--procs", "2", "--url", s.url, "--conns", "30", "--rate", "100", "--size", "256", "--duration", "1s")
	checkFanout(t, rep, 30)
}

// TestFloorSpeaksWebSocket checks the floor with a client nobody here
// wrote (gorilla/websocket): text and binary echo, a ping answered with a
// pong, and the closing handshake echoing the status code.
func TestFloorSpeaksWebSocket(t *testing.T) {
	url := startPeer(t, "floor")
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for _, m := range []struct {
		op   int
		data string
	}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, string(make([]byte, 70000))}} {
		if err := c.WriteMessage(m.op, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		op, got, err := c.ReadMessage()
		if err != nil || op != m.op || string(got) != m.data {
			t.Fatalf("echo of a %d-byte message: op %d, %d bytes, %v", len(m.data), op, len(got), err)
		}
	}
	pong := make(chan string, 1)
	c.SetPongHandler(func(p string) error { pong <- p; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage() // the pong is handled on the way to the close
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Errorf("after our close: %v, want the server's close with 4001", err)
	}
	select {
	case p := <-pong:
		if p != "are you there" {
			t.Errorf("pong payload %q", p)
		}
	default:
		t.Error("no pong before the close")
	}
}
