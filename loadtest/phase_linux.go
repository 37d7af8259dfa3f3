package main

import (
	"time"

	"github.com/wsgate/wsgate/codec"
)

// What a loop does when the runner moves it to another phase, and the
// sends it makes on a schedule during the measured phase.

// schedule sends messages at a fixed rate on a set of connections, round
// robin. Message k is due at start + k*every whatever happened before it:
// a late loop sends the backlog at once and stamps each message with the
// time it was due, so a stall shows up as latency (no coordinated omission).
type schedule struct {
	on    bool
	start int64
	every float64
	k     int64
	rr    int
}

func (s *schedule) due() int64 { return s.start + int64(float64(s.k)*s.every) }

// enter switches the loop to phase ph.
func (l *loop) enter(ph int32, now int64) {
	l.phase = ph
	cfg := l.r.cfg
	nLoops := float64(len(l.r.loops))
	switch ph {
	case phaseRamp:
		l.rampStart = now
		l.rampEvery = 1e9 / (float64(cfg.ramp) / nLoops)
		if cfg.maxPend > 0 {
			l.maxPending = int64(max(1, cfg.maxPend/len(l.r.loops)))
		}
	case phaseSteady:
		switch cfg.scenario {
		case scEcho:
			for _, i := range l.fast {
				c := &l.conns[i]
				for k := 0; k < cfg.inflight && c.state == stOpen; k++ {
					l.sendData(c, cfg.size, now)
				}
			}
		case scFanout:
			// One publisher, global connection 0, at the whole --rate:
			// the server sends each of its messages to every connection.
			start := l.r.steadyStart.Load()
			for _, i := range l.fast {
				if l.conns[i].gid == 0 {
					l.pub = []int32{i}
					l.fastSched = schedule{on: true, start: start, every: 1e9 / float64(cfg.rate)}
				}
			}
		case scRate, scSlow:
			// The schedule starts when the runner says the measured phase
			// did, not when this loop noticed: a loop that looks late sends
			// the backlog, stamped with the times it was due.
			start := l.r.steadyStart.Load()
			l.fastSched = schedule{on: len(l.fast) > 0, start: start, every: 1e9 / (float64(cfg.rate) / nLoops)}
			if len(l.slow) > 0 {
				l.slowSched = schedule{on: true, start: start, every: 1e9 / (float64(cfg.slowRate) * float64(len(l.slow)))}
			}
		case scStorm:
			if cfg.stormMode == "drop" {
				l.dropAt = l.r.steadyStart.Load() + int64(cfg.stormAfter)
			}
		}
	case phaseDrain:
		// Send what fell due before the measured phase ended, and nothing
		// after: the count is the rate times the measured time.
		if end := l.r.steadyEnd.Load(); end > 0 {
			l.tickSchedules(min(now, end))
		}
		l.fastSched.on, l.slowSched.on = false, false
		l.dropAt = 0
	case phaseClose:
		n := 0
		for i := range l.conns {
			c := &l.conns[i]
			switch c.state {
			case stOpen:
				if c.slow {
					// It does not read, so it would never see the answer:
					// just let go. The report counts it as still open.
					l.endClosed(c)
					continue
				}
				l.wbuf = codec.AppendCloseMasked(l.wbuf[:0], 1000, "", codec.NewMaskKey())
				l.write(c, l.wbuf)
				if c.fd >= 0 {
					c.state = stClosing
					c.startNs = now // the attempt's start is recorded: reuse it
					l.ctr.add(cCloseSent, 1)
					n++
					l.tm.push(timer{at: now + int64(closeWait), idx: int32(i), gen: c.gen, kind: tmCloseWait})
				}
			case stConnecting, stHandshake:
				l.errorf("ended: still connecting")
				l.ctr.add(cFailed, 1)
				l.ctr.add(cPending, -1)
				l.closeFD(c)
				c.state = stDone
			case stIdle:
				c.state = stDone
			}
		}
		// The server answers every process's closes at once: scale the
		// wait to the whole run's count, not this loop's.
		if n > 0 {
			l.closeDeadline = now + int64(closeCapFor(int64(cfg.connTotal)))
		}
		l.lastCloseAnswer = now
	}
}

// closeWait is how long a close frame of ours waits for the server's
// answer while no other answer arrives: a server still answering other
// closes is busy, not silent. closeAnswersPerSec is the least rate of
// answers closeCapFor allows for, so that a mass close of n connections is
// given time in proportion to n. (Closing 38,000 connections at once on a
// shared 2-core machine, two gateways answered every close within 1.7 to
// 3.7 s; a fixed 2 s wait called up to a quarter of them unanswered.)
const (
	closeWait          = 2 * time.Second
	closeAnswersPerSec = 500
)

// closeCapFor is the longest close frames sent at once to n connections in
// all wait for their answers: closeWait plus n at closeAnswersPerSec.
func closeCapFor(n int64) time.Duration {
	return closeWait + time.Duration(n)*time.Second/closeAnswersPerSec
}

func (l *loop) tickSchedules(now int64) {
	if end := l.r.steadyEnd.Load(); end > 0 {
		now = min(now, end)
	}
	if l.fastSched.on {
		idx := l.fast
		if l.pub != nil {
			idx = l.pub
		}
		l.runSchedule(&l.fastSched, idx, l.r.cfg.size, now)
	}
	if l.slowSched.on {
		l.runSchedule(&l.slowSched, l.slow, l.r.cfg.slowSize, now)
	}
}

func (l *loop) runSchedule(s *schedule, idx []int32, size int, now int64) {
	for due := s.due(); due <= now; due = s.due() {
		s.k++
		var c *conn
		for tries := 0; tries < len(idx); tries++ {
			cand := &l.conns[idx[s.rr]]
			s.rr++
			if s.rr == len(idx) {
				s.rr = 0
			}
			if cand.state == stOpen {
				c = cand
				break
			}
		}
		if c == nil {
			l.errorf("send: no open connection when a message was due")
			continue
		}
		if c.slow && len(c.out) > 0 {
			l.ctr.add(cSlowSkipped, 1)
			continue
		}
		l.sendData(c, size, due)
	}
}
