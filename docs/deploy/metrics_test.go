package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
)

const (
	rulesFile     = "prometheus/wsgate.rules.yml"
	rulesTestFile = "prometheus/wsgate.rules_test.yml"
	dashboardFile = "grafana/wsgate.json"
)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// expression is a PromQL expression and where it was found.
type expression struct{ where, expr string }

// ruleExprs returns the rules' expressions and the recorded names.
func ruleExprs(t *testing.T) ([]expression, map[string]bool) {
	var out []expression
	recorded := map[string]bool{}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, expression{rulesFile + ": " + r.Record + r.Alert, r.Expr})
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	return out, recorded
}

// grafanaVars stand in for the dashboard's variables, so that its
// expressions parse as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// dashboardExprs returns every panel's and variable's expression: each
// "expr" field at any depth, and label_values(...) queries.
func dashboardExprs(t *testing.T) []expression {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []expression
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = title
			}
			for k, x := range v {
				s, isStr := x.(string)
				switch {
				case k == "expr" && isStr:
					out = append(out, expression{dashboardFile + ": " + where, grafanaVars.Replace(s)})
				case k == "definition" && isStr:
					// label_values(SELECTOR, label): the selector is PromQL.
					inner, ok := strings.CutPrefix(s, "label_values(")
					i := strings.LastIndex(inner, ",")
					if !ok || i < 0 {
						t.Errorf("%s: variable query %q is not label_values(selector, label)", dashboardFile, s)
						continue
					}
					out = append(out, expression{dashboardFile + ": variable " + s, inner[:i]})
				default:
					walk(where, x)
				}
			}
		case []any:
			for _, x := range v {
				walk(where, x)
			}
		}
	}
	walk("", doc)
	return out
}

// Series Prometheus makes itself.
var synthetic = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

// Labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// checkExpr parses e and checks each selector against what the gateway
// exports: the metric exists (or is a recorded or synthetic one), each
// label it matches exists on it, and each value it matches exactly is one
// the gateway produced. It returns the names used and the problems found.
func checkExpr(e expression, metrics map[string]map[string]map[string]bool, recorded map[string]bool) (names, problems []string) {
	fail := func(format string, args ...any) {
		problems = append(problems, e.where+": "+fmt.Sprintf(format, args...))
	}
	ast, err := parser.ParseExpr(e.expr)
	if err != nil {
		fail("%v\n%s", err, e.expr)
		return nil, problems
	}
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		names = append(names, name)
		switch {
		case name == "":
			fail("a selector without a metric name: %s", vs)
			return nil
		case recorded[name] || synthetic[name]:
			return nil
		case metrics[name] == nil:
			fail("%s is not exported by the gateway\n%s", name, e.expr)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName || targetLabels[m.Name] {
				continue
			}
			values, ok := metrics[name][m.Name]
			switch {
			case !ok:
				fail("%s has no label %q", name, m.Name)
			case m.Type == labels.MatchEqual && m.Value != "" && !values[m.Value]:
				fail("%s{%s=%q}: the gateway exported no such value (it has %v)", name, m.Name, m.Value, keys(values))
			}
		}
		return nil
	})
	return names, problems
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every metric the rules and the dashboard name is one a running gateway
// exports, with the labels and values they match on.
func TestRulesAndDashboardNameExportedMetrics(t *testing.T) {
	// A budget and a cluster, so that their series exist too.
	nats := natstest.Start(t)
	srv := startGateway(t, gateway.Config{MaxConns: 100, MemoryBudget: 64 << 20, NATS: []string{nats.URL()}, NodeID: "names"})
	// A session through the backend, so that the backend's series exist.
	d := gorilla.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(gorilla.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "ok" {
		t.Fatalf("echo through the backend: %q %v", msg, err)
	}
	// And a close, so that wsgate_close_codes_total has a series.
	c2, _, err := d.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, ""))
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c2.ReadMessage(); err != nil {
			break
		}
	}
	c2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().Closes["peer"] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	metrics := exported(t, srv, "")
	for _, want := range []string{"wsgate_backend_request_duration_seconds_bucket", "wsgate_max_connections", "wsgate_memory_budget_bytes", "wsgate_cluster_connected", "go_goroutines", "process_resident_memory_bytes"} {
		if metrics[want] == nil {
			t.Fatalf("/metrics lacks %s: the test's gateway is not what it should be", want)
		}
	}

	rules, recorded := ruleExprs(t)
	dash := dashboardExprs(t)
	if len(rules) < 20 || len(dash) < 30 {
		t.Fatalf("found %d rule and %d dashboard expressions: the readers are broken", len(rules), len(dash))
	}
	used := map[string]bool{}
	for _, e := range append(rules, dash...) {
		names, problems := checkExpr(e, metrics, recorded)
		for _, p := range problems {
			t.Error(p)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	// The dashboard covers what the issue asks of it.
	for _, want := range []string{"wsgate_connections_open", "wsgate_upgrades_total", "wsgate_messages_total", "wsgate_bytes_total",
		"wsgate_closes_total", "wsgate_mailbox_max_messages", "wsgate_outbound_queue_max_bytes",
		"wsgate_backend_request_duration_seconds_bucket", "process_resident_memory_bytes"} {
		if !used[want] {
			t.Errorf("no expression uses %s", want)
		}
	}
}

// The checker is not a rubber stamp.
func TestMetricCheckCatchesDrift(t *testing.T) {
	metrics := map[string]map[string]map[string]bool{
		"wsgate_closes_total": {"cause": {"liveness": true}},
	}
	for _, bad := range []string{
		`rate(wsgate_closed_total[5m])`,
		`rate(wsgate_closes_total{reason="liveness"}[5m])`,
		`rate(wsgate_closes_total{cause="livenes"}[5m])`,
		`sum(`,
		`{cause="liveness"}`,
	} {
		if _, problems := checkExpr(expression{"test", bad}, metrics, nil); len(problems) == 0 {
			t.Errorf("%s passed the check", bad)
		}
	}
	good := `sum by (job) (rate(wsgate_closes_total{cause="liveness",job="x"}[5m])) / on() group_left up`
	if _, problems := checkExpr(expression{"test", good}, metrics, nil); len(problems) > 0 {
		t.Errorf("a correct expression failed the check: %v", problems)
	}
}

// Every alert has a promtool case in which it fires, and one in which it
// must not: an eval expecting no alert, or input series the expected
// alerts leave out.
func TestEveryAlertHasUnitTests(t *testing.T) {
	raw, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
			AlertRuleTest []struct {
				Alertname string     `yaml:"alertname"`
				ExpAlerts []expAlert `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(raw, &tf); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		var series []labels.Labels
		for _, s := range tc.InputSeries {
			m, err := parser.ParseMetric(s.Series)
			if err != nil {
				t.Fatalf("%s: %v", s.Series, err)
			}
			series = append(series, m)
		}
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) == 0 {
				quiet[a.Alertname] = true
				continue
			}
			fires[a.Alertname] = true
			// Quiet too if some input series is left out: it disagrees
			// with every expected alert on a label the alert has.
			for _, m := range series {
				if !slices.ContainsFunc(a.ExpAlerts, func(e expAlert) bool { return agrees(m, e.ExpLabels) }) {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	var alerts []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts read")
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("%s has no promtool case in which it fires", a)
		}
		if !quiet[a] {
			t.Errorf("%s has no promtool case in which it must stay quiet", a)
		}
	}
	for a := range fires {
		if !slices.Contains(alerts, a) {
			t.Errorf("%s tests an alert the rules do not have", a)
		}
	}
}

type expAlert struct {
	ExpLabels map[string]string `yaml:"exp_labels"`
}

// agrees reports whether series m could be the source of an alert with
// these labels: it has none of them with another value.
func agrees(m labels.Labels, alert map[string]string) bool {
	for k, v := range alert {
		if k != "severity" && m.Has(k) && m.Get(k) != v {
			return false
		}
	}
	return true
}

// promtool checks the rules and runs their unit tests.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", rulesTestFile},
		{"check", "config", "--syntax-only", "prometheus/prometheus.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
