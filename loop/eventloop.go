package loop

import (
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/timerwheel"
)

// loopRegistry finds wsgate's state of each gnet loop. A loop creates its
// own on first use (loopOf) under loopMu, which also serialises appends to
// loopList; loops and loopList are read by anyone without a lock.
type loopRegistry struct {
	loops    sync.Map // gnet.EventLoop → *eventLoop
	loopList atomic.Pointer[[]*eventLoop]
	loopMu   sync.Mutex
}

// eventLoop is wsgate's state for one gnet event loop. Fields below mu are
// shared with other goroutines; the rest are loop-owned.
type eventLoop struct {
	srv *Server
	el  gnet.EventLoop
	idx int // position in Server.loopList

	// Loop-owned.
	spare    []command // the inbox's second buffer, swapped on each run
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
	wheel         *timerwheel.Wheel[struct{}]
	lag           lagTracker // how late its ticks run (lag.go)
	writeCalls    int64      // write and writev calls, for tests (coalesce.go)
	// fake stands for every gnet connection of a loop that a test runs
	// without gnet (Conn.gc); nil otherwise.
	fake  gnet.Conn
	sends []command // a run of sends being gathered (coalesce.go)
	// pendingWakeFd is the socketpair's write end until the read end is
	// registered and wakeFd publishes it; -1 otherwise.
	pendingWakeFd int

	// The inbox: commands from other goroutines, guarded by mu.
	mu    sync.Mutex
	inbox []command
	shut  bool // no more commands are taken

	// Waking the loop. wakeFd is the write end of a socketpair whose read
	// end is registered in the loop as an ordinary connection: writing one
	// byte makes the loop run its inbox (runInbox), with no allocation (gnet's Execute
	// and Wake allocate on every call). Until the read end is registered,
	// wake falls back to Execute. armed is set from the first wake until
	// the run that serves it, so a burst of commands costs one write.
	wakeFd atomic.Int32
	armed  atomic.Bool
	wanted atomic.Bool // work is queued for runInbox (see wake)
	busy   atomic.Bool // the loop is in OnTraffic of a client connection
	// congested is set when a write leaves a connection's queue over half
	// Config.MaxOutbound, and cleared once none is (pacing.go).
	congested  atomic.Bool
	tickDue    atomic.Bool
	retryArmed atomic.Bool  // retry is not empty
	tickWanted atomic.Bool  // the wheel or a gauge needs ticks
	writers    atomic.Int32 // wakers between reading wakeFd and writing it
	wakeClosed atomic.Bool  // set before wakeFd's descriptor is closed
}

func newEventLoop(srv *Server, el gnet.EventLoop) *eventLoop {
	l := &eventLoop{srv: srv, el: el, scratch: make([]byte, 0, 1024), pendingWakeFd: -1}
	l.wakeFd.Store(-1)
	l.initTimers()
	return l
}
