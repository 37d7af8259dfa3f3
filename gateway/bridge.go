package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/loop"
)

// The backend bridge: the Handler that carries client messages to the
// message hook and closed connections to the disconnect hook.

// bridge is the application when Config.Backend is set: each message goes
// to the backend, each close is reported to it.
type bridge struct{ b *backend }

func (bridge) OnOpen(*Conn) {}

// OnMessage posts the message to the message hook and sends a 200 answer
// back to the client. It runs on the worker pool, one message at a time
// per connection, so the connection's order holds end to end.
func (br bridge) OnMessage(c *Conn, op OpCode, data []byte) {
	b := br.b
	ctx, cancel := context.WithTimeout(b.msgCtx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/message", bytes.NewReader(data))
	if err != nil {
		return
	}
	if op == OpText {
		req.Header["Content-Type"] = contentText
	} else {
		req.Header["Content-Type"] = contentBinary
	}
	req.Header[HeaderConnectionID] = []string{c.IDString()}
	if u := c.User(); u != "" {
		req.Header[HeaderUser] = []string{u}
	}
	if m, ok := c.Value().(*connMeta); ok {
		req.Header[HeaderMeta] = []string{string(m.meta)}
	}
	resp, body, err := b.do(req, hookMessage, b.maxMessage)
	switch {
	case err != nil:
		b.warn("message hook failed", err)
		return
	case resp.StatusCode == http.StatusOK:
		if len(body) == 0 {
			return
		}
		reply := op
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			reply = opForContentType(ct)
		}
		if err := c.Send(reply, body); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrSlowConsumer) {
			b.warn("message hook answer not sent", err)
		}
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	default:
		b.warn("message hook failed", fmt.Errorf("status %d", resp.StatusCode))
	}
}

var (
	contentText   = []string{"text/plain; charset=utf-8"}
	contentBinary = []string{"application/octet-stream"}
)

// opForContentType maps a media type to an opcode: text for text/* and
// JSON (UTF-8 text by RFC 8259), binary for everything else.
func opForContentType(ct string) OpCode {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return OpText
	}
	return OpBinary
}

// disconnectEvent is the disconnect hook's JSON body.
type disconnectEvent struct {
	ID          string          `json:"id"`
	User        string          `json:"user,omitempty"`
	Code        int             `json:"code"`
	Reason      string          `json:"reason"`
	RemoteAddr  string          `json:"remote_addr"`
	ConnectedAt time.Time       `json:"connected_at"`
	MessagesIn  int64           `json:"messages_in"`
	MessagesOut int64           `json:"messages_out"`
	BytesIn     int64           `json:"bytes_in"`
	BytesOut    int64           `json:"bytes_out"`
	Meta        json.RawMessage `json:"meta,omitempty"`
}

// OnClose queues the disconnect hook; a full queue drops it, counted.
// OnResume posts the resumed hook, with Config.BackendResumeHook: JSON
// {"id", "user", "remote_addr", "meta"} of the session's connection, on
// the worker pool in order with its messages, once (no retry).
func (br bridge) OnResume(c *Conn) {
	b := br.b
	if !b.resumeHook {
		return
	}
	ev := resumedEvent{ID: c.IDString(), User: c.User(), RemoteAddr: c.RemoteAddr().String()}
	if m, ok := c.Value().(*connMeta); ok {
		ev.Meta = m.meta
	}
	body, _ := json.Marshal(&ev)
	ctx, cancel := context.WithTimeout(b.msgCtx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/resumed", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, _, err := b.do(req, hookResumed, maxResumedBody)
	switch {
	case err != nil:
		b.warn("resumed hook failed", err)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		b.warn("resumed hook failed", fmt.Errorf("status %d", resp.StatusCode))
	}
}

// maxResumedBody bounds the resumed hook's answer, which is not used.
const maxResumedBody = 4 << 10

// resumedEvent is the resumed hook's body.
type resumedEvent struct {
	ID         string          `json:"id"`
	User       string          `json:"user,omitempty"`
	RemoteAddr string          `json:"remote_addr"`
	Meta       json.RawMessage `json:"meta,omitempty"`
}

func (br bridge) OnClose(c *Conn, err error) {
	if ce, ok := err.(*codec.CloseError); ok && ce.Reason == loop.SessionMovedReason {
		return // the session lives on, on another node (resume_cluster.go)
	}
	b := br.b
	info, _ := c.FinalInfo()
	ev := disconnectEvent{
		ID:          c.IDString(),
		User:        c.User(),
		Code:        int(codec.CloseCode(err)),
		RemoteAddr:  c.RemoteAddr().String(),
		ConnectedAt: c.ConnectedAt().UTC(),
		MessagesIn:  info.MessagesIn,
		MessagesOut: info.MessagesOut,
		BytesIn:     info.BytesIn,
		BytesOut:    info.BytesOut,
	}
	if ce, ok := err.(*codec.CloseError); ok {
		ev.Reason = ce.Reason
	}
	if m, ok := c.Value().(*connMeta); ok {
		ev.Meta = m.meta
	}
	body, _ := json.Marshal(&ev)
	if b.closed.Load() {
		b.dropped.Add(1)
		return
	}
	select {
	case b.queue <- body:
	default:
		b.dropped.Add(1)
	}
}

// sender posts queued disconnect hooks until shutdown has flushed the
// queue.
func (b *backend) sender() {
	defer b.wg.Done()
	for {
		select {
		case body := <-b.queue:
			b.disconnect(body)
		case <-b.flush:
			for {
				select {
				case body := <-b.queue:
					b.disconnect(body)
				default:
					return
				}
			}
		}
	}
}

// disconnect posts one disconnect hook, retrying a failure (network,
// timeout, 5xx, 429) up to b.retries times with doubling delays.
func (b *backend) disconnect(body []byte) {
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if b.sendCtx.Err() != nil {
			b.dropped.Add(1)
			return
		}
		ctx, cancel := context.WithTimeout(b.sendCtx, b.timeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/disconnect", bytes.NewReader(body))
		if err != nil {
			cancel()
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, _, err := b.do(req, hookDisconnect, 64<<10)
		cancel()
		if err == nil && (resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests) {
			return // delivered, or refused for good
		}
		if attempt >= b.retries {
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			b.warn("disconnect hook failed", err)
			return
		}
		select {
		case <-time.After(delay):
		case <-b.sendCtx.Done():
		}
		delay *= 2
	}
}
