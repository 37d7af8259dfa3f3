package client

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Client is one logical connection that reconnects by itself. Its methods
// are safe from any goroutine.
type Client struct {
	url    string
	o      Options
	dialer websocket.Dialer

	ctx    context.Context // ends at Close; backoff sleeps wait on it
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	first  chan error    // Dial's answer: nil once open, or why not

	// Write state: wmu orders the writes on a connection and the
	// numbering of envelope sends with them. Lock order: wmu, then mu.
	wmu     sync.Mutex
	scratch []byte

	// Shared state, under mu.
	mu         sync.Mutex
	live       *websocket.Conn // the connection being served, if any
	dialStop   func()          // cancels the dial in progress, if any
	conn       *websocket.Conn // the connection Send writes to: live once ready
	envelope   bool            // conn speaks the envelope
	closed     bool
	queue      []queued
	queueBytes int
	// Envelope sends (docs/resume.md §6), under mu.
	tx, confirmed, evicted uint64 // sent, confirmed by the server, last evicted unconfirmed
	retained               []retainedMsg
	retainedBytes          int

	// Run state: only the run goroutine touches these.
	resumeOK   bool
	session    string
	rx         uint64 // server DATA received (§3.1)
	unacked    int    // DATA bytes since the last ACK
	buffer     int    // the server's --resume-buffer, from HELLO
	protocol   string
	attempt    int
	pendingMis *Missed
	rbuf       []byte
	sentFirst  bool
	inCallback atomic.Int32
}

type queued struct {
	t    MessageType
	data []byte
}

type retainedMsg struct {
	idx  uint64
	t    MessageType
	data []byte
}

// Dial connects to a ws:// or wss:// URL and returns once the first
// connection is open (with the envelope: once HELLO has arrived), retrying
// per o.Backoff meanwhile. ctx bounds that wait only; the client lives
// until Close, or until it gives up (o.OnClose says why).
func Dial(ctx context.Context, rawURL string, o Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, ErrBadURL
	}
	o.withDefaults()
	c := &Client{
		url:      rawURL,
		o:        o,
		done:     make(chan struct{}),
		first:    make(chan error, 1),
		resumeOK: o.Resume,
	}
	c.dialer = websocket.Dialer{
		NetDialContext:   o.NetDialContext,
		HandshakeTimeout: o.HandshakeTimeout,
		ReadBufferSize:   o.ReadBufferSize,
		WriteBufferPool:  writePool,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	select {
	case err := <-c.first:
		if err != nil {
			<-c.done
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
}

// writePool shares write buffers among all clients: an idle connection
// holds none (gorilla/websocket's BufferPool).
var writePool = &sync.Pool{}

// Send sends one message. While connected it writes it (and, with the
// envelope, keeps it until the server confirms it); while disconnected it
// queues a copy, or returns ErrQueueFull past the queue's bound. After
// Close it returns ErrClosed. data may be reused when Send returns.
func (c *Client) Send(t MessageType, data []byte) error {
	if t != Text && t != Binary {
		return ErrBadType
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	conn, env := c.conn, c.envelope
	if conn == nil {
		if len(c.queue) >= c.o.QueueMessages || len(data) > c.o.QueueBytes-c.queueBytes {
			c.mu.Unlock()
			return ErrQueueFull
		}
		c.queue = append(c.queue, queued{t, clone(data)})
		c.queueBytes += len(data)
		c.mu.Unlock()
		return nil
	}
	if env {
		c.retainLocked(t, clone(data))
	}
	c.mu.Unlock()
	if err := c.write(conn, env, t, data); err != nil {
		conn.NetConn().Close() // the reader notices and reconnects
		if env {
			return nil // retained: re-sent on resume if the server did not take it
		}
		return ErrConnLost
	}
	return nil
}

// write writes one message under wmu.
func (c *Client) write(conn *websocket.Conn, env bool, t MessageType, data []byte) error {
	_ = conn.SetWriteDeadline(time.Now().Add(c.o.WriteTimeout))
	if !env {
		return conn.WriteMessage(int(t), data)
	}
	w, err := conn.NextWriter(int(t))
	if err != nil {
		return err
	}
	if _, err = w.Write(dataPrefix); err == nil {
		_, err = w.Write(data)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// Close ends the client with 1000, which also ends its session on the
// server, and waits for its goroutine to finish (unless called from one of
// its callbacks). It returns an *EndError if messages were left unsent.
func (c *Client) Close() error { return c.CloseWith(1000, "") }

// CloseWith is Close with another close code (1000 or 3000-4999; other
// codes suspend a resumable session rather than end it) and reason.
func (c *Client) CloseWith(code int, reason string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wait()
		return ErrClosed
	}
	c.closed = true
	live, connected := c.live, c.conn != nil
	unsent := len(c.queue)
	unconfirmed := 0
	if !connected {
		unconfirmed = int(c.tx - c.confirmed)
	}
	c.queue, c.queueBytes = nil, 0
	stop := c.dialStop
	c.mu.Unlock()
	c.cancel()
	if stop != nil {
		stop()
	}
	if live != nil {
		// Our close frame, then up to a second for the server's answer
		// (RFC 6455 §7.1.2); the reader returns either way.
		_ = live.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = live.NetConn().SetReadDeadline(time.Now().Add(time.Second))
	}
	c.wait()
	if unsent > 0 || unconfirmed > 0 {
		return &EndError{Err: ErrClosed, Unsent: unsent, UnconfirmedSends: unconfirmed}
	}
	return nil
}

// Done is closed when the client has ended and its goroutine is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) wait() {
	if c.inCallback.Load() == 0 {
		<-c.done
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
