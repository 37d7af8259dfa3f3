package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/internal/stat"
	"github.com/wsgate/wsgate/loop"
)

// The /v1/ API. Connection IDs are decimal strings, in paths and in JSON
// alike (they use all 64 bits: a JavaScript number would round them).

// infoTimeout bounds the wait for a loop to answer Info or List.
const infoTimeout = 5 * time.Second

// target is the connection an {id} path names: on this node (c), or
// on another node of the cluster (node, local).
type target struct {
	c     *Conn
	node  string
	local uint64
}

// target reads the {id} path value, or answers 404.
func (a *admin) target(w http.ResponseWriter, r *http.Request) (target, bool) {
	node, local, ok := a.s.parseConnID(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no such connection")
		return target{}, false
	}
	if node != "" {
		return target{node: node, local: local}, true
	}
	c := a.s.Lookup(local)
	if c == nil {
		writeError(w, http.StatusNotFound, "no such connection")
		return target{}, false
	}
	return target{c: c}, true
}

// remote asks the node that holds a connection to serve verb, and passes
// its answer through; or answers for the cluster's failure.
func (a *admin) remote(w http.ResponseWriter, r *http.Request, node string, verb byte, body []byte) {
	ans, err := a.s.cluster.node.Request(r.Context(), node, verb, body)
	if err != nil {
		reply(w)(clusterError(err, node))
		return
	}
	writeRaw(w, ans.Status, ans.Body)
}

// clusterError is the answer for a cluster call that failed.
func clusterError(err error, node string) (int, any) {
	switch {
	case errors.Is(err, ErrClusterUnavailable):
		return errAnswer(http.StatusServiceUnavailable, "cluster unavailable: this node is not connected to NATS")
	case errors.Is(err, ErrNoSuchNode):
		return errAnswer(http.StatusNotFound, "no such connection: its node "+node+" is not in the cluster")
	case errors.Is(err, ErrClusterTimeout):
		return errAnswer(http.StatusGatewayTimeout, "node "+node+" did not answer within cluster_timeout")
	case errors.Is(err, ErrClusterTooLarge):
		return errAnswer(http.StatusRequestEntityTooLarge, "message over the NATS server's max_payload")
	}
	return errAnswer(http.StatusBadGateway, err.Error())
}

// message reads a push's body: the payload, text for text/* and JSON
// (and form data, what curl -d sends), binary otherwise. It answers 413
// over Config.MaxMessageSize.
func (a *admin) message(w http.ResponseWriter, r *http.Request) (OpCode, []byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(a.s.cfg.MaxMessageSize)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "message over max_message ("+strconv.Itoa(a.s.cfg.MaxMessageSize)+" bytes)")
		} else {
			writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		}
		return 0, nil, false
	}
	op := OpBinary
	if ct := r.Header.Get("Content-Type"); ct != "" {
		op = opForContentType(ct)
		if ct == "application/x-www-form-urlencoded" {
			op = OpText
		}
	}
	return op, body, true
}

// errAnswer is an error answer: a status and {"error": msg}.
func errAnswer(status int, msg string) (int, any) {
	return status, map[string]string{"error": msg}
}

// sendError is the answer for an error of Conn.Send.
func sendError(err error) (int, any) {
	switch {
	case errors.Is(err, ErrSlowConsumer):
		return errAnswer(http.StatusTooManyRequests, "slow consumer: the connection's outbound queue is full")
	case errors.Is(err, ErrClosed):
		return errAnswer(http.StatusNotFound, "connection closed")
	case errors.Is(err, loop.ErrInvalidUTF8):
		return errAnswer(http.StatusBadRequest, "text message is not valid UTF-8 (send it as application/octet-stream)")
	case errors.Is(err, ErrMemoryBudget):
		return errAnswer(http.StatusServiceUnavailable, "memory budget exhausted: try again later")
	case errors.Is(err, ErrServerClosed):
		return errAnswer(http.StatusServiceUnavailable, "server closed")
	}
	return errAnswer(http.StatusInternalServerError, err.Error())
}

