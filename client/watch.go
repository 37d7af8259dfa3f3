package client

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// watch detects a dead connection by silence: no frame for interval +
// timeout closes the TCP connection, and the reader returns ErrSilence.
// With probe (plain connections) it pings after interval of silence. One
// runtime timer, re-armed lazily for the remainder when it fires early,
// as Netty's idle handler does: reading a frame only stores a time.
type watch struct {
	conn              *websocket.Conn
	writeTimeout      time.Duration
	interval, timeout time.Duration
	probe             bool

	last   atomic.Int64 // nanoseconds since epoch, of the last frame
	pinged atomic.Bool
	dead   atomic.Bool

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

var epoch = time.Now()

func newWatch(conn *websocket.Conn, writeTimeout time.Duration) *watch {
	w := &watch{conn: conn, writeTimeout: writeTimeout}
	w.touch()
	return w
}

func (w *watch) touch() {
	w.last.Store(int64(time.Since(epoch)))
	w.pinged.Store(false)
}

func (w *watch) start() {
	if w.interval <= 0 {
		return // the server sends no heartbeat: nothing to measure
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(w.next(), w.fire)
}

func (w *watch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.t != nil {
		w.t.Stop()
	}
}

// next is the wait until the next decision, and takes it when due.
func (w *watch) next() time.Duration {
	quiet := time.Since(epoch) - time.Duration(w.last.Load())
	if quiet >= w.interval+w.timeout {
		w.dead.Store(true)
		w.conn.NetConn().Close() // no closing handshake across a dead path
		return 0
	}
	wait := w.interval + w.timeout - quiet
	if w.probe {
		if quiet < w.interval {
			wait = w.interval - quiet
		} else if !w.pinged.Swap(true) {
			_ = w.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(w.writeTimeout))
		}
	}
	return max(wait, time.Millisecond)
}

func (w *watch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.dead.Load() {
		return
	}
	if d := w.next(); !w.dead.Load() {
		w.t.Reset(d)
	}
}
