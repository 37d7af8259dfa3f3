package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	mux      *http.ServeMux
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
	if s.cfg.AdminToken != "" {
		a.token, a.hasToken = sha256.Sum256([]byte(s.cfg.AdminToken)), true
	}
	m := a.mux
	m.HandleFunc("POST /v1/connections/{id}/messages", a.pushConn)
	m.HandleFunc("GET /v1/connections/{id}", a.getConn)
	m.HandleFunc("DELETE /v1/connections/{id}", a.closeConn)
	m.HandleFunc("GET /v1/connections", a.listConns)
	m.HandleFunc("PUT /v1/connections/{id}/topics/{topic}", a.subscribe)
	m.HandleFunc("DELETE /v1/connections/{id}/topics/{topic}", a.unsubscribe)
	m.HandleFunc("POST /v1/users/{user}/messages", a.pushUser)
	m.HandleFunc("POST /v1/topics/{topic}/messages", a.pushTopic)
	m.HandleFunc("POST /v1/drain", a.drain)
	m.HandleFunc("GET /v1/stats", a.stats)
	m.HandleFunc("GET /v1/cluster", a.clusterInfo)

	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	m.HandleFunc("GET /debug/pprof/{$}", pprofIndex)
	m.HandleFunc("GET /debug/pprof/profile", pprofCPU)
	m.HandleFunc("GET /debug/pprof/trace", pprofTrace)
	m.HandleFunc("GET /debug/pprof/{name}", pprofNamed)
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

// ServeHTTP checks the bearer token, in constant time, before routing.
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
