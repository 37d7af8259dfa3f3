package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"
	"unicode"

	"github.com/wsgate/wsgate/loop"
)

// The /v1/ API. Connection IDs are decimal strings, in paths and in JSON
// alike (they use all 64 bits: a JavaScript number would round them).

// infoTimeout bounds the wait for a loop to answer Info or List.
const infoTimeout = 5 * time.Second

// conn finds the connection of the {id} path value, or answers 404.
func (a *admin) conn(w http.ResponseWriter, r *http.Request) *Conn {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such connection")
		return nil
	}
	c := a.s.Lookup(id)
	if c == nil {
		writeError(w, http.StatusNotFound, "no such connection")
	}
	return c
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

// sendError answers for an error of Conn.Send.
func sendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrSlowConsumer):
		writeError(w, http.StatusTooManyRequests, "slow consumer: the connection's outbound queue is full")
	case errors.Is(err, ErrClosed):
		writeError(w, http.StatusNotFound, "connection closed")
	case errors.Is(err, loop.ErrInvalidUTF8):
		writeError(w, http.StatusBadRequest, "text message is not valid UTF-8 (send it as application/octet-stream)")
	case errors.Is(err, ErrMemoryBudget):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "memory budget exhausted: try again later")
	case errors.Is(err, ErrServerClosed):
		writeError(w, http.StatusServiceUnavailable, "server closed")
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// pushResult is the answer to a push.
type pushResult struct {
	Connections int `json:"connections"`      // targeted
	Sent        int `json:"sent"`             // queued for their clients
	Slow        int `json:"slow,omitempty"`   // refused by a full outbound queue
	Closed      int `json:"closed,omitempty"` // closed meanwhile
	Subscribers int `json:"subscribers,omitempty"`
}

// POST /v1/connections/{id}/messages: 202, 404, 413, 429.
func (a *admin) pushConn(w http.ResponseWriter, r *http.Request) {
	c := a.conn(w, r)
	if c == nil {
		return
	}
	op, data, ok := a.message(w, r)
	if !ok {
		return
	}
	if err := c.Send(op, data); err != nil {
		sendError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, pushResult{Connections: 1, Sent: 1})
}

// POST /v1/users/{user}/messages: 202 with counts; 400 for a text body
// that is not UTF-8.
func (a *admin) pushUser(w http.ResponseWriter, r *http.Request) {
	op, data, ok := a.message(w, r)
	if !ok {
		return
	}
	conns := a.s.UserConns(r.PathValue("user"), nil)
	res := pushResult{Connections: len(conns)}
	for _, c := range conns {
		switch err := c.Send(op, data); {
		case err == nil:
			res.Sent++
		case errors.Is(err, ErrSlowConsumer):
			res.Slow++
		case errors.Is(err, ErrClosed):
			res.Closed++
		default:
			sendError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusAccepted, res)
}

// POST /v1/topics/{topic}/messages: 202 with the subscriber count.
func (a *admin) pushTopic(w http.ResponseWriter, r *http.Request) {
	op, data, ok := a.message(w, r)
	if !ok {
		return
	}
	n, err := a.s.Publish(r.PathValue("topic"), op, data)
	if err != nil {
		sendError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, pushResult{Subscribers: n})
}

// DELETE /v1/connections/{id}?code=1000&reason=...: 202, the closing
// handshake has started. The code and reason may also come as JSON.
func (a *admin) closeConn(w http.ResponseWriter, r *http.Request) {
	c := a.conn(w, r)
	if c == nil {
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
	switch err := c.Close(StatusCode(req.Code), req.Reason); {
	case errors.Is(err, ErrBadCloseCode), errors.Is(err, loop.ErrInvalidUTF8):
		writeError(w, http.StatusBadRequest, "code "+strconv.Itoa(req.Code)+" may not be sent, or the reason is not UTF-8")
	case err != nil:
		sendError(w, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"id": c.IDString()})
	}
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

func basicJSON(ci *ConnInfo) connJSON {
	return connJSON{
		ID:          strconv.FormatUint(ci.ID, 10),
		RemoteAddr:  ci.Remote.String(),
		User:        ci.User,
		Subprotocol: ci.Subprotocol,
		ConnectedAt: ci.ConnectedAt.UTC(),
	}
}

// GET /v1/connections/{id}: details, topics and traffic.
func (a *admin) getConn(w http.ResponseWriter, r *http.Request) {
	c := a.conn(w, r)
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), infoTimeout)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		sendError(w, err)
		return
	}
	j := basicJSON(&info)
	j.Topics = info.Topics
	if j.Topics == nil {
		j.Topics = []string{}
	}
	j.MessagesIn, j.MessagesOut = &info.MessagesIn, &info.MessagesOut
	j.BytesIn, j.BytesOut = &info.BytesIn, &info.BytesOut
	if m, ok := c.Value().(*connMeta); ok {
		j.Meta = m.meta
	}
	writeJSON(w, http.StatusOK, j)
}

// maxListLimit bounds a page of GET /v1/connections.
const maxListLimit = 1000

// GET /v1/connections?user=&topic=&limit=&cursor=: a page of connections
// and the cursor of the next ("" after the last).
func (a *admin) listConns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := ListOptions{User: q.Get("user"), Topic: q.Get("topic"), Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			writeError(w, http.StatusBadRequest, "limit must be 1 to "+strconv.Itoa(maxListLimit))
			return
		}
		opts.Limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), infoTimeout)
	defer cancel()
	page, next, err := a.s.List(ctx, opts)
	switch {
	case errors.Is(err, ErrBadCursor):
		writeError(w, http.StatusBadRequest, "bad cursor")
		return
	case err != nil:
		sendError(w, err)
		return
	}
	out := struct {
		Connections []connJSON `json:"connections"`
		NextCursor  string     `json:"next_cursor"`
	}{Connections: make([]connJSON, len(page)), NextCursor: next}
	for i := range page {
		out.Connections[i] = basicJSON(&page[i])
	}
	writeJSON(w, http.StatusOK, out)
}

// PUT /v1/connections/{id}/topics/{topic}: 204.
func (a *admin) subscribe(w http.ResponseWriter, r *http.Request) {
	a.topicOp(w, r, (*Conn).Subscribe)
}

// DELETE /v1/connections/{id}/topics/{topic}: 204.
func (a *admin) unsubscribe(w http.ResponseWriter, r *http.Request) {
	a.topicOp(w, r, (*Conn).Unsubscribe)
}

func (a *admin) topicOp(w http.ResponseWriter, r *http.Request, op func(*Conn, string) error) {
	c := a.conn(w, r)
	if c == nil {
		return
	}
	switch err := op(c, r.PathValue("topic")); {
	case errors.Is(err, ErrBadTopic):
		writeError(w, http.StatusBadRequest, "empty topic")
	case err != nil:
		sendError(w, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
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

// GET /v1/stats: Server.Stats with snake_case keys.
func (a *admin) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, snakeFields(a.s.Stats()))
}

// snakeFields returns the exported fields of struct v by snake_case name,
// so that fields added to Stats appear without a change here.
func snakeFields(v any) map[string]any {
	rv := reflect.ValueOf(v)
	out := make(map[string]any, rv.NumField())
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.IsExported() {
			out[snake(f.Name)] = rv.Field(i).Interface()
		}
	}
	return out
}

// snake turns a Go name into snake_case: "BytesIn" → "bytes_in",
// "HTTPRequests" → "http_requests".
func snake(s string) string {
	r := []rune(s)
	var b []rune
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
				b = append(b, '_')
			}
			c = unicode.ToLower(c)
		}
		b = append(b, c)
	}
	return string(b)
}
