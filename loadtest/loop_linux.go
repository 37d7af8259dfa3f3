package main

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/wsgate/wsgate/codec"
	"golang.org/x/sys/unix"
)

// loop is one event loop: an epoll instance, a timerfd for sub-millisecond
// wake-ups, an eventfd the runner writes on a phase change, one read buffer and one write scratch shared by all of its
// connections, and a heap of per-connection deadlines. Only the loop's own
// goroutine touches anything here except ctr (atomics, read by the runner)
// and, after the goroutine has returned, the maps and histograms.
type loop struct {
	r   *runner
	id  int
	epf int
	tfd int
	efd int // eventfd: the runner's phase changes

	events []unix.EpollEvent
	rbuf   []byte      // one read buffer for every connection of the loop
	wbuf   []byte      // frame scratch
	tmpl   []byte      // payload template; its first 8 bytes get the timestamp
	z      loopDeflate // --compression (deflate_linux.go)
	rng    *rand.Rand  // backoff jitter
	resp   codec.Response

	conns []conn  // this loop's share; index = epoll data
	fast  []int32 // indices of connections that read
	slow  []int32 // indices of connections that stop reading
	pub   []int32 // fanout: the publisher, if this loop holds it
	tm    timerHeap
	armed int64 // deadline the timerfd is armed for; 0 when none
	busy  bool  // the last wait returned events: poll before blocking

	// Phase state.
	phase      int32
	rampStart  int64
	rampEvery  float64 // ns between opens on this loop
	maxPending int64   // this loop's share of --max-pending; 0: none
	rampFirst  int64   // first attempt of the ramp
	rampLast   int64   // last upgrade completed during the ramp
	nextOpen   int
	fastSched  schedule
	slowSched  schedule
	dropAt     int64 // storm, drop mode; 0 when done or not a storm

	// Close phase: when this loop's scaled wait ends, and when an answer
	// to one of its close frames last arrived.
	closeDeadline   int64
	lastCloseAnswer int64

	// Results.
	ctr         counters
	errs        map[string]int64
	closeCodes  map[string]int64
	slowCodes   map[string]int64
	lat         *hdrhistogram.Histogram
	connectHist *hdrhistogram.Histogram
	recovery    *hdrhistogram.Histogram
	closeHist   *hdrhistogram.Histogram
}

// Timer kinds.
const (
	tmHandshake = iota // connect plus upgrade deadline
	tmReopen           // storm: reconnect after backoff
	tmCloseWait        // our close frame is unanswered
)

// rbufSize is the per-loop read buffer: one read takes up to this much.
const rbufSize = 64 << 10

// opensPerPass bounds the connects one pass of the loop starts, so that a
// loop that fell behind reads its sockets (and answers pings) between
// bursts of opens rather than after them.
const opensPerPass = 64

// Event data of the loop's own descriptors (connections use their index).
const (
	evTimer = -1
	evWake  = -2
)

// maxOut bounds what a fast connection may queue in user space when its
// socket would block; past it, messages are dropped and counted.
const maxOut = 8 << 20

func newLoop(r *runner, id int, gids []int) (*loop, error) {
	epf, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(epf)
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epf)
		unix.Close(tfd)
		return nil, err
	}
	for _, d := range []struct{ fd, data int }{{tfd, evTimer}, {efd, evWake}} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(d.data)}
		if err := unix.EpollCtl(epf, unix.EPOLL_CTL_ADD, d.fd, &ev); err != nil {
			unix.Close(epf)
			unix.Close(tfd)
			unix.Close(efd)
			return nil, err
		}
	}
	cfg := r.cfg
	l := &loop{
		r: r, id: id, epf: epf, tfd: tfd, efd: efd,
		events:      make([]unix.EpollEvent, 256),
		rbuf:        make([]byte, rbufSize),
		tmpl:        make([]byte, max(cfg.size, cfg.slowSize)),
		rng:         rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		conns:       make([]conn, len(gids)),
		errs:        map[string]int64{},
		closeCodes:  map[string]int64{},
		slowCodes:   map[string]int64{},
		lat:         newHist(histLatency),
		connectHist: newHist(histConnect),
		recovery:    newHist(histRecovery),
		closeHist:   newHist(histClose),
	}
	for i := range l.tmpl {
		l.tmpl[i] = byte('a' + i%26)
	}
	if cfg.compression {
		fillJSON(l.tmpl)
	}
	for i, g := range gids {
		c := &l.conns[i]
		c.fd = -1
		c.gid = uint32(g)
		c.idx = int32(i)
		c.slow = cfg.scenario == scSlow && isSlow(g, cfg.slowShare)
		if c.slow {
			l.slow = append(l.slow, int32(i))
			l.ctr.add(cSlowConns, 1)
		} else {
			l.fast = append(l.fast, int32(i))
		}
	}
	return l, nil
}