// reply returns the writer of an operation's answer (a status and a
// JSON value; none for 204): reply(w)(op(...)).
func reply(w http.ResponseWriter) func(int, any) {
	return func(status int, v any) {
		setRetryAfter(w, status)
		if v == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, v)
	}
}

// setRetryAfter tells the caller of a 503 (memory budget full, cluster
// unreachable, server closing) when to try again.
func setRetryAfter(w http.ResponseWriter, status int) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
}

// writeRaw writes an answer another node encoded.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	setRetryAfter(w, status)
	if len(body) == 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// DELETE /v1/connections/{id}?code=1000&reason=...: 202, the closing
// handshake has started. The code and reason may also come as JSON.
func (a *admin) closeConn(w http.ResponseWriter, r *http.Request) {
	t, ok := a.target(w, r)
	if !ok {
		return
	}
	req := struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	}{Code: 1000, Reason: r.URL.Query().Get("reason")}
	if s := r.URL.Query().Get("code"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "code: not a number")
			return
		}
		req.Code = n
	}
	if r.ContentLength > 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
	}
	if req.Code < 1000 || req.Code > 4999 || len(req.Reason) > 123 {
		writeError(w, http.StatusBadRequest, "code must be a valid close code and reason at most 123 bytes")
		return
	}
	if t.c != nil {
		reply(w)(a.s.opClose(t.c, req.Code, req.Reason))
		return
	}
	body, _ := json.Marshal(closeRequest{ID: t.local, Code: req.Code, Reason: req.Reason})
	a.remote(w, r, t.node, verbClose, body)
}

// opClose closes a connection of this node.
func (s *Server) opClose(c *Conn, code int, reason string) (int, any) {
	switch err := c.Close(StatusCode(code), reason); {
	case errors.Is(err, ErrBadCloseCode), errors.Is(err, loop.ErrInvalidUTF8):
		return errAnswer(http.StatusBadRequest, "code "+strconv.Itoa(code)+" may not be sent, or the reason is not UTF-8")
	case err != nil:
		return sendError(err)
	}
	return http.StatusAccepted, map[string]string{"id": c.IDString()}
}

