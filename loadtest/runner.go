//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Phases of a run, in order. The runner moves them forward; each loop
// notices the change within 50 ms and acts on it.
const (
	phaseInit   int32 = iota
	phaseRamp         // open connections at --ramp
	phaseHold         // --procs child: ramp over, holding until every child is
	phaseSteady       // the measured phase: hold, echo, send on schedule, storm
	phaseDrain        // no new sends: wait for replies in flight
	phaseClose        // send close frames and wait for the answers
	phaseStop         // loops close what is left and return
)

var phaseNames = [...]string{"init", "ramp", "hold", "steady", "drain", "close", "stop"}

// Why a ramp ended, for the report: every attempt finished, nothing moved
// for rampStall, the ramp's cap (config.rampCap) was reached, or the run
// was interrupted.
const (
	rampComplete    = "complete"
	rampStalled     = "stalled"
	rampTimeout     = "timeout"
	rampInterrupted = "interrupted"
)

// rampStall is how long a ramp may go without a single attempt started,
// upgraded or failed before it is given up: every attempt ends within the
// handshake timeout, so only a stuck run meets it.
func (c *config) rampStall() time.Duration { return 2*c.handshakeTimeout + 5*time.Second }

// sampleEvery is the timeline's resolution, fine enough to find a storm's
// peak accept rate over one-second windows.
const sampleEvery = 100 * time.Millisecond

// runner drives one process's loops through the phases and samples them.
type runner struct {
	cfg   *config
	epoch time.Time
	loops []*loop

	phase       atomic.Int32
	steadyStart atomic.Int64 // ns since epoch
	steadyEnd   atomic.Int64 // ns since epoch; 0 until the measured phase ends
	stormStart  atomic.Int64 // ns since epoch; 0 until the first drop

	// release, for a --procs child, is closed when the parent says every
	// child has finished its ramp; the child holds its connections in
	// phaseHold until then, so the measured phases of all children start
	// together. nil in a single process: the ramp leads to the measured
	// phase at once.
	release <-chan struct{}

	// onSample, if set, is called from the runner's goroutine after each
	// sample: the progress line and the --procs protocol hang off it.
	onSample func(phase int32, now int64, c [nCounters]int64)
}

func (r *runner) now() int64 { return int64(time.Since(r.epoch)) }

func (r *runner) sum() [nCounters]int64 {
	var s [nCounters]int64
	for _, l := range r.loops {
		v := l.ctr.snapshot()
		for i := range s {
			s[i] += v[i]
		}
	}
	return s
}

