package gateway_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// The admin API refuses what a browser page could send it: a Host that is
// not the admin server's (DNS rebinding), a request marked cross-site, and
// a state-changing request with an Origin. Through the real admin
// listener, on loopback without a token, as cmd/gateway runs it.

// adminRequest sends one request to the admin listener with the given
// Host and headers, and returns the status and the decoded JSON error.
func adminRequest(t *testing.T, srv *gateway.Server, method, path, host string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.AdminAddr().String()+path, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Content-Type", "text/plain") // a "simple" request: no preflight
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode == http.StatusForbidden {
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s: 403 without a JSON error: %q", method, path, body)
		}
	}
	return resp.StatusCode, e.Error
}

func TestAdminRefusesBrowsers(t *testing.T) {
	srv := startServer(t, gateway.Config{Admin: "127.0.0.1:0", AdminHosts: []string{"gw.internal", "ops.example:7000"}}, gateway.Echo{})
	port := strconv.Itoa(srv.AdminAddr().(*net.TCPAddr).Port)

	for _, tc := range []struct {
		name   string
		method string
		path   string
		host   string
		hdr    map[string]string
		want   int
	}{
		{"cross-site drain", "POST", "/v1/drain", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"drain with Origin null", "POST", "/v1/drain", "", map[string]string{"Origin": "null"}, 403},
		{"drain marked cross-site", "POST", "/v1/drain", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"drain marked same-site", "POST", "/v1/drain", "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"close with Origin", "DELETE", "/v1/connections/1", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"read marked cross-site", "GET", "/v1/stats", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"rebound name", "GET", "/v1/connections", "evil.example:" + port, nil, 403},
		{"rebound name, drain", "POST", "/v1/drain", "evil.example:" + port, nil, 403},
		{"rebound name, metrics", "GET", "/metrics", "evil.example", nil, 403},
		{"other IP", "GET", "/v1/stats", "10.1.2.3:" + port, nil, 403},
		{"configured name, wrong port", "GET", "/v1/stats", "ops.example:7001", nil, 403},
		{"localhost", "GET", "/v1/stats", "localhost:" + port, nil, 200},
		{"127.0.0.1", "GET", "/v1/stats", "127.0.0.1:" + port, nil, 200},
		{"::1", "GET", "/v1/stats", "[::1]:" + port, nil, 200},
		{"another port (a port forward)", "GET", "/v1/stats", "localhost:19090", nil, 200},
		{"configured name", "GET", "/v1/stats", "GW.internal:" + port, nil, 200},
		{"configured name and port", "GET", "/v1/stats", "ops.example:7000", nil, 200},
		{"same-origin read with Origin", "GET", "/v1/stats", "", map[string]string{"Origin": "http://127.0.0.1:" + port, "Sec-Fetch-Site": "same-origin"}, 200},
		{"push typed in the address bar", "POST", "/v1/topics/t/messages", "", map[string]string{"Sec-Fetch-Site": "none"}, 202},
	} {
		if st, msg := adminRequest(t, srv, tc.method, tc.path, tc.host, tc.hdr); st != tc.want {
			t.Errorf("%s: %s %s Host %q: status %d (%s), want %d", tc.name, tc.method, tc.path, tc.host, st, msg, tc.want)
		}
	}
	if srv.Draining() {
		t.Fatal("a refused request drained the server")
	}
	// The WebSocket side still takes upgrades.
	c := mustDial(t, wsURL(srv), nil)
	c.Close()

	// A shell still works: curl if there is one, else net/http, with
	// neither an Origin nor fetch metadata.
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
			"http://"+srv.AdminAddr().String()+"/v1/drain").CombinedOutput()
		if err != nil || string(out) != "202" {
			t.Fatalf("curl -X POST /v1/drain: %s %v", out, err)
		}
	} else if st, msg := adminRequest(t, srv, "POST", "/v1/drain", "", nil); st != 202 {
		t.Fatalf("POST /v1/drain: %d %s", st, msg)
	}
	waitFor(t, srv.Draining)
}

// Listening on every interface (with its token), any IP address and
// localhost name the admin server, other names only if configured.
func TestAdminHostsOnAllInterfaces(t *testing.T) {
	srv := startServer(t, gateway.Config{Admin: ":0", AdminToken: "tok"}, gateway.Echo{})
	auth := map[string]string{"Authorization": "Bearer tok"}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"10.1.2.3:9090", 200}, {"[2001:db8::1]:9090", 200}, {"localhost:9090", 200},
		{"gw.example:9090", 403}, {"", 200},
	} {
		if st, msg := adminRequest(t, srv, "GET", "/v1/stats", tc.host, auth); st != tc.want {
			t.Errorf("Host %q: %d (%s), want %d", tc.host, st, msg, tc.want)
		}
	}
}