// connJSON is a connection as the API shows it.
type connJSON struct {
	ID          string          `json:"id"`
	RemoteAddr  string          `json:"remote_addr"`
	User        string          `json:"user"`
	Subprotocol string          `json:"subprotocol"`
	ConnectedAt time.Time       `json:"connected_at"`
	Topics      []string        `json:"topics,omitempty"`
	MessagesIn  *int64          `json:"messages_in,omitempty"`
	MessagesOut *int64          `json:"messages_out,omitempty"`
	BytesIn     *int64          `json:"bytes_in,omitempty"`
	BytesOut    *int64          `json:"bytes_out,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
}

func (s *Server) basicJSON(ci *ConnInfo) connJSON {
	return connJSON{
		ID:          s.srv.FormatID(ci.ID),
		RemoteAddr:  ci.Remote.String(),
		User:        ci.User,
		Subprotocol: ci.Subprotocol,
		ConnectedAt: ci.ConnectedAt.UTC(),
	}
}

// GET /v1/connections/{id}: details, topics and traffic.
func (a *admin) getConn(w http.ResponseWriter, r *http.Request) {
	t, ok := a.target(w, r)
	if !ok {
		return
	}
	if t.node != "" {
		a.remote(w, r, t.node, verbInfo, appendID(t.local, ""))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), infoTimeout)
	defer cancel()
	reply(w)(a.s.opInfo(ctx, t.c))
}

// opInfo describes a connection of this node.
func (s *Server) opInfo(ctx context.Context, c *Conn) (int, any) {
	info, err := c.Info(ctx)
	if err != nil {
		return sendError(err)
	}
	j := s.basicJSON(&info)
	j.Topics = info.Topics
	if j.Topics == nil {
		j.Topics = []string{}
	}
	j.MessagesIn, j.MessagesOut = &info.MessagesIn, &info.MessagesOut
	j.BytesIn, j.BytesOut = &info.BytesIn, &info.BytesOut
	if m, ok := c.Value().(*connMeta); ok {
		j.Meta = m.meta
	}
	return http.StatusOK, j
}

// maxListLimit bounds a page of GET /v1/connections.
const maxListLimit = 1000

// listPage is a page of GET /v1/connections. Nodes and NodesMissing are
// set for a cluster-wide listing.
type listPage struct {
	Connections  []connJSON `json:"connections"`
	NextCursor   string     `json:"next_cursor"`
	Nodes        int        `json:"nodes,omitempty"`
	NodesMissing int        `json:"nodes_missing,omitempty"`
}

// GET /v1/connections?user=&topic=&limit=&cursor=&scope=: a page of
// connections and the cursor of the next ("" after the last). In a
// cluster the page is the whole cluster's unless scope=local.
func (a *admin) listConns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := ListOptions{User: q.Get("user"), Topic: q.Get("topic"), Cursor: q.Get("cursor"), Limit: 100}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			writeError(w, http.StatusBadRequest, "limit must be 1 to "+strconv.Itoa(maxListLimit))
			return
		}
		opts.Limit = n
	}
	scope := q.Get("scope")
	if scope != "" && scope != "local" && scope != "cluster" {
		writeError(w, http.StatusBadRequest, "scope must be local or cluster")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), infoTimeout)
	defer cancel()
	if a.s.cluster != nil && scope != "local" {
		reply(w)(a.s.listCluster(ctx, opts))
		return
	}
	reply(w)(a.s.listLocal(ctx, opts))
}

// listLocal is a page of this node's connections.
func (s *Server) listLocal(ctx context.Context, opts ListOptions) (int, any) {
	page, next, err := s.List(ctx, opts)
	switch {
	case errors.Is(err, ErrBadCursor):
		return errAnswer(http.StatusBadRequest, "bad cursor")
	case err != nil:
		return sendError(err)
	}
	out := listPage{Connections: make([]connJSON, len(page)), NextCursor: next}
	for i := range page {
		out.Connections[i] = s.basicJSON(&page[i])
	}
	return http.StatusOK, out
}

// PUT /v1/connections/{id}/topics/{topic}: 204.
func (a *admin) subscribe(w http.ResponseWriter, r *http.Request) {
	a.topicOp(w, r, verbSubscribe, (*Conn).Subscribe)
}

// DELETE /v1/connections/{id}/topics/{topic}: 204.
func (a *admin) unsubscribe(w http.ResponseWriter, r *http.Request) {
	a.topicOp(w, r, verbUnsubscribe, (*Conn).Unsubscribe)
}

func (a *admin) topicOp(w http.ResponseWriter, r *http.Request, verb byte, op func(*Conn, string) error) {
	t, ok := a.target(w, r)
	if !ok {
		return
	}
	topic := r.PathValue("topic")
	if t.c != nil {
		reply(w)(opTopic(t.c, topic, op))
		return
	}
	if topic == "" {
		writeError(w, http.StatusBadRequest, "empty topic")
		return
	}
	a.remote(w, r, t.node, verb, appendID(t.local, topic))
}

// opTopic subscribes or unsubscribes a connection of this node.
func opTopic(c *Conn, topic string, op func(*Conn, string) error) (int, any) {
	switch err := op(c, topic); {
	case errors.Is(err, ErrBadTopic):
		return errAnswer(http.StatusBadRequest, "empty topic")
	case err != nil:
		return sendError(err)
	}
	return http.StatusNoContent, nil
}

// POST /v1/drain: starts Server.Drain in the background and answers 202
// at once; 409 if a drain or shutdown has already started.
func (a *admin) drain(w http.ResponseWriter, _ *http.Request) {
	if a.s.Draining() {
		writeError(w, http.StatusConflict, "already draining")
		return
	}
	a.drains.Add(1)
	go func() {
		defer a.drains.Done()
		_ = a.s.Drain(a.drainCtx)
	}()
	writeJSON(w, http.StatusAccepted, map[string]any{
		"draining":    true,
		"connections": a.s.Stats().WSConns,
		"window":      a.s.cfg.DrainWindow.String(),
		"grace":       a.s.cfg.DrainGrace.String(),
	})
}

// GET /v1/stats: Server.Stats with snake_case keys (internal/stat).
func (a *admin) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, stat.JSON(a.s.Stats()))
}
