package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// Every gateway.Config field has a setting, whose type the loader knows:
// a field added later without a tag fails here, not in production.
func TestEveryFieldHasATag(t *testing.T) {
	st := defaults()
	names := map[string]bool{}
	for _, s := range fields(&st) {
		if names[s.name] {
			t.Errorf("setting %s twice", s.name)
		}
		names[s.name] = true
		before := s.format()
		raw := before
		if l, ok := raw.([]string); ok {
			raw = strings.Join(l, ",")
		}
		if s.secret {
			raw = "x"
		}
		if err := s.set(fmt.Sprint(raw)); err != nil {
			t.Errorf("%s: its own value %v does not parse: %v", s.name, raw, err)
		}
	}
	n := reflect.TypeFor[gateway.Config]().NumField()
	if len(names) != n-1+4 { // Logger is not a setting; app, log_level, log_format, go_memory_limit are
		t.Errorf("%d settings for %d Config fields", len(names), n)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wsgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The file, then the environment, then flags: each overrides the last.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
listen: ":7000"
path: /file
max_message: 2MiB
ping_interval: 0
allowed_origins:
  - https://a.example
  - "*.b.example"
backend_timeout: 2s
admin: ""
slow_policy: drop
accept_rate: 2.5
`)
	env := []string{"WSGATE_CONFIG=" + file, "WSGATE_PATH=/env", "WSGATE_MAX_MESSAGE=64KiB", "WSGATE_JWT_SECRET=s",
		"WSGATE_BACKEND_RETRIES=0", "WSGATE_TRUSTED_PROXIES=10.0.0.0/8, 192.168.0.1", "WSGATE_NOPE=1", "HOME=/x"}
	st, _, unknown, err := load([]string{"--path", "/flag", "--reuse-port", "--demo=false"}, env)
	if err != nil {
		t.Fatal(err)
	}
	c := st.Config
	switch {
	case c.Addr != ":7000", c.Path != "/flag", c.MaxMessageSize != 64<<10, c.PingInterval != -1,
		!reflect.DeepEqual(c.AllowedOrigins, []string{"https://a.example", "*.b.example"}),
		c.BackendTimeout != 2*time.Second, c.Admin != "", c.SlowPolicy != gateway.SlowDrop, c.AcceptRate != 2.5,
		c.JWTSecret != "s", c.BackendRetries != -1, !reflect.DeepEqual(c.TrustedProxies, []string{"10.0.0.0/8", "192.168.0.1"}),
		!c.ReusePort, c.DemoPage:
		t.Fatalf("loaded %+v", c)
	}
	if !reflect.DeepEqual(unknown, []string{"WSGATE_NOPE"}) {
		t.Fatalf("unknown variables %v", unknown)
	}
}

// --print-config's output is a configuration file that loads back to the
// same configuration, secrets redacted and refused when loaded back.
func TestPrintConfigRoundTrip(t *testing.T) {
	st, _, _, err := load([]string{"--max-outbound", "3000", "--ping-interval", "off", "--allowed-origins", "a.example,b.example",
		"--backend", "http://127.0.0.1:1/x", "--admin-token", "s3cr3t-99", "--log-format", "json", "--backend-retries", "0",
		"--max-handshakes", "5000", "--max-handshakes-per-ip", "off", "--ipv6-prefix", "56", "--admin-hosts", "gw.example:9090",
		"--resume-window", "90s"}, nil) // a zero_off setting left at 0 (its default) would print as off
	if err != nil {
		t.Fatal(err)
	}
	out, err := printConfig(&st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cr3t-99") || !strings.Contains(string(out), "admin_token: "+redacted) {
		t.Fatalf("the token is not redacted:\n%s", out)
	}
	file := writeFile(t, string(out))
	if _, _, _, err := load([]string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), "admin_token") {
		t.Fatalf("loading a redacted secret: %v", err)
	}
	back, _, _, err := load([]string{"--config", file, "--admin-token", "s3cr3t-99"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Logger, back.Logger = nil, nil
	if !reflect.DeepEqual(st, back) {
		t.Fatalf("round trip:\n%+v\n%+v\n%s", st, back, out)
	}
}

// Bad values fail with a message that names the setting and the source.
func TestBadValuesNameTheSetting(t *testing.T) {
	file := writeFile(t, "max_mesage: 1MiB\n")
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--max-message", "12parsecs"}, nil, "config: max_message: "},
		{nil, []string{"WSGATE_PING_INTERVAL=soon"}, "config: ping_interval: \"soon\" is not a duration such as 30s or 5m (env WSGATE_PING_INTERVAL)"},
		{[]string{"--config", file}, nil, `config: max_mesage: unknown setting "max_mesage"`},
		{[]string{"--config", writeFile(t, "loops: [1, 2]\n")}, nil, "config: loops: is a single value, not a list"},
		{[]string{"--slow-policy", "maybe"}, nil, "config: slow_policy: \"maybe\": want close or drop (flag --slow-policy)"},
		{[]string{"--reuse-port=yes"}, nil, "config: reuse_port:"},
	} {
		_, _, _, err := load(tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--path", "ws"}, "config: path: must start with /"},
		{[]string{"--admin", "0.0.0.0:9090"}, "config: admin_token: required"},
		{[]string{"--workers", "-1"}, "config: workers: must not be negative"},
		{[]string{"--jwt-key", "/nonexistent.pem"}, "config: jwt_key: "},
		{[]string{"--backend", "http://x", "--app", "broadcast"}, "config: app: "},
		{[]string{"--app", "chat"}, "config: app: "},
		{[]string{"--proxy-protocol", "maybe"}, "config: proxy_protocol: "},
		{[]string{"--log-level", "loud"}, "config: log_level: "},
		{[]string{"--log-format", "xml"}, "config: log_format: "},
	} {
		err := run(append(tc.args, "--print-config"), nil, &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
