package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testkit"
)

// Helpers of the end-to-end cluster tests: Debian's nats-server binary,
// gateway processes with a backend that names each connection's user
// and topics from its query string, and their admin APIs.

// natsProc is a nats-server process on a fixed port, so that it can be
// killed and started again where the gateways look for it.
type natsProc struct {
	t    *testing.T
	bin  string
	addr string
	args []string
	cmd  *exec.Cmd
	logs *syncLog
}

// startNATS runs /usr/sbin/nats-server (PATH's) on a free port with args.
func startNATS(t *testing.T, args ...string) *natsProc {
	t.Helper()
	bin := testkit.Need(t, "nats-server", "apt-get install nats-server")
	n := &natsProc{t: t, bin: bin, addr: freePort(t), args: args}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *natsProc) url() string { return "nats://" + n.addr }

func (n *natsProc) start() {
	n.t.Helper()
	host, port, _ := net.SplitHostPort(n.addr)
	n.logs = &syncLog{}
	n.cmd = exec.Command(n.bin, append([]string{"-a", host, "-p", port}, n.args...)...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if i == 200 {
			n.t.Fatalf("nats-server did not listen: %v\n%s", err, n.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server at once (SIGKILL): its clients see the connection
// reset, as in a crash.
func (n *natsProc) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
		n.cmd = nil
	}
}

// queryBackend is a backend whose connect hook takes the user and topics
// from the query (?user=ann&topic=news&topic=sport) and whose message
// hook echoes.
func queryBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/connect":
			var ev struct {
				Query string `json:"query"`
			}
			json.Unmarshal(body, &ev)
			q, _ := url.ParseQuery(ev.Query)
			json.NewEncoder(w).Encode(map[string]any{"user": q.Get("user"), "topics": q["topic"]})
		case "/message":
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// clusterArgs are the flags of a gateway of the test cluster.
func clusterArgs(nats, backend, id string) []string {
	return []string{"--nats", nats, "--node-id", id, "--cluster-name", "e2e", "--cluster-heartbeat", "200ms",
		"--backend", backend, "--ping-interval", "0", "--demo=false"}
}

// api calls a gateway's admin API and decodes the JSON answer.
func api(t *testing.T, p *gatewayProc, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, v
}

// mustAPI is api that fails the test unless the status is want.
func mustAPI(t *testing.T, p *gatewayProc, method, path, body string, want int) map[string]any {
	t.Helper()
	status, v := api(t, p, method, path, body)
	if status != want {
		t.Fatalf("%s %s: %d, want %d: %v", method, path, status, want, v)
	}
	return v
}

func count(v map[string]any, key string) int {
	f, _ := v[key].(float64)
	return int(f)
}

// clusterView is a gateway's GET /v1/cluster.
type clusterView struct {
	Node      string `json:"node"`
	Connected bool   `json:"connected"`
	Nodes     []struct {
		Node        string `json:"node"`
		NodeID      string `json:"node_id"`
		Connections int64  `json:"connections"`
		Draining    bool   `json:"draining"`
	} `json:"nodes"`
	Stats struct {
		Pending int `json:"pending"`
	} `json:"stats"`
}

func viewOf(t *testing.T, p *gatewayProc) clusterView {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/v1/cluster")
	if err != nil {
		return clusterView{}
	}
	defer resp.Body.Close()
	var v clusterView
	json.NewDecoder(resp.Body).Decode(&v)
	return v
}

// waitCluster waits until every gateway is connected, sees n nodes and has
// applied its interest.
func waitCluster(t *testing.T, n int, procs ...*gatewayProc) {
	t.Helper()
	for _, p := range procs {
		until(t, "the cluster to form", func() bool {
			v := viewOf(t, p)
			return v.Connected && len(v.Nodes) == n && v.Stats.Pending == 0
		})
	}
}

// until polls cond, bounded by a count of tries, not a duration to assert.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 600 {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialQuery connects a gorilla client to a gateway with a query.
func dialQuery(t *testing.T, addr, query string) *gorilla.Conn {
	t.Helper()
	c, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/ws?"+query, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// idOf returns the cluster ID of the one connection of user tag.
func idOf(t *testing.T, p *gatewayProc, tag string) string {
	t.Helper()
	v := mustAPI(t, p, "GET", "/v1/connections?user="+tag, "", 200)
	list, _ := v["connections"].([]any)
	if len(list) != 1 {
		t.Fatalf("user %s: %v", tag, v)
	}
	return list[0].(map[string]any)["id"].(string)
}

// read reads one message with a deadline.
func read(t *testing.T, c *gorilla.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(msg)
}
