package loop

import (
	"context"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/timerwheel"
)

// cmdKind says what a command asks the loop to do.
type cmdKind uint8

const (
	cmdSend         cmdKind = iota + 1 // write buf, an encoded frame, to c
	cmdClose                           // start the closing handshake on c
	cmdCloseAll                        // close every connection on the loop
	cmdSubscribe                       // add c to topic
	cmdUnsubscribe                     // remove c from the topic named reason
	cmdPublish                         // write shared to topic's subscribers (all if nil)
	cmdFunc                            // run fn on the loop
	cmdResume                          // c's mailbox is low: read its input again (inbound.go)
	cmdFailNow                         // c's handler is done: send the held-back close (close.go)
	cmdSessionFlush                    // write what c's session has not written yet (session_frames.go)
)

// command is work handed to a loop by another goroutine.
type command struct {
	c      *Conn
	buf    *buffer
	topic  *topic
	shared *sharedFrame
	fn     func()
	reason string
	n      int // bytes reserved in c's outbound queue
	code   StatusCode
	kind   cmdKind
	cause  closeCause
}

// eventLoop is wsgate's state for one gnet event loop. Fields below mu are
// shared with other goroutines; the rest are loop-owned.
type eventLoop struct {
	srv *Server
	el  gnet.EventLoop
	idx int // position in Server.loopList

	// Loop-owned.
	spare    []command // the inbox's second buffer, swapped on each drain
	retry    []*Conn   // connections whose dispatch met a full pool
	flushing []*Conn   // connections with bytes in gnet's outbound buffer
	topics   map[*topic]*loopTopic
	iov      [][]byte // frames of a publish run
	// mailboxWindow is the deepest mailbox since the last tick,
	// inboundWindow the most bytes a connection held inbound.
	mailboxWindow int
	inboundWindow int
	reparse       []*Conn // resumed connections with input to parse (inbound.go)
	pauseFailed   bool    // a pause was refused: logged once
	scratch       []byte  // for control frames and handshake responses
	req           codec.Request
	table         connTable
	stats         counters
	budget        loopBudget  // the loop's side of the memory budget (budget.go)
	deflate       loopDeflate // compression engine (deflate.go)
	sess          sessionLoop // scratch for resumable sessions (session_frames.go)
	wheel         *timerwheel.Wheel[*Conn]
	lag           lagTracker // how late its ticks run (lag.go)
	writeCalls    int64      // write and writev calls, for tests (coalesce.go)
	sends         []command  // a run of sends being gathered (coalesce.go)
	// pendingWakeFd is the socketpair's write end until the read end is
	// registered and wakeFd publishes it; -1 otherwise.
	pendingWakeFd int

	// The inbox: commands from other goroutines, guarded by mu.
	mu    sync.Mutex
	inbox []command
	shut  bool // no more commands are taken

	// Waking the loop. wakeFd is the write end of a socketpair whose read
	// end is registered in the loop as an ordinary connection: writing one
	// byte makes the loop run drain, with no allocation (gnet's Execute
	// and Wake allocate on every call). Until the read end is registered,
	// wake falls back to Execute. armed is set from the first wake until
	// the drain that serves it, so a burst of commands costs one write.
	wakeFd     atomic.Int32
	armed      atomic.Bool
	wanted     atomic.Bool // work is queued for drain (see wake)
	busy       atomic.Bool // the loop is in OnTraffic of a client connection
	tickDue    atomic.Bool
	retryArmed atomic.Bool  // retry is not empty
	tickWanted atomic.Bool  // the wheel or a gauge needs ticks
	writers    atomic.Int32 // wakers between reading wakeFd and writing it
	wakeClosed atomic.Bool  // set before wakeFd's descriptor is closed
}

// wakeTag marks the loop's wake connection in gnet's connection context.
type wakeTag struct{ l *eventLoop }

func newEventLoop(srv *Server, el gnet.EventLoop) *eventLoop {
	l := &eventLoop{srv: srv, el: el, scratch: make([]byte, 0, 1024), pendingWakeFd: -1}
	l.wakeFd.Store(-1)
	l.initTimers()
	return l
}

// startWaker creates the loop's socketpair and enrolls its read end in the
// loop. It runs on the loop and does not wait: registration completes
// asynchronously, and OnOpen of the wake connection publishes wakeFd.
func (l *eventLoop) startWaker() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socketpair", err)
	}
	f := os.NewFile(uintptr(fds[0]), "wsgate-wake")
	nc, err := net.FileConn(f) // dups fds[0]
	_ = f.Close()
	if err != nil {
		_ = unix.Close(fds[1])
		return err
	}
	// Enroll dups nc's descriptor and closes nc once registered.
	ctx := gnet.NewContext(context.Background(), &wakeTag{l: l})
	if _, err := l.el.Enroll(ctx, nc); err != nil {
		_ = nc.Close()
		_ = unix.Close(fds[1])
		return err
	}
	l.pendingWakeFd = fds[1]
	return nil
}

// wakerOpened runs on the loop when the wake connection is registered.
func (l *eventLoop) wakerOpened() {
	l.wakeFd.Store(int32(l.pendingWakeFd))
	l.pendingWakeFd = -1
}

// enqueue hands cmd to the loop. It reports false if the loop takes no more
// commands (the server is shutting down); the caller keeps cmd's buffer.
func (l *eventLoop) enqueue(cmd command) bool {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return false
	}
	l.inbox = append(l.inbox, cmd)
	l.mu.Unlock()
	l.wake()
	return true
}

