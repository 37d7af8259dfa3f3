package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testkit"
)

// HAProxy in TCP mode, with the shipped example configuration
// (docs/deploy/haproxy.cfg), in front of two gateway processes: a client
// connecting through HAProxy from 127.0.0.2 is seen by the gateway as
// 127.0.0.2, with its own port, over send-proxy-v2 and send-proxy (v1).
// The gateways trust only HAProxy's address (--trusted-proxies is
// required with --proxy-protocol).
func TestBehindHAProxy(t *testing.T) {
	haproxy := testkit.Need(t, "haproxy", "apt-get install haproxy")
	example, err := os.ReadFile("../../docs/deploy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"send-proxy-v2", "send-proxy"} {
		t.Run(mode, func(t *testing.T) {
			gws := []*gatewayProc{
				start(t, "--proxy-protocol", "required", "--trusted-proxies", "127.0.0.1/32"),
				start(t, "--proxy-protocol", "required", "--trusted-proxies", "127.0.0.1/32"),
			}
			front := freePort(t)
			cfg := strings.NewReplacer(
				"127.0.0.1:8080", front,
				"127.0.0.1:8081", gws[0].addr,
				"127.0.0.1:8082", gws[1].addr,
				// HAProxy refuses to start if it cannot raise its
				// descriptor limit to fit maxconn; this machine allows
				// 20,000.
				"maxconn 100000", "maxconn 4000",
			).Replace(string(example))
			if mode == "send-proxy" {
				cfg = strings.ReplaceAll(cfg, "send-proxy-v2", "send-proxy")
			}
			file := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			hp := exec.Command(haproxy, "-db", "-f", file)
			var logs syncLog
			hp.Stdout, hp.Stderr = &logs, &logs
			if err := hp.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })

			// Through HAProxy from 127.0.0.2, once its health checks
			// (GET /readyz with a PROXY LOCAL header) have both gateways up.
			d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
			var conn net.Conn
			for i := 0; ; i++ {
				c, _, err := wsDialWith(d, front)
				if err == nil {
					conn = c
					break
				}
				if i == 100 {
					t.Fatalf("no upgrade through HAProxy: %v\n%s", err, logs.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			defer conn.Close()
			client := conn.LocalAddr().String()
			// The gateway lists a connection once its loop has marked it
			// open, just after writing the 101: on a busy machine the
			// client can read the 101 first, so look again a few times.
			seen := 0
			for try := 0; seen == 0 && try < 50; try++ {
				if try > 0 {
					time.Sleep(100 * time.Millisecond)
				}
				for _, gw := range gws {
					for _, remote := range remotes(t, gw) {
						if remote == client {
							seen++
						}
						if !strings.HasPrefix(remote, "127.0.0.2:") {
							t.Errorf("a gateway sees a client at %s; every client here comes from 127.0.0.2", remote)
						}
					}
				}
			}
			if seen != 1 {
				t.Fatalf("client %s seen %d times by the gateways, want once\n%s", client, seen, logs.String())
			}
			// The shipped health check passes: give HAProxy time for a
			// check or two of each gateway (inter 1s), then no server
			// may have gone down. (HAProxy checks in HTTP/1.0 unless told
			// otherwise, which the gateway answers with 400.)
			time.Sleep(2500 * time.Millisecond)
			if strings.Contains(logs.String(), "is DOWN") {
				t.Fatalf("HAProxy marked a gateway down:\n%s", logs.String())
			}
		})
	}
}

// The PROXY protocol without --trusted-proxies refuses to start, naming
// the setting: trusting every sender by default would let any client that
// reaches the port claim any address. An explicit 0.0.0.0/0,::/0 starts,
// with a warning.
func TestProxyProtocolNeedsTrustedProxies(t *testing.T) {
	for _, mode := range []string{"optional", "required"} {
		out, err := exec.Command(binary, "--listen", "127.0.0.1:0", "--admin", "", "--proxy-protocol", mode).CombinedOutput()
		if err == nil {
			t.Fatalf("--proxy-protocol %s without --trusted-proxies started", mode)
		}
		if !strings.Contains(string(out), "config: trusted_proxies: required") {
			t.Fatalf("--proxy-protocol %s: message does not name trusted_proxies: %s", mode, out)
		}
	}
	p := start(t, "--proxy-protocol", "required", "--trusted-proxies", "0.0.0.0/0,::/0")
	for {
		select {
		case line, ok := <-p.logs:
			if !ok {
				t.Fatal("no warning about trusting every peer")
			}
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "trusts every peer") {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no warning about trusting every peer")
		}
	}
}

// remotes lists the client addresses a gateway's admin API reports.
func remotes(t *testing.T, gw *gatewayProc) []string {
	t.Helper()
	resp, err := http.Get("http://" + gw.admin + "/v1/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Connections []struct {
			RemoteAddr string `json:"remote_addr"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range page.Connections {
		out = append(out, c.RemoteAddr)
	}
	return out
}

// freePort returns a free loopback address.
func freePort(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
}

// syncLog collects a child's output for failure messages.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
