package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
	"github.com/wsgate/wsgate/internal/stat"
)

// Every figure of Stats, the loop's and the gateway's own, cluster
// included, is in /v1/stats and in /metrics with the same value after a
// scripted session through real sockets (gorilla clients, a real backend
// over HTTP, an embedded NATS server).
func TestStatsEverywhere(t *testing.T) {
	nats := natstest.Start(t)
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) { b.message = echoMessage })
	srv := startServer(t, gateway.Config{
		Backend: b.URL, Admin: "127.0.0.1:0", AllowedOrigins: []string{"https://ok.example"},
		NATS: []string{nats.URL()}, ClusterHeartbeat: time.Hour, MaxConns: 100,
	}, nil)
	a := newAdminClient(t, srv, "")
	waitFor(t, func() bool { return srv.ClusterStats().Connected })

	clients := echoSession(t, srv)
	if resp, err := http.Get("http://" + srv.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
	}
	clients[0].WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""))
	<-b.disconnects
	for _, c := range clients[1:] {
		go c.ReadMessage() // answers the close frame at once
	}
	a.json("POST", "/v1/topics/news/messages", "text/plain", []byte("x"), 202)
	page := a.json("GET", "/v1/connections", "", nil, 200)["connections"].([]any)
	a.json("DELETE", "/v1/connections/"+page[0].(map[string]any)["id"].(string)+"?code=4000", "", nil, 202)
	<-b.disconnects

	// A snapshot of both outputs with nothing moving between them.
	var js map[string]any
	var m map[string]float64
	waitFor(t, func() bool {
		before := statsJSON(t, a)
		m = scrape(t, a)
		js = statsJSON(t, a)
		return reflect.DeepEqual(before, js)
	})

	// Which series each field is, from the declaration; the values come
	// from the two HTTP outputs.
	covered, checked := map[string]bool{}, map[string]bool{}
	nonzero := 0
	stat.Samples(srv.Stats(), func(s stat.Sample) {
		series := "wsgate_" + s.Family.Name
		path := s.Field
		if len(s.Labels) > 0 {
			var ls []string
			for i, v := range s.Labels {
				ls = append(ls, fmt.Sprintf(`%s=%q`, s.Family.Labels[i], v))
			}
			sort.Strings(ls) // as scrape writes them
			series += "{" + strings.Join(ls, ",") + "}"
			if _, isMap := lookup(js, path).(map[string]any); isMap {
				path += "." + s.Labels[len(s.Labels)-1] // a map's key
			}
		}
		covered[series], checked[path] = true, true
		v, ok := lookup(js, path).(float64)
		if b, isBool := lookup(js, path).(bool); isBool {
			v, ok = 0, true
			if b {
				v = 1
			}
		}
		got, present := m[series]
		switch {
		case !ok:
			t.Errorf("/v1/stats has no number at %s (%s)", path, series)
		case !present:
			t.Errorf("/metrics has no %s (/v1/stats %s = %v)", series, path, v)
		case got != v*s.Scale:
			t.Errorf("%s = %v in /metrics, /v1/stats %s = %v", series, got, path, v)
		case v != 0:
			nonzero++
		}
	})
	// Every series of ours in /metrics comes from a field.
	for series := range m {
		if strings.HasPrefix(series, "wsgate_") && !strings.HasPrefix(series, "wsgate_backend_request") && !covered[series] {
			t.Errorf("/metrics has %s, which no Stats field declares", series)
		}
	}
	// Every key of /v1/stats is a field that was checked.
	for _, path := range leaves(js, "") {
		if _, empty := lookup(js, path).(map[string]any); !empty && !checked[path] {
			t.Errorf("/v1/stats has %s, which gave no sample", path)
		}
	}
	if nonzero < 20 {
		t.Errorf("only %d figures were non-zero after the session", nonzero)
	}
	for _, p := range []string{"messages_in", "closes.peer", "close_codes.4xxx", "handshake_refusals.origin", "cluster.published", "max_conns"} {
		if v, _ := lookup(js, p).(float64); v == 0 {
			t.Errorf("/v1/stats %s = 0 after the session", p)
		}
	}
}

func statsJSON(t *testing.T, a *adminClient) map[string]any {
	t.Helper()
	status, body := a.do("GET", "/v1/stats", "", nil)
	if status != 200 {
		t.Fatalf("/v1/stats: %d %s", status, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// lookup follows a dotted path through nested objects.
func lookup(v any, path string) any {
	for p := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// leaves lists the paths of the objects' numbers and booleans, and of
// the empty objects.
func leaves(v any, prefix string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return []string{strings.TrimSuffix(prefix, ".")}
	}
	if len(m) == 0 {
		return []string{strings.TrimSuffix(prefix, ".")}
	}
	var out []string
	for k, x := range m {
		out = append(out, leaves(x, prefix+k+".")...)
	}
	sort.Strings(out)
	return out
}

// The Stats schema of openapi.yaml lists every field of Stats, with its
// type, and nothing else; the cluster's likewise.
func TestStatsSchemaMatchesCode(t *testing.T) {
	doc, _ := loadSpec(t, "http://127.0.0.1:9090")
	check := func(schema string, v any) {
		s := doc.Components.Schemas[schema]
		if s == nil {
			t.Fatalf("%s has no schema %s", specFile, schema)
		}
		code := stat.JSON(v)
		for name, x := range code {
			want := ""
			switch x.(type) {
			case int64, int:
				want = "integer"
			case bool:
				want = "boolean"
			case map[string]int64:
				want = "#/components/schemas/Counts"
			case map[string]any:
				want = "#/components/schemas/" + nestedSchemas[name]
			default:
				t.Fatalf("%s: %T", name, x)
			}
			p := s.Value.Properties[name]
			switch {
			case p == nil && strings.HasPrefix(want, "#"):
				t.Errorf("%s %s lacks %s; add: %s: {$ref: %q, description: \"...\"}", specFile, schema, name, name, want)
			case p == nil:
				t.Errorf("%s %s lacks %s; add: %s: {type: %s, description: \"...\"}", specFile, schema, name, name, want)
			case strings.HasPrefix(want, "#") && p.Ref != want:
				t.Errorf("%s %s.%s is %q, want $ref %s", specFile, schema, name, p.Ref, want)
			case !strings.HasPrefix(want, "#") && !p.Value.Type.Is(want):
				t.Errorf("%s %s.%s has type %v, want %s", specFile, schema, name, p.Value.Type, want)
			}
		}
		for name := range s.Value.Properties {
			if _, ok := code[name]; !ok {
				t.Errorf("%s %s documents %s, which Stats does not have", specFile, schema, name)
			}
		}
	}
	st := startServer(t, gateway.Config{}, gateway.Echo{}).Stats() // every map made
	st.Cluster = &gateway.ClusterStats{}
	check("Stats", st)
	check("ClusterStats", gateway.ClusterStats{})
	check("SessionStats", *st.Sessions)
}

// nestedSchemas names the schema of each nested object of Stats.
var nestedSchemas = map[string]string{"cluster": "ClusterStats", "sessions": "SessionStats"}
