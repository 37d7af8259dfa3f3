package client

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// run is the client's one goroutine: it dials, serves the connection
// (reading, with the callbacks), waits out the backoff, and again, until
// Close or a final answer.
func (c *Client) run() {
	defer close(c.done)
	var end error
	for {
		cause, opened := c.connectOnce()
		if c.isClosed() {
			break
		}
		final := false
		var hint time.Duration
		var ce *CloseError
		var he *HandshakeError
		switch {
		case errors.As(cause, &he):
			hint = he.RetryAfter
			final = he.final()
		case errors.As(cause, &ce):
			hint, _ = RetryHint(ce.Reason)
			if ce.Code == websocket.ClosePolicyViolation {
				c.forget("taken over") // docs/resume.md §5.1
			}
			final = opened && !c.o.ShouldReconnect(ce.Code, ce.Reason)
		}
		if !final && c.o.Backoff.MaxAttempts > 0 && c.attempt >= c.o.Backoff.MaxAttempts {
			final, cause = true, errors.Join(ErrGaveUp, cause)
		}
		if final {
			end = c.giveUp(cause)
			break
		}
		var delay time.Duration
		if hint > 0 {
			delay = c.o.Backoff.hinted(hint, c.o.MaxRetryAfter)
		} else {
			delay = c.o.Backoff.Delay(c.attempt)
		}
		c.attempt++
		if f := c.o.OnReconnecting; f != nil {
			r := Reconnect{Attempt: c.attempt, Delay: delay, Cause: cause, RetryAfter: min(hint, c.o.MaxRetryAfter)}
			c.callback(func() { f(r) })
		}
		_ = c.o.Backoff.Sleep(c.ctx, delay) // ends early at Close
	}
	c.signalFirst(end)
	if f := c.o.OnClose; f != nil {
		c.callback(func() { f(end) })
	}
}

// giveUp ends the client by itself: everything queued is counted, then
// dropped.
func (c *Client) giveUp(cause error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	e := &EndError{Err: cause, Unsent: len(c.queue), UnconfirmedSends: int(c.tx - c.confirmed)}
	c.queue, c.queueBytes = nil, 0
	c.cancel()
	return e
}

// signalFirst answers Dial once.
func (c *Client) signalFirst(err error) {
	if !c.sentFirst {
		c.sentFirst = true
		if err == nil && c.isClosed() {
			err = ErrClosed
		}
		c.first <- err
	}
}

// callback runs f with the client marked as inside a callback, so that a
// Close from f does not wait for this goroutine.
func (c *Client) callback(f func()) {
	c.inCallback.Add(1)
	defer c.inCallback.Add(-1)
	f()
}

// connectOnce dials and, if the upgrade succeeds, serves the connection
// until it ends. opened says whether the upgrade succeeded.
func (c *Client) connectOnce() (cause error, opened bool) {
	offer := offerProtocols(c.o.Protocols, c.resumeOK, c.session, c.rx)
	d := c.dialer
	d.Subprotocols = offer
	// A context of its own per dial, not one derived from c.ctx: a
	// derived one would leave a children map in c.ctx for the client's
	// lifetime (a few hundred bytes per client).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed, false
	}
	c.dialStop = cancel
	c.mu.Unlock()
	conn, resp, err := d.DialContext(ctx, c.url, c.o.Header)
	c.mu.Lock()
	c.dialStop = nil
	c.mu.Unlock()
	if err != nil {
		if resp != nil && resp.StatusCode != 101 {
			ra, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			return &HandshakeError{Status: resp.StatusCode, RetryAfter: ra}, false
		}
		return err, false
	}
	defer conn.NetConn().Close()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed, true
	}
	c.live = conn
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.live, c.conn, c.envelope = nil, nil, false
		c.mu.Unlock()
	}()
	if sel := conn.Subprotocol(); sel != "" && !slices.Contains(offer, sel) {
		return c.protocolError(conn, "the server chose a subprotocol that was not offered", false), true
	}
	return c.serve(conn), true
}
