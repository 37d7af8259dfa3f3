package loop

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Admission control decides on an upgrade request before anything beyond
// the handshake is allocated for it: a global bound on WebSocket
// connections (Options.MaxConns), a bound per client address
// (MaxConnsPerIP, after PROXY protocol), a token bucket on the upgrade
// rate (AcceptRate, AcceptBurst), and the memory budget (MemoryBudget,
// budget.go: refused from 90% of it). A refusal is a 503 with Retry-After,
// counted by reason.

type admitReason uint8

const (
	admitOK admitReason = iota
	refusedDraining
	refusedMaxConns
	refusedPerIP
	refusedRate
	refusedBudget // the memory budget is over refuseAt (budget.go)
	numRefusals
)

var refusalNames = [numRefusals]string{"", "draining", "max_conns", "per_ip", "rate", "memory_budget"}

// retryAfter headers for each refusal: a short wait for the rate limit, a
// longer one when the server is full or going away.
var refusalRetryAfter = [numRefusals][]byte{
	nil,
	[]byte("Retry-After: 5\r\n"),
	[]byte("Retry-After: 5\r\n"),
	[]byte("Retry-After: 5\r\n"),
	[]byte("Retry-After: 1\r\n"),
	[]byte("Retry-After: 5\r\n"),
}

type admission struct {
	open atomic.Int64 // admitted connections not yet closed

	// Per-IP counts, sharded.
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[netip.Addr]int32
		_  [48]byte
	}

	// Rate bucket, in billionths of an upgrade (see ratelimit.go).
	rateMu     sync.Mutex
	tokens     int64
	lastRefill int64
}

func (a *admission) shard(ip netip.Addr) int {
	b := ip.As16()
	return int(maphash.Bytes(a.seed, b[:]) % 64)
}

// admit applies the limits to c's upgrade and, if it passes, counts c in
// them until release.
func (l *eventLoop) admit(c *Conn) admitReason {
	s := l.srv
	o := &s.opts
	a := &s.admission
	if s.draining.Load() {
		return refusedDraining
	}
	if s.mem != nil && !l.underMark(s.mem.refuseAt) {
		return refusedBudget
	}
	if o.AcceptRate > 0 && !a.takeToken(s.now(), o.AcceptRate, o.AcceptBurst) {
		return refusedRate
	}
	if o.MaxConns > 0 {
		if a.open.Add(1) > int64(o.MaxConns) {
			a.open.Add(-1)
			return refusedMaxConns
		}
	} else {
		a.open.Add(1)
	}
	if o.MaxConnsPerIP > 0 {
		ip := c.remote.Addr()
		sh := &a.shards[a.shard(ip)]
		sh.mu.Lock()
		if sh.m == nil {
			sh.m = make(map[netip.Addr]int32)
		}
		if sh.m[ip] >= int32(o.MaxConnsPerIP) {
			sh.mu.Unlock()
			a.open.Add(-1)
			return refusedPerIP
		}
		sh.m[ip]++
		sh.mu.Unlock()
	}
	c.admitted = true
	return admitOK
}

// release undoes admit when an admitted connection ends.
func (l *eventLoop) release(c *Conn) {
	if !c.admitted {
		return
	}
	c.admitted = false
	a := &l.srv.admission
	a.open.Add(-1)
	if l.srv.opts.MaxConnsPerIP > 0 {
		ip := c.remote.Addr()
		sh := &a.shards[a.shard(ip)]
		sh.mu.Lock()
		if sh.m[ip]--; sh.m[ip] <= 0 {
			delete(sh.m, ip)
		}
		sh.mu.Unlock()
	}
}

// takeToken takes one upgrade from the rate bucket.
func (a *admission) takeToken(now int64, rate float64, burst int) bool {
	a.rateMu.Lock()
	defer a.rateMu.Unlock()
	capacity := int64(burst) * tokenUnit
	if a.lastRefill == 0 {
		a.tokens, a.lastRefill = capacity, now
	} else if elapsed := now - a.lastRefill; elapsed > 0 {
		if refill := float64(elapsed) * rate; refill >= float64(capacity) {
			a.tokens = capacity // also keeps a long idle from overflowing
		} else {
			a.tokens = min(capacity, a.tokens+int64(refill))
		}
		a.lastRefill = now
	}
	if a.tokens < tokenUnit {
		return false
	}
	a.tokens -= tokenUnit
	return true
}

// WSConns returns the number of admitted WebSocket connections (upgraded
// or being upgraded).
func (s *Server) WSConns() int64 { return s.admission.open.Load() }