// isSlow spreads the slow share evenly over the global connection indices.
func isSlow(g int, share float64) bool {
	return share > 0 && math.Floor(float64(g+1)*share) > math.Floor(float64(g)*share)
}

func (l *loop) errorf(cause string) {
	l.errs[cause]++
	l.ctr.add(cErrors, 1)
}

// wake makes the loop's epoll_wait return; any goroutine may call it.
func (l *loop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(l.efd, one[:])
}

// run is the loop's goroutine. Each pass handles what the sockets have
// first and the loop's own work (opens, scheduled sends, timers) after, so
// that a loop that was starved of CPU answers the server's pings and reads
// the upgrade responses already waiting before it expires anyone's
// deadline or starts more connects.
func (l *loop) run() {
	defer l.closeAll()
	for l.pass() {
	}
}

// pass is one turn of the loop: wait for the sockets or the next deadline,
// handle what the sockets have, then run what is due. It reports false
// when the run is over or epoll failed.
func (l *loop) pass() bool {
	var tbuf [8]byte
	now := l.r.now()
	if ph := l.r.phase.Load(); ph != l.phase {
		l.enter(ph, now)
		if ph == phaseStop {
			return false
		}
	}
	// Sleep until the next deadline, or until a socket or the runner has
	// something: no periodic wake-up while nothing is due.
	timeout := -1
	if next, ok := l.nextDeadline(); ok {
		switch d := next - now; {
		case d <= 0:
			timeout = 0
		case d < 50e6:
			// epoll_wait counts milliseconds; the timerfd is exact.
			if l.armed != next {
				_ = unix.TimerfdSettime(l.tfd, 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(d)}, nil)
				l.armed = next
			}
		default:
			timeout = int((d + 1e6 - 1) / 1e6)
		}
	}
	// After a batch of events, poll first with a raw call that cannot block
	// (syscall_linux.go); block, scheduler-aware, only when nothing is ready.
	var n int
	var err error
	if timeout == 0 || l.busy {
		n, err = pollNow(l.epf, l.events)
	}
	if n == 0 && err == nil && timeout != 0 {
		n, err = unix.EpollWait(l.epf, l.events, timeout)
	}
	l.busy = n > 0
	if err != nil && err != unix.EINTR {
		l.errorf("epoll: " + errnoName(err))
		return false
	}
	for i := 0; i < n; i++ {
		ev := &l.events[i]
		switch ev.Fd {
		case evTimer:
			_, _ = unix.Read(l.tfd, tbuf[:])
			l.armed = 0
			continue
		case evWake:
			_, _ = unix.Read(l.efd, tbuf[:])
			continue
		}
		c := &l.conns[ev.Fd]
		if c.gen != uint32(ev.Pad) || c.fd < 0 {
			continue // an event for a socket closed earlier in this batch
		}
		l.event(c, ev.Events)
	}
	if l.r.phase.Load() == l.phase {
		l.tick(l.r.now())
	}
	return true
}

