// Package deploy tests the operations kit in this folder against the code:
// the Prometheus rules and a real Prometheus, the Grafana dashboard, the
// systemd unit, the Kubernetes manifests and the container files. Each
// test reads the shipped file, not a copy, so that a file that drifts from
// the gateway fails here.
package deploy

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testkit"
)

// tool returns the path of an installed program. Missing, it skips the
// test, but fails it under CI (CI set, as .ci/run runs), which installs
// every tool (.ci/ops.sh).
func tool(t *testing.T, name string) string {
	t.Helper()
	return testkit.Need(t, name, "see .ci/ops.sh")
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// TestMain removes the gateway binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/gateway once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wsgate-deploy-test")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "gateway")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/gateway").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build ./cmd/gateway: " + e.err.Error() + "\n" + e.out }

// effective runs the binary with args, env and --print-config and
// returns the effective settings by YAML key. A flag or value the
// gateway does not accept fails the test.
func effective(t *testing.T, args, env []string) map[string]any {
	t.Helper()
	cmd := exec.Command(binary(t), append(append([]string{}, args...), "--print-config")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gateway %s --print-config: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var m map[string]any
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatalf("--print-config output: %v\n%s", err, out)
	}
	return m
}

// settingNames returns every setting's YAML key (its flag is -- and the
// key with dashes, its variable WSGATE_ and the key in upper case).
func settingNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for k := range effective(t, nil, nil) {
		names[k] = true
	}
	// The command's own options, which --print-config does not print.
	names["config"], names["print_config"] = true, true
	return names
}

// duration reads a duration setting of --print-config.
func duration(t *testing.T, m map[string]any, key string) time.Duration {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("--print-config has no %s: %v", key, m[key])
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return d
}

// shutdownBound is how long cmd/gateway waits for Shutdown after the
// drain (the 5*time.Second in cmd/gateway/main.go's run); a stop timeout
// must cover drain window + grace + this.
const shutdownBound = 5 * time.Second

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs an in-process gateway with the admin API on a free
// port and a real HTTP backend (so that the backend metrics exist), and
// stops it when the test ends.
func startGateway(t *testing.T, cfg gateway.Config) *gateway.Server {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/connect":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"user":"u","topics":["news"]}`))
		case "/message":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("ok"))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(backend.Close)
	cfg.Addr, cfg.Admin, cfg.Backend = "127.0.0.1:0", "127.0.0.1:0", backend.URL
	cfg.Loops = 2
	srv, err := gateway.NewServer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

// exported scrapes the admin address's /metrics and returns the label
// names and values of every series name it exports (a histogram's
// _bucket, _sum and _count, a summary's quantiles, _sum and _count).
func exported(t *testing.T, srv *gateway.Server, token string) map[string]map[string]map[string]bool {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+srv.AdminAddr().String()+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]bool{}
	add := func(name string, labels map[string]string) {
		if out[name] == nil {
			out[name] = map[string]map[string]bool{}
		}
		for k, v := range labels {
			if out[name][k] == nil {
				out[name][k] = map[string]bool{}
			}
			out[name][k][v] = true
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Histogram != nil:
				add(name+"_sum", labels)
				add(name+"_count", labels)
				for _, b := range m.Histogram.GetBucket() {
					add(name+"_bucket", merge(labels, "le", formatFloat(b.GetUpperBound())))
				}
				add(name+"_bucket", merge(labels, "le", "+Inf"))
			case m.Summary != nil:
				add(name+"_sum", labels)
				add(name+"_count", labels)
				for _, q := range m.Summary.GetQuantile() {
					add(name, merge(labels, "quantile", formatFloat(q.GetQuantile())))
				}
			default:
				add(name, labels)
			}
		}
	}
	return out
}

func merge(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

func formatFloat(f float64) string { return model.SampleValue(f).String() }
