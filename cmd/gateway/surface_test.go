package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// The README's walkthrough, with the real binary: a backend that names
// the user and answers each message, a client, and a push through the
// admin API to that user.
func TestBackendWalkthrough(t *testing.T) {
	var mu sync.Mutex
	var disconnects []map[string]any
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/connect":
			w.Write([]byte(`{"user": "ann", "topics": ["news"]}`))
		case "/message":
			w.Header().Set("Content-Type", "text/plain")
			w.Write(append([]byte("backend got: "), body...))
		case "/disconnect":
			var ev map[string]any
			json.Unmarshal(body, &ev)
			mu.Lock()
			disconnects = append(disconnects, ev)
			mu.Unlock()
		}
	}))
	defer backend.Close()
	p := start(t, "--backend", backend.URL, "--log-level", "debug")
	if p.admin == "" {
		t.Fatal("no admin address in the log")
	}
	c, _, err := gorilla.DefaultDialer.Dial("ws://"+p.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	c.WriteMessage(gorilla.TextMessage, []byte("hi"))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "backend got: hi" {
		t.Fatalf("message hook: %q %v", msg, err)
	}
	// curl -X POST -H 'Content-Type: text/plain' -d 'hello, tab' localhost:9090/v1/users/ann/messages
	resp, err := http.Post("http://"+p.admin+"/v1/users/ann/messages", "text/plain", strings.NewReader("hello, tab"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	if typ, msg, err := c.ReadMessage(); err != nil || typ != gorilla.TextMessage || string(msg) != "hello, tab" {
		t.Fatalf("push: %d %q %v", typ, msg, err)
	}
	resp, err = http.Post("http://"+p.admin+"/v1/topics/news/messages", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != `{"n":1}` {
		t.Fatalf("topic push: %q %v", msg, err)
	}
	c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, "bye"))
	c.ReadMessage()
	c.Close()
	// One debug line per connect and disconnect, none per message.
	var connects, leaves int
	for connects == 0 || leaves == 0 {
		select {
		case line := <-p.logs:
			switch {
			case strings.Contains(line, "msg=connect "):
				connects++
			case strings.Contains(line, "msg=disconnect "):
				leaves++
				if !strings.Contains(line, "code=1000") || !strings.Contains(line, "user=ann") {
					t.Fatalf("disconnect line: %s", line)
				}
			case strings.Contains(line, "hello, tab"), strings.Contains(line, "backend got"):
				t.Fatalf("a message reached the log: %s", line)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("log lines: %d connects, %d disconnects", connects, leaves)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		n := len(disconnects)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no disconnect hook")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if ev := disconnects[0]; ev["user"] != "ann" || ev["code"] != 1000.0 || ev["reason"] != "bye" {
		t.Fatalf("disconnect hook: %v", ev)
	}
}

// A file, the environment and flags combine; JSON logs; --print-config.
func TestConfigSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wsgate.yaml")
	os.WriteFile(file, []byte("path: /file\nmax_message: 4KiB\nlog_format: json\nadmin_token: from-file\n"), 0o600)
	p := startEnv(t, []string{"WSGATE_CONFIG=" + file, "WSGATE_PATH=/env"},
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--path", "/flag")
	c, _, err := gorilla.DefaultDialer.Dial("ws://"+p.addr+"/flag", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(gorilla.TextMessage, make([]byte, 5000))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); !gorilla.IsCloseError(err, gorilla.CloseMessageTooBig) {
		t.Fatalf("over the file's max_message: %v", err)
	}
	req, _ := http.NewRequest("GET", "http://"+p.admin+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer from-file")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stats with the file's token: %d", resp.StatusCode)
	}

	cmd := exec.Command(binary, "--print-config", "--ping-interval", "0")
	cmd.Env = append(os.Environ(), "WSGATE_CONFIG="+file, "WSGATE_JWT_SECRET=hunter2")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("--print-config: %v", err)
	}
	for _, want := range []string{"\npath: /file\n", "\nmax_message: 4KiB\n", "\nping_interval: \"off\"\n",
		"\njwt_secret: REDACTED\n", "\nadmin_token: REDACTED\n", "\nlog_format: json\n", "# TCP address"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "from-file") {
		t.Errorf("--print-config shows a secret:\n%s", out)
	}
}
