package loop

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/config"
)

// Admission control decides on an upgrade request before anything beyond
// the handshake is allocated for it: a global bound on WebSocket
// connections (Config.MaxConns), a bound per client address
// (MaxConnsPerIP, after PROXY protocol), a token bucket on the upgrade
// rate (AcceptRate, AcceptBurst), and the memory budget (MemoryBudget,
// budget.go: refused from 90% of it). A refusal is a 503 with Retry-After,
// counted by reason.
//
// Before that, every TCP connection is counted until its upgrade completes
// (MaxHandshakes, MaxHandshakesPerIP): silent or slow clients cannot hold
// more than those, and past them a new connection is closed in OnOpen,
// before a Conn exists. Per-address limits count a client by ipKey.

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
	retryAfter("5"), // draining
	retryAfter("5"), // max_conns
	retryAfter("5"), // per_ip
	retryAfter("1"), // rate
	retryAfter("5"), // memory_budget
}

func retryAfter(seconds string) []byte { return codec.AppendField(nil, "Retry-After", seconds) }

type admission struct {
	open atomic.Int64 // admitted connections not yet closed

	seed  maphash.Seed // shards both ipCounts
	perIP ipCounts     // admitted connections by client key (MaxConnsPerIP)

	// Connections not yet upgraded (see admitTCP): in all, and by client
	// key.
	handshakes   atomic.Int64
	handshakesIP ipCounts

	// Rate bucket, in billionths of an upgrade (see ratelimit.go).
	rateMu     sync.Mutex
	tokens     int64
	lastRefill int64
}

// What a connection is counted in, in Conn.admitted, so that release undoes
// exactly that.
const (
	countedWS          uint8 = 1 << iota // admission.open and perIP (admit)
	countedHandshake                     // admission.handshakes
	countedHandshakeIP                   // admission.handshakesIP
)

// ipCounts counts connections by client key (see ipKey), sharded so that
// loops accepting at once rarely meet on a lock. A key with no connection
// has no entry: the maps hold what is open, nothing more.
type ipCounts struct {
	shards [64]ipShard
}

type ipShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
	_  [48]byte // a cache line each
}

func (p *ipCounts) shard(seed maphash.Seed, ip netip.Addr) *ipShard {
	b := ip.As16()
	return &p.shards[maphash.Bytes(seed, b[:])%64]
}

// add counts one more connection of ip, unless limit (> 0) are counted.
func (p *ipCounts) add(seed maphash.Seed, ip netip.Addr, limit int) bool {
	sh := p.shard(seed, ip)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[netip.Addr]int32)
	}
	// limit comes from an int option; compare in int so that a limit over
	// MaxInt32 does not wrap.
	if n := sh.m[ip]; int(n) >= limit || n == math.MaxInt32 {
		return false
	}
	sh.m[ip]++
	return true
}

// done undoes one add of ip.
func (p *ipCounts) done(seed maphash.Seed, ip netip.Addr) {
	sh := p.shard(seed, ip)
	sh.mu.Lock()
	if sh.m[ip]--; sh.m[ip] <= 0 {
		delete(sh.m, ip)
	}
	sh.mu.Unlock()
}

// ipKey returns the key per-address limits count a client by: an IPv4
// address whole (an IPv4-mapped IPv6 one as the IPv4 it is), an IPv6
// address cut to Config.IPv6Prefix, since one subscriber holds a whole
// /64 and could otherwise open as many connections as it has addresses.
func (s *Server) ipKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if b := s.cfg.IPv6Prefix; ip.Is6() && b > 0 && b < 128 {
		if p, err := ip.Prefix(b); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// admit applies the limits to c's upgrade and, if it passes, counts c in
// them until release.
func (l *eventLoop) admit(c *Conn) admitReason {
	s := l.srv
	o := &s.cfg.Config
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
	if o.MaxConnsPerIP > 0 && !a.perIP.add(a.seed, s.ipKey(c.remoteAddr().Addr()), o.MaxConnsPerIP) {
		a.open.Add(-1)
		return refusedPerIP
	}
	c.admitted |= countedWS
	return admitOK
}

// release undoes admit and admitTCP when a connection ends.
func (l *eventLoop) release(c *Conn) {
	l.handshakeDone(c)
	if c.admitted&countedWS == 0 {
		return
	}
	c.admitted &^= countedWS
	a := &l.srv.admission
	a.open.Add(-1)
	if l.srv.cfg.MaxConnsPerIP > 0 {
		a.perIP.done(a.seed, l.srv.ipKey(c.remoteAddr().Addr()))
	}
}

// Reasons a new TCP connection is closed at once by the handshake bounds,
// for Stats.HandshakeLimitCloses.
const (
	hsLimitTotal = iota // MaxHandshakes
	hsLimitPerIP        // MaxHandshakesPerIP
	numHSLimits
)

var hsLimitNames = [numHSLimits]string{"total", "per_ip"}

// admitTCP decides on a new TCP connection from peer, in OnOpen, before
// anything is allocated for it: it returns what the connection is counted
// in, or ok false when a bound is full and the connection must be closed
// (counted here). A connection from a trusted proxy is counted against
// its client's address only once the PROXY header names it (countClient).
func (l *eventLoop) admitTCP(peer netip.Addr) (counted uint8, ok bool) {
	s := l.srv
	o := &s.cfg.Config
	a := &s.admission
	if n := a.handshakes.Add(1); o.MaxHandshakes > 0 && n > int64(o.MaxHandshakes) {
		a.handshakes.Add(-1)
		l.stats.hsLimited[hsLimitTotal].Add(1)
		return 0, false
	}
	counted = countedHandshake
	if o.MaxHandshakesPerIP > 0 && (s.cfg.Proxy == config.ProxyOff || !s.trusted(peer)) {
		if !a.handshakesIP.add(a.seed, s.ipKey(peer), o.MaxHandshakesPerIP) {
			a.handshakes.Add(-1)
			l.stats.hsLimited[hsLimitPerIP].Add(1)
			return 0, false
		}
		counted |= countedHandshakeIP
	}
	return counted, true
}

// countClient counts c against its client's address once the PROXY stage
// has settled it, if admitTCP did not. It reports false when that address
// has MaxHandshakesPerIP connections in handshake already: c must then be
// closed (counted here).
func (l *eventLoop) countClient(c *Conn) bool {
	s := l.srv
	a := &s.admission
	if s.cfg.MaxHandshakesPerIP <= 0 || c.admitted&(countedHandshake|countedHandshakeIP) != countedHandshake {
		return true
	}
	if !a.handshakesIP.add(a.seed, s.ipKey(c.remoteAddr().Addr()), s.cfg.MaxHandshakesPerIP) {
		l.stats.hsLimited[hsLimitPerIP].Add(1)
		return false
	}
	c.admitted |= countedHandshakeIP
	return true
}

// handshakeDone takes c out of the handshake counts: its upgrade is done,
// or it is gone.
func (l *eventLoop) handshakeDone(c *Conn) {
	a := &l.srv.admission
	if c.admitted&countedHandshakeIP != 0 {
		a.handshakesIP.done(a.seed, l.srv.ipKey(c.remoteAddr().Addr()))
	}
	if c.admitted&countedHandshake != 0 {
		a.handshakes.Add(-1)
	}
	c.admitted &^= countedHandshake | countedHandshakeIP
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
