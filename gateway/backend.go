package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/codec"
)

// The backend hooks (Config.Backend). Every request runs off the event
// loops: connect on the handshake pool, message on the worker pool (one
// request in flight per connection, which keeps its order), disconnect on
// a few senders fed by a bounded queue. Each request has a deadline
// (BackendTimeout), so a backend that hangs holds at most the goroutines
// its requests run on, and a dead one fails them fast; the event loops
// never wait for it.

const (
	// disconnectSenders post the disconnect hooks.
	disconnectSenders = 16
	// disconnectQueue bounds the disconnect hooks waiting for a sender;
	// over it they are dropped and counted.
	disconnectQueue = 16384
	// maxConnectBody bounds the connect hook's answer.
	maxConnectBody = 64 << 10
	// maxMeta bounds the meta a connect hook attaches to a connection: it
	// travels in a header of every message hook.
	maxMeta = 4 << 10
	// maxBackendHeader bounds the header block of every backend answer
	// (net/http's default is 10 MiB, per request in flight).
	maxBackendHeader = 64 << 10
)

// Headers of the message hook.
const (
	HeaderConnectionID = "X-Wsgate-Connection-Id"
	HeaderUser         = "X-Wsgate-User"
	HeaderMeta         = "X-Wsgate-Meta"
)

// Hook names, as in the metrics' hook label.
const (
	hookConnect    = "connect"
	hookMessage    = "message"
	hookResumed    = "resumed"
	hookDisconnect = "disconnect"
)

type backend struct {
	base           string // Config.Backend without a trailing slash
	client         *http.Client
	transport      *http.Transport
	timeout        time.Duration
	connectTimeout time.Duration
	failOpen       bool
	resumeHook     bool // Config.BackendResumeHook
	headers        []string
	maxMessage     int
	retries        int
	log            *slog.Logger

	requests *prometheus.CounterVec   // by hook and status
	latency  *prometheus.HistogramVec // by hook
	dropped  atomic.Int64             // disconnect hooks dropped
	lastWarn atomic.Int64             // unix nanoseconds of the last warning
	muted    atomic.Int64             // warnings not logged since

	// msgCtx ends in-flight message hooks at shutdown; sendCtx ends the
	// disconnect senders when the shutdown's own deadline passes.
	msgCtx     context.Context
	msgCancel  context.CancelFunc
	sendCtx    context.Context
	sendCancel context.CancelFunc
	queue      chan []byte
	flush      chan struct{} // closed at shutdown: send what is queued, then stop
	closed     atomic.Bool
	wg         sync.WaitGroup
}