// tick runs whatever is due: ramp opens, scheduled sends, a storm drop and
// expired timers.
func (l *loop) tick(now int64) {
	if l.phase == phaseRamp {
		for k := 0; k < opensPerPass && l.nextOpen < len(l.conns) && l.rampStart+int64(float64(l.nextOpen)*l.rampEvery) <= now; k++ {
			if l.maxPending > 0 && l.ctr[cPending].Load() >= l.maxPending {
				// Behind schedule: the ramp resumes as attempts finish,
				// which makes a high --ramp a closed loop on upgrades.
				break
			}
			l.open(&l.conns[l.nextOpen], now)
			l.nextOpen++
		}
	}
	l.tickSchedules(now)
	if l.dropAt != 0 && now >= l.dropAt {
		l.dropAt = 0
		l.stormDrop(now)
	}
	for len(l.tm) > 0 && l.tm[0].at <= now {
		t := l.tm.pop()
		c := &l.conns[t.idx]
		if c.gen != t.gen {
			continue
		}
		switch t.kind {
		case tmHandshake:
			switch c.state {
			case stConnecting: // no SYN-ACK yet: the listen queue, or a dropped SYN
				l.fail(c, "connect: timeout", now)
			case stHandshake: // connected, no complete 101 yet
				l.fail(c, "handshake: timeout", now)
			}
		case tmReopen:
			switch {
			case c.state == stIdle && c.retrying:
				l.retryDue(c, t, now)
			case c.state == stIdle && l.reconnecting():
				l.open(c, now)
			}
		case tmCloseWait:
			if c.state != stClosing {
				continue
			}
			// While the server is still answering this loop's closes it
			// is slow, not silent: wait on, up to the scaled cap.
			if again := l.lastCloseAnswer + int64(closeWait); again > now && now < l.closeDeadline {
				l.tm.push(timer{at: min(again, l.closeDeadline), idx: t.idx, gen: t.gen, kind: tmCloseWait})
				continue
			}
			l.ctr.add(cCloseUnanswered, 1)
			l.endClosed(c)
		}
	}
}

// nextDeadline is the earliest time tick has work, if any: the loop sleeps
// without a timeout otherwise (the runner wakes it on a phase change).
func (l *loop) nextDeadline() (int64, bool) {
	next, ok := int64(math.MaxInt64), false
	at := func(t int64) {
		next, ok = min(next, t), true
	}
	if l.phase == phaseRamp && l.nextOpen < len(l.conns) &&
		(l.maxPending == 0 || l.ctr[cPending].Load() < l.maxPending) {
		at(l.rampStart + int64(float64(l.nextOpen)*l.rampEvery))
	}
	if l.fastSched.on {
		at(l.fastSched.due())
	}
	if l.slowSched.on {
		at(l.slowSched.due())
	}
	if l.dropAt != 0 {
		at(l.dropAt)
	}
	// Timers are never removed (see timer): drop the ones at the top that
	// no longer matter, rather than waking up for each of them (an
	// upgrade's handshake timer outlives the upgrade by the whole
	// handshake timeout).
	for len(l.tm) > 0 && l.stale(l.tm[0]) {
		l.tm.pop()
	}
	if len(l.tm) > 0 {
		at(l.tm[0].at)
	}
	return next, ok
}

// stale reports whether t would do nothing when it fires.
func (l *loop) stale(t timer) bool {
	c := &l.conns[t.idx]
	if c.gen != t.gen {
		return true
	}
	switch t.kind {
	case tmHandshake:
		return c.state != stConnecting && c.state != stHandshake
	case tmReopen:
		return c.state != stIdle
	case tmCloseWait:
		return c.state != stClosing
	}
	return false
}

// sendData sends one data message of size bytes stamped with ts.
func (l *loop) sendData(c *conn, size int, ts int64) {
	binary.LittleEndian.PutUint64(l.tmpl, uint64(ts))
	l.wbuf = l.appendData(l.wbuf[:0], l.tmpl[:size])
	if !l.write(c, l.wbuf) {
		return
	}
	if c.slow {
		l.ctr.add(cSlowSent, 1)
		return
	}
	c.inflight++
	l.ctr.add(cSent, 1)
	l.ctr.add(cInflight, 1)
}

func (l *loop) closeAll() {
	for i := range l.conns {
		c := &l.conns[i]
		if c.fd >= 0 {
			switch c.state {
			case stOpen, stClosing:
				l.endClosed(c)
			default:
				l.closeFD(c)
			}
		}
	}
	unix.Close(l.tfd)
	unix.Close(l.efd)
	unix.Close(l.epf)
}
