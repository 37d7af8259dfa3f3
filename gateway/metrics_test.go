package gateway_test

import (
	"bytes"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate/gateway"
)

// scrape GETs /metrics and returns every sample by its series, written
// name{label="value",...} with the labels sorted; a histogram gives its
// _count.
func scrape(t *testing.T, a *adminClient) map[string]float64 {
	t.Helper()
	status, body := a.do("GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// echoSession is the start of the scripted sessions: three clients, two
// messages of five bytes each, echoed by the backend, and an upgrade
// refused for its origin.
func echoSession(t *testing.T, srv *gateway.Server) []*gorilla.Conn {
	t.Helper()
	var clients []*gorilla.Conn
	for range 3 {
		c := mustDial(t, wsURL(srv), nil)
		clients = append(clients, c)
		for _, m := range []string{"hello", "world"} {
			c.WriteMessage(gorilla.TextMessage, []byte(m))
			readMsg(t, c)
		}
	}
	if status := dialStatus(t, wsURL(srv), http.Header{"Origin": {"https://evil.example"}}); status != 403 {
		t.Fatalf("bad origin: %d", status)
	}
	return clients
}

// After a scripted session through the backend, /metrics has the counts
// the session made.
func TestMetricsAfterSession(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) { b.message = echoMessage })
	srv := startServer(t, gateway.Config{
		Backend: b.URL, Admin: "127.0.0.1:0", AllowedOrigins: []string{"https://ok.example"},
	}, nil)
	a := newAdminClient(t, srv, "")

	clients := echoSession(t, srv)
	// One leaves with 1000; the API closes another with 4000.
	clients[0].WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""))
	<-b.disconnects
	page := a.json("GET", "/v1/connections", "", nil, 200)["connections"].([]any)
	if len(page) != 2 {
		t.Fatalf("listed %d connections", len(page))
	}
	for _, c := range clients[1:] {
		go c.ReadMessage() // answers the close frame at once
	}
	a.json("DELETE", "/v1/connections/"+page[0].(map[string]any)["id"].(string)+"?code=4000", "", nil, 202)
	for range 1 {
		<-b.disconnects
	}
	var m map[string]float64
	waitFor(t, func() bool {
		m = scrape(t, a)
		return m[`wsgate_backend_requests_total{hook="disconnect",status="204"}`] == 2
	})
	for series, want := range map[string]float64{
		`wsgate_connections_open`:                                       1,
		`wsgate_connections_accepted_total`:                             4,
		`wsgate_upgrades_total{status="101"}`:                           3,
		`wsgate_upgrades_total{status="403"}`:                           1,
		`wsgate_messages_total{direction="in"}`:                         6,
		`wsgate_messages_total{direction="out"}`:                        6,
		`wsgate_bytes_total{direction="in"}`:                            30,
		`wsgate_closes_total{cause="peer"}`:                             1,
		`wsgate_closes_total{cause="app"}`:                              1,
		`wsgate_closes_total{cause="liveness"}`:                         0,
		`wsgate_close_codes_total{code="1000"}`:                         1,
		`wsgate_close_codes_total{code="4xxx"}`:                         1,
		`wsgate_handshake_refusals_total{reason="origin"}`:              1,
		`wsgate_backend_requests_total{hook="connect",status="204"}`:    3,
		`wsgate_backend_requests_total{hook="message",status="200"}`:    6,
		`wsgate_backend_request_duration_seconds_count{hook="message"}`: 6,
		`wsgate_messages_dropped_total{reason="slow_consumer"}`:         0,
		`wsgate_pool_overloads_total`:                                   0,
		`wsgate_backend_disconnects_dropped_total`:                      0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if m["go_goroutines"] == 0 || m["process_open_fds"] == 0 {
		t.Error("no Go runtime or process metrics")
	}
}

// The metric names follow Prometheus conventions.
func TestMetricsLint(t *testing.T) {
	b := newFakeBackend(t)
	srv := startServer(t, gateway.Config{Backend: b.URL, JWTSecret: "x"}, nil)
	c := mustDial(t, wsURL(srv)+"?token="+hsToken(t, "x", claims("a", time.Hour)), nil)
	c.WriteMessage(gorilla.TextMessage, []byte("x")) // the histogram gets a series
	waitFor(t, func() bool {
		return metricValue(t, srv, "wsgate_backend_requests_total", "hook", "message", "status", "204") == 1
	})
	c.Close()
	waitFor(t, func() bool { return srv.Stats().ConnsOpen == 0 })
	problems, err := testutil.CollectAndLint(srv.Collector())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(srv.Collector(), "wsgate_connections_open"); n != 1 {
		t.Errorf("wsgate_connections_open: %d series", n)
	}
}
