package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The admin server (Config.Admin) is plain net/http on its own goroutines:
// it is for operators and backends, never on the path of client traffic.
// Every answer other than /metrics and /debug/pprof/ is JSON, errors
// included: {"error": "..."}.

type admin struct {
	s        *Server
	token    [sha256.Size]byte
	hasToken bool
	hosts    hostPolicy
	mux      *http.ServeMux
	metrics  http.Handler // GET /metrics
	http     *http.Server
	ln       net.Listener
	served   chan struct{}

	// Drains started by POST /v1/drain; shutdown ends and waits for them.
	drains      sync.WaitGroup
	drainCtx    context.Context
	drainCancel context.CancelFunc
}

func newAdmin(s *Server) *admin {
	a := &admin{s: s, mux: http.NewServeMux(), served: make(chan struct{})}
	a.drainCtx, a.drainCancel = context.WithCancel(context.Background())
	a.hosts = newHostPolicy(s.cfg.Admin, s.cfg.AdminHosts)
	if s.cfg.AdminToken != "" {
		a.token, a.hasToken = sha256.Sum256([]byte(s.cfg.AdminToken)), true
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m := a.mux
	for _, rt := range adminRoutes {
		m.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) { rt.serve(a, w, r) })
	}
	m.HandleFunc("/", a.notFound)

	a.http = &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.gate.log.Handler(), slog.LevelWarn),
	}
	return a
}

// adminRoute is one route of the admin server.
type adminRoute struct {
	pattern string // http.ServeMux pattern: "METHOD /path"
	serve   func(a *admin, w http.ResponseWriter, r *http.Request)
}

// adminRoutes is every route of the admin server, the one list that the
// mux registers and that the test of docs/api/openapi.yaml compares with
// the spec's paths. What no route matches gets notFound's 404 or 405.
var adminRoutes = []adminRoute{
	{"POST /v1/connections/{id}/messages", (*admin).pushConn},
	{"GET /v1/connections/{id}", (*admin).getConn},
	{"DELETE /v1/connections/{id}", (*admin).closeConn},
	{"GET /v1/connections", (*admin).listConns},
	{"PUT /v1/connections/{id}/topics/{topic}", (*admin).subscribe},
	{"DELETE /v1/connections/{id}/topics/{topic}", (*admin).unsubscribe},
	{"POST /v1/users/{user}/messages", (*admin).pushUser},
	{"POST /v1/topics/{topic}/messages", (*admin).pushTopic},
	{"POST /v1/drain", (*admin).drain},
	{"GET /v1/stats", (*admin).stats},
	{"GET /v1/cluster", (*admin).clusterInfo},
	{"GET /v1/openapi.yaml", (*admin).openAPI},
	{"GET /metrics", func(a *admin, w http.ResponseWriter, r *http.Request) { a.metrics.ServeHTTP(w, r) }},
	{"GET /debug/pprof/{$}", plain(pprofIndex)},
	{"GET /debug/pprof/profile", plain(pprofCPU)},
	{"GET /debug/pprof/trace", plain(pprofTrace)},
	{"GET /debug/pprof/{name}", plain(pprofNamed)},
}

func plain(f http.HandlerFunc) func(*admin, http.ResponseWriter, *http.Request) {
	return func(_ *admin, w http.ResponseWriter, r *http.Request) { f(w, r) }
}

// openAPISpec is the admin API's OpenAPI 3.1 description, served at GET
// /v1/openapi.yaml; docs/api/openapi.yaml is a copy that a test keeps
// identical.
//
//go:embed openapi.yaml
var openAPISpec []byte

func (a *admin) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPISpec)
}

// start listens on Config.Admin and serves in the background.
func (a *admin) start() error {
	ln, err := net.Listen("tcp", a.s.cfg.Admin)
	if err != nil {
		return fmt.Errorf("gateway: admin listener: %w", err)
	}
	a.ln = ln
	go func() {
		defer close(a.served)
		_ = a.http.Serve(ln)
	}()
	return nil
}

// shutdown stops the admin server, waiting for requests in flight until
// ctx ends.
func (a *admin) shutdown(ctx context.Context) error {
	// A drain that POST /v1/drain started ends with the connections, which
	// Server.Shutdown has closed by now, or at once when told to.
	a.drainCancel()
	drained := make(chan struct{})
	go func() { a.drains.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	if a.ln == nil {
		return nil
	}
	err := a.http.Shutdown(ctx)
	if err != nil {
		_ = a.http.Close()
	}
	<-a.served
	return err
}

// ServeHTTP checks where the request comes from (see admin_trust.go), then the
// bearer token, in constant time, before routing.
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if why := a.untrusted(r); why != "" {
		writeError(w, http.StatusForbidden, why)
		return
	}
	if a.hasToken {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsgate"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

func bearer(h string) (string, bool) {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// notFound answers what no route matched: 405 with Allow when the path
// exists under other methods, else 404.
func (a *admin) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	writeError(w, http.StatusNotFound, "not found")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// A small /debug/pprof/ of our own: net/http/pprof would register its
// handlers on http.DefaultServeMux of every program that imports gateway.

func pprofIndex(w http.ResponseWriter, _ *http.Request) {
	var names []string
	for _, p := range pprof.Profiles() {
		names = append(names, fmt.Sprintf("%s (%d)", p.Name(), p.Count()))
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "profiles: %s\nalso: profile?seconds=N (CPU), trace?seconds=N\nadd ?debug=1 for text\n",
		strings.Join(names, ", "))
}

func pprofNamed(w http.ResponseWriter, r *http.Request) {
	p := pprof.Lookup(r.PathValue("name"))
	if p == nil {
		writeError(w, http.StatusNotFound, "unknown profile")
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if debug > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	_ = p.WriteTo(w, debug)
}

func seconds(r *http.Request) time.Duration {
	s, err := strconv.Atoi(r.FormValue("seconds"))
	if err != nil || s <= 0 {
		s = 30
	}
	return time.Duration(min(s, 300)) * time.Second
}

func pprofCPU(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := pprof.StartCPUProfile(w); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	sleep(r.Context(), seconds(r))
	pprof.StopCPUProfile()
}

func pprofTrace(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := trace.Start(w); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	sleep(r.Context(), seconds(r))
	trace.Stop()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