var wakeByte = [1]byte{1}

// wake makes the loop run drain soon. Safe from any goroutine.
//
// While the loop is inside OnTraffic for a client connection (busy), no
// byte is written at all: the loop drains when that callback returns. Under
// load, when the loop is almost always busy, replies cost no wakeup system
// call. wanted and busy are a Dekker pair: wake stores wanted then loads
// busy; the loop stores busy=false then loads wanted; with sequentially
// consistent atomics one of them sees the other.
func (l *eventLoop) wake() {
	l.wanted.Store(true)
	if l.busy.Load() {
		return
	}
	if l.armed.Swap(true) {
		return // a wake is already on its way and drain has not started
	}
	// writers fences the descriptor against close: closeWaker sets closed,
	// then waits for writers to reach zero before closing it.
	l.writers.Add(1)
	if !l.wakeClosed.Load() {
		if fd := l.wakeFd.Load(); fd >= 0 {
			_, err := unix.Write(int(fd), wakeByte[:])
			l.writers.Add(-1)
			if err == nil || err == unix.EAGAIN {
				return // EAGAIN: the pair is full of wakes already
			}
		} else {
			l.writers.Add(-1)
		}
		_ = l.el.Execute(context.Background(), l)
		return
	}
	l.writers.Add(-1)
}

// Run implements gnet.Runnable for the Execute fallback of wake.
func (l *eventLoop) Run(context.Context) error {
	l.drain()
	return nil
}

// drain runs on the loop: every queued command, the timer tick if one is
// due, then dispatch retries. Commands go first so that frames queued for a
// connection are written before a close that a deadline starts.
func (l *eventLoop) drain() {
	l.armed.Store(false)
	l.wanted.Store(false)
	l.mu.Lock()
	batch := l.inbox
	l.inbox = l.spare[:0]
	l.mu.Unlock()
	for i := 0; i < len(batch); i++ {
		if batch[i].kind == cmdPublish {
			j := i + 1
			for j < len(batch) && j-i < maxCoalesce && batch[j].kind == cmdPublish && batch[j].topic == batch[i].topic {
				j++
			}
			l.publishRun(batch[i:j])
			clear(batch[i:j])
			i = j - 1
			continue
		}
		if batch[i].kind == cmdSend {
			if n := l.gatherSends(batch, i); n > 1 {
				l.sendRun(l.sends[:n]) // one writev (coalesce.go)
				continue
			}
			l.sends[0] = command{}
		}
		l.exec(&batch[i])
		batch[i] = command{}
	}
	l.spare = batch[:0]
	if l.tickDue.Swap(false) {
		l.tick()
	}
	if len(l.retry) > 0 {
		l.retryDispatch()
	}
	if len(l.reparse) > 0 {
		l.resumeParse()
	}
}

// exec carries out one command on the loop.
func (l *eventLoop) exec(cmd *command) {
	c := cmd.c
	switch cmd.kind {
	case cmdSend:
		c.outQueued.Add(-int64(cmd.n))
		l.releaseSend(cmd.n)
		if c.state == stateOpen {
			frame := l.outFrame(c, cmd.buf.b) // compressed if negotiated (deflate.go)
			if l.write(c, frame) {
				c.lastData = l.srv.now()
				l.stats.messagesOut.Add(1)
				c.msgsOut++
				c.bytesOut += int64(len(frame))
				l.wrote(c)
			}
		} else {
			l.stats.droppedOut.Add(1)
			l.stats.droppedOutBytes.Add(int64(len(cmd.buf.b)))
		}
		putBuffer(cmd.buf)
	case cmdClose:
		if c.state == stateOpen {
			l.startClose(c, cmd.code, cmd.reason, cmd.cause)
		}
	case cmdCloseAll:
		l.closeAll(cmd.code, cmd.reason)
	case cmdFunc:
		cmd.fn()
	case cmdSubscribe:
		l.subscribe(c, cmd.topic)
	case cmdUnsubscribe:
		if c.state != stateClosed || keptAnchor(c) {
			l.unsubscribe(c, cmd.reason)
		}
	case cmdResume:
		l.resumeIn(c)
	case cmdFailNow:
		l.failPendingNow(c)
	case cmdSessionFlush:
		l.flushSession(c)
	}
}

// shutdown stops the inbox and returns what was still queued, so the
// caller can release its buffers.
func (l *eventLoop) shutdown() {
	l.mu.Lock()
	l.shut = true
	batch := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for i := range batch {
		if batch[i].kind == cmdSend {
			l.releaseSend(batch[i].n)
		}
		putBuffer(batch[i].buf)
		if batch[i].shared != nil {
			batch[i].shared.release()
		}
		if batch[i].kind == cmdSubscribe {
			l.srv.topics.release(batch[i].topic, l.idx, false)
		}
	}
}

// closeWaker closes the socketpair's write end once no waker can be
// writing to it. The read end belongs to gnet, which closes it with the
// engine.
func (l *eventLoop) closeWaker() {
	l.wakeClosed.Store(true)
	for l.writers.Load() != 0 {
		runtime.Gosched()
	}
	if fd := l.wakeFd.Swap(-1); fd >= 0 {
		_ = unix.Close(int(fd))
	}
	if l.pendingWakeFd >= 0 {
		_ = unix.Close(l.pendingWakeFd)
		l.pendingWakeFd = -1
	}
}