func newBackend(cfg *Config) *backend {
	b := &backend{
		base:           strings.TrimSuffix(cfg.Backend, "/"),
		timeout:        cfg.BackendTimeout,
		connectTimeout: min(cfg.BackendTimeout, cfg.HandshakeTimeout*3/4),
		failOpen:       cfg.BackendFailOpen,
		resumeHook:     cfg.BackendResumeHook,
		headers:        cfg.BackendHeaders,
		maxMessage:     cfg.MaxMessageSize,
		retries:        max(cfg.BackendRetries, 0),
		log:            cfg.Logger,
		queue:          make(chan []byte, disconnectQueue),
		flush:          make(chan struct{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgate_backend_requests_total",
			Help: "Backend hook requests by hook and outcome: the HTTP status, or timeout or error.",
		}, []string{"hook", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wsgate_backend_request_duration_seconds",
			Help:    "Backend hook request latency, until the answer's body is read.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16), // 250µs to 8s
		}, []string{"hook"}),
	}
	b.transport = &http.Transport{
		DialContext:            (&net.Dialer{Timeout: cfg.BackendTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:        cfg.BackendMaxConns,
		MaxIdleConns:           cfg.BackendMaxConns,
		MaxIdleConnsPerHost:    cfg.BackendMaxConns,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  cfg.BackendTimeout,
		TLSHandshakeTimeout:    cfg.BackendTimeout,
		MaxResponseHeaderBytes: maxBackendHeader,
		ForceAttemptHTTP2:      true,
	}
	b.client = &http.Client{
		Transport: b.transport,
		// A redirect is an answer like any other: a failure of the hook.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	b.msgCtx, b.msgCancel = context.WithCancel(context.Background())
	b.sendCtx, b.sendCancel = context.WithCancel(context.Background())
	return b
}

// start runs the disconnect senders.
func (b *backend) start() {
	for range disconnectSenders {
		b.wg.Add(1)
		go b.sender()
	}
}

// shutdown ends the message hooks at once, sends the disconnect hooks
// still queued until ctx ends, and closes the idle connections. It runs
// after the last OnClose.
func (b *backend) shutdown(ctx context.Context) {
	b.msgCancel()
	if !b.closed.Swap(true) {
		close(b.flush)
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		b.sendCancel()
		<-done
	}
	b.sendCancel()
	b.transport.CloseIdleConnections()
}

// do sends one request and returns the response with its body read, up to
// limit bytes (more is an error), counting it under hook. limit is at most
// 1 GiB (Config.MaxMessageSize), so limit+1 does not overflow.
func (b *backend) do(req *http.Request, hook string, limit int) (*http.Response, []byte, error) {
	start := time.Now()
	resp, err := b.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
		resp.Body.Close()
		if err == nil && len(body) > limit {
			err = fmt.Errorf("answer over %d bytes", limit)
		}
	}
	b.latency.WithLabelValues(hook).Observe(time.Since(start).Seconds())
	status := "error"
	switch {
	case err == nil:
		status = strconv.Itoa(resp.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		status = "timeout"
	}
	b.requests.WithLabelValues(hook, status).Inc()
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// warn logs a backend failure, at most once a second, with how many
// were not logged since: a failing backend must not flood the log with a
// line per message.
func (b *backend) warn(msg string, err error) {
	now := time.Now().UnixNano()
	last := b.lastWarn.Load()
	if now-last < int64(time.Second) || !b.lastWarn.CompareAndSwap(last, now) {
		b.muted.Add(1)
		return
	}
	b.log.Warn("wsgate: backend "+msg, "backend", b.base, "err", err, "not_logged", b.muted.Swap(0))
}

// connectRequest is the connect hook's JSON body.
type connectRequest struct {
	ID         string            `json:"id"`
	RemoteAddr string            `json:"remote_addr"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Headers    map[string]string `json:"headers"`
	Protocols  []string          `json:"protocols"`
	User       string            `json:"user,omitempty"`
}

// connectResult is the connect hook's optional JSON answer.
type connectResult struct {
	User        string          `json:"user"`
	Topics      []string        `json:"topics"`
	Subprotocol string          `json:"subprotocol"`
	Meta        json.RawMessage `json:"meta"`
}

// connMeta is a bridged connection's Conn.Value: the meta its connect
// hook returned, compact JSON.
type connMeta struct{ meta []byte }

func (r *connectResult) apply(a *Accept) {
	if r.User != "" {
		a.User = r.User
	}
	if r.Subprotocol != "" {
		a.Subprotocol = r.Subprotocol
	}
	for _, t := range r.Topics {
		if t != "" {
			a.Topics = append(a.Topics, t)
		}
	}
	if len(r.Meta) > 0 && string(r.Meta) != "null" {
		a.Value = &connMeta{meta: r.Meta}
	}
}

// connect asks the backend about an upgrade. A refusal is a
// *codec.HandshakeError to answer with (401 and 403 as the backend said,
// other 4xx as 403); any other error is a failure of the hook.
func (b *backend) connect(p *PendingUpgrade, user string, protos []string) (*connectResult, error) {
	cr := connectRequest{
		ID:         p.IDString(),
		RemoteAddr: p.RemoteAddr().String(),
		Path:       p.Path(),
		Query:      p.Query(),
		Headers:    make(map[string]string, len(b.headers)),
		Protocols:  protos,
		User:       user,
	}
	if cr.Protocols == nil {
		cr.Protocols = []string{}
	}
	for _, h := range b.headers {
		if v := p.Header(h); v != "" {
			cr.Headers[h] = v
		}
	}
	body, _ := json.Marshal(&cr)
	ctx, cancel := context.WithTimeout(context.Background(), b.connectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/connect", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, answer, err := b.do(req, hookConnect, maxConnectBody)
	if err != nil {
		return nil, err
	}
	switch s := resp.StatusCode; {
	case s == 401:
		return nil, codec.ErrHandshakeUnauthorized
	case s == 403 || s >= 400 && s < 500:
		return nil, codec.ErrHandshakeForbidden
	case s < 200 || s > 299:
		return nil, fmt.Errorf("connect hook answered %d", s)
	}
	var res connectResult
	if len(bytes.TrimSpace(answer)) > 0 {
		if err := json.Unmarshal(answer, &res); err != nil {
			return nil, fmt.Errorf("connect hook answer: %w", err)
		}
	}
	if res.User != "" && !validUser(res.User) {
		return nil, errors.New("connect hook answer: bad user")
	}
	if res.Subprotocol != "" && !slices.Contains(protos, res.Subprotocol) {
		return nil, fmt.Errorf("connect hook answer: subprotocol %q was not offered", res.Subprotocol)
	}
	if len(res.Meta) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, res.Meta); err != nil || buf.Len() > maxMeta {
			return nil, fmt.Errorf("connect hook answer: meta not JSON or over %d bytes", maxMeta)
		}
		res.Meta = buf.Bytes()
	}
	return &res, nil
}
