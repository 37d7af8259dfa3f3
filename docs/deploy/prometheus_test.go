package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/gateway"
)

// A real Prometheus (Debian's prometheus package) with the shipped
// prometheus.yml and wsgate.rules.yml scrapes a running gateway, bearer
// token and all, every second; its HTTP API must then report the
// connections the test holds, evaluate every rule without error, and
// raise WsgateConnectionsNearLimit for a gateway at its --max-conns.
func TestPrometheusScrapesGateway(t *testing.T) {
	prom := tool(t, "prometheus")
	promtool := tool(t, "promtool")
	const (
		token = "scrape-token"
		held  = 10
	)
	srv := startGateway(t, gateway.Config{MaxConns: held, AdminToken: token})
	url := "ws://" + srv.Addr().String() + "/ws"
	var clients []*gorilla.Conn
	for range held {
		c, _, err := (&gorilla.Dialer{HandshakeTimeout: 10 * time.Second}).Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	writeScrapeConfig(t, config, srv.AdminAddr().String(), tokenFile, rules)
	// The full check, now that the files it names exist.
	if out, err := exec.Command(promtool, "check", "config", config).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}

	listen := freeAddr(t)
	cmd := exec.Command(prom,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		"--log.level=warn",
	)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	api := &promAPI{t: t, base: "http://" + listen, exited: exited}

	api.waitValue(`wsgate_connections_open{job="wsgate"}`, held)
	api.waitValue(`up{job="wsgate"}`, 1)
	api.waitValue(`wsgate_max_connections{job="wsgate"}`, held)
	api.waitValue(`instance:wsgate_connections_utilisation:ratio{job="wsgate"}`, 1)

	// Every rule evaluates without error.
	var rulesResp struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	api.waitFor(func() string { return "every rule evaluated" }, func() bool {
		api.get("/api/v1/rules", nil, &rulesResp)
		n := 0
		for _, g := range rulesResp.Groups {
			for _, r := range g.Rules {
				if r.Health == "err" {
					t.Fatalf("rule %s: %s", r.Name, r.LastError)
				}
				if r.Health == "ok" {
					n++
				}
			}
		}
		return n > 0 && n == countRules(t)
	})

	// At the limit: the alert is pending (its `for` is 5 minutes).
	api.waitFor(func() string { return "WsgateConnectionsNearLimit pending" }, func() bool {
		var alerts struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		api.get("/api/v1/alerts", nil, &alerts)
		for _, a := range alerts.Alerts {
			if a.Labels["alertname"] == "WsgateConnectionsNearLimit" && a.Labels["instance"] == srv.AdminAddr().String() {
				return a.State == "pending" || a.State == "firing"
			}
		}
		return false
	})

	// It follows the gateway: four clients leave.
	for _, c := range clients[:4] {
		c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, ""))
		c.Close()
	}
	api.waitValue(`wsgate_connections_open{job="wsgate"}`, held-4)
	api.waitValue(`sum(wsgate_closes_total{job="wsgate",cause="peer"})`, 4)
}

// writeScrapeConfig writes the shipped prometheus.yml with the test's
// target, token file, rule file and a 1s interval; the rest (job name,
// path, scheme, authorization type) stays as shipped.
func writeScrapeConfig(t *testing.T, path, target, tokenFile, rules string) {
	t.Helper()
	raw, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	global := cfg["global"].(map[string]any)
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	cfg["rule_files"] = []string{rules}
	jobs := cfg["scrape_configs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("%d scrape jobs, want the one wsgate job", len(jobs))
	}
	job := jobs[0].(map[string]any)
	if job["job_name"] != "wsgate" {
		t.Fatalf("job_name %v: the rules' up{job=\"wsgate\"} expects wsgate", job["job_name"])
	}
	job["authorization"].(map[string]any)["credentials_file"] = tokenFile
	job["static_configs"] = []any{map[string]any{"targets": []string{target}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func countRules(t *testing.T) int {
	n := 0
	for _, g := range readRules(t).Groups {
		n += len(g.Rules)
	}
	return n
}

// promAPI queries Prometheus's HTTP API.
type promAPI struct {
	t      *testing.T
	base   string
	exited chan error
}

// get GETs path and decodes the data of a success answer into v; it
// returns false while Prometheus is not answering yet.
func (p *promAPI) get(path string, q url.Values, v any) bool {
	p.t.Helper()
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return false
	}
	if env.Status != "success" {
		p.t.Fatalf("%s: %s", u, env.Error)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		p.t.Fatalf("%s: %v: %s", u, err, body)
	}
	return true
}

// waitFor polls cond, generously bounded: the machine may be loaded.
func (p *promAPI) waitFor(what func() string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		select {
		case err := <-p.exited:
			p.t.Fatalf("prometheus exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited 90s for %s", what())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitValue waits until the instant query q has one sample of value want.
func (p *promAPI) waitValue(q string, want float64) {
	p.t.Helper()
	last := "no answer"
	p.waitFor(func() string { return fmt.Sprintf("%s == %v (last: %s)", q, want, last) }, func() bool {
		var res struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		if !p.get("/api/v1/query", url.Values{"query": {q}}, &res) {
			return false
		}
		if len(res.Result) != 1 {
			last = fmt.Sprintf("%d series", len(res.Result))
			return false
		}
		last = fmt.Sprint(res.Result[0].Value[1])
		return last == fmt.Sprint(want)
	})
}