// run executes the scenario in this process and returns its raw result.
// Canceling ctx ends the measured phase early; drain and close still run.
func (r *runner) run(ctx context.Context) (*raw, error) {
	cfg := r.cfg
	r.epoch = time.Now()
	nl := min(cfg.loops, cfg.conns)
	gids := make([][]int, nl)
	for i := range cfg.conns {
		gids[i%nl] = append(gids[i%nl], cfg.connBase+i)
	}
	for i := range nl {
		l, err := newLoop(r, i, gids[i])
		if err != nil {
			for _, l := range r.loops {
				l.closeAll()
			}
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	res := &raw{EpochUnixNs: r.epoch.UnixNano(), Loops: nl}
	var wg sync.WaitGroup
	r.setPhase(phaseRamp)
	for _, l := range r.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run()
		}()
	}

	rampCap, rampStall := int64(cfg.rampCap()), int64(cfg.rampStall())
	var phaseStart, lastMove, lastRecv, closeCap int64
	var moved, received int64 = -1, -1
	tk := time.NewTicker(sampleEvery)
	defer tk.Stop()
	// Cancellation is seen once: a done context's channel is always
	// ready, and selecting on it again turned every later turn into a
	// busy loop that appended a sample per turn (hundreds of MiB over a
	// long close phase, and a core burnt while the server answered the
	// closes). After it, the turns that end the ramp, the hold and the
	// measured phase follow at once (hurry); drain and close go by the
	// ticker again.
	ctxDone := ctx.Done()
	var done bool
	for {
		var released <-chan struct{} // wakes a holding child at once
		if r.phase.Load() == phaseHold {
			released = r.release
		}
		var hurry <-chan struct{}
		if done && r.phase.Load() < phaseDrain {
			hurry = closedChan
		}
		select {
		case <-tk.C:
		case <-ctxDone:
			done, ctxDone = true, nil
		case <-released:
		case <-hurry:
		}
		now := r.now()
		c := r.sum()
		res.Samples = append(res.Samples, sample{
			T: now, Attempted: c[cAttempted], Established: c[cEstablished], Open: c[cOpen],
			Sent: c[cSent], Received: c[cReceived], Errors: c[cErrors],
		})
		if m := c[cAttempted] + c[cEstablished] + c[cFailed]; m != moved {
			moved, lastMove = m, now
		}
		if c[cReceived] != received {
			received, lastRecv = c[cReceived], now
		}
		ph := r.phase.Load()
		next := ph
		switch ph {
		case phaseRamp:
			// The ramp goes on while attempts move, however far behind
			// --ramp the server is: it ends when every attempt has
			// finished, not at a deadline computed from the asked rate.
			switch {
			case c[cAttempted]-c[cRetries] >= int64(cfg.conns) && c[cPending] == 0 && c[cRetryWait] == 0:
				res.RampEnd = rampComplete
			case done:
				res.RampEnd = rampInterrupted
			case now-lastMove > rampStall:
				res.RampEnd = rampStalled
			case now-phaseStart > rampCap:
				res.RampEnd = rampTimeout
			}
			if res.RampEnd != "" {
				res.RampUpgrades = c[cEstablished]
				next = phaseSteady
				if r.release != nil {
					next = phaseHold
				}
			}
		case phaseHold:
			select {
			case <-r.release:
				next = phaseSteady
			default:
				next = ph
				if done {
					next = phaseSteady
				}
			}
		case phaseSteady:
			over := now-phaseStart >= int64(cfg.duration) || done
			// A dropping storm is over once every dropped connection is back.
			if cfg.scenario == scStorm && cfg.stormMode == "drop" && c[cDropped] > 0 &&
				now-phaseStart > int64(cfg.stormAfter+200*time.Millisecond) && c[cRecovered] == c[cDropped] && c[cPending] == 0 {
				over = true
			}
			// A slow run has shown what it set out to once the server has
			// closed every slow connection.
			if cfg.scenario == scSlow && c[cSlowConns] > 0 && c[cSlowClosed] == c[cSlowConns] {
				over = true
			}
			if over {
				next = phaseDrain
				res.SteadyEndNs = now
				res.SteadyRecv += c[cReceived]
				r.steadyEnd.Store(now)
				res.ClientRSS, res.ClientHeap, res.ClientOpen = selfRSS(), heapInuse(), c[cOpen]
			}
		case phaseDrain:
			quiet := c[cInflight] <= 0
			if cfg.scenario == scFanout {
				// Deliveries to this process's subscribers are not in
				// flight here (the publisher may be another process):
				// wait until they stop arriving.
				quiet = quiet && now-lastRecv >= int64(fanoutQuiet)
			}
			if quiet || now-phaseStart >= int64(cfg.drainTimeout) {
				next = phaseClose
				closeCap = int64(closeCapFor(int64(cfg.connTotal)) + time.Second)
			}
		case phaseClose:
			// The loops give up on each unanswered close themselves;
			// this is the backstop.
			if c[cOpen] <= 0 || now-phaseStart >= closeCap {
				next = phaseStop
			}
		}
		if r.onSample != nil {
			r.onSample(ph, now, c)
		}
		if next != ph {
			if next == phaseSteady {
				res.SteadyStartNs = now
				res.SteadyOpen = c[cOpen]
				res.SteadyRecv = -c[cReceived]
				r.steadyStart.Store(now)
				if cfg.readyFile != "" && cfg.child == 0 {
					writeReady(cfg.readyFile, c[cEstablished])
				}
			}
			r.setPhase(next)
			phaseStart = now
			// A held connect run has nothing to time finely: one sample
			// a second keeps a hundred idle processes from waking ten
			// times as often.
			if cfg.scenario == scConnect && (next == phaseHold || next == phaseSteady) {
				tk.Reset(time.Second)
			} else {
				tk.Reset(sampleEvery)
			}
			if next == phaseStop {
				break
			}
		}
	}
	wg.Wait()
	res.StormStartNs = r.stormStart.Load()
	res.collect(r.loops)
	return res, nil
}

// closedChan is always ready: a select on it does not wait.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// fanoutQuiet is how long the drain of a fanout run waits with no delivery
// arriving before it ends.
const fanoutQuiet = 500 * time.Millisecond

// setPhase moves the loops to phase ph and wakes each, so that a loop with
// nothing due can sleep in epoll without a timeout.
func (r *runner) setPhase(ph int32) {
	r.phase.Store(ph)
	for _, l := range r.loops {
		l.wake()
	}
}

// writeReady creates the --ready-file once the ramp is over.
func writeReady(path string, established int64) {
	tmp := path + ".tmp"
	b := []byte(`{"established":` + itoa(established) + "}\n")
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, path)
	}
}

// selfRSS is this process's resident set in bytes (0 if unknown).
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("VmRSS:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(line), []byte(" kB"))), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}

func heapInuse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
