package loop

// A per-connection token bucket for Config.MaxMsgRate, refilled from the
// coarse clock. Tokens are kept in billionths so that refilling is integer
// arithmetic: elapsed nanoseconds times messages per second.

const tokenUnit = 1_000_000_000

// allowMessage takes one token from c's bucket, or reports false.
func (l *eventLoop) allowMessage(conn *Conn, now int64) bool {
	o := &l.srv.cfg.Config
	capacity := int64(o.MaxMsgBurst) * tokenUnit
	c := conn.x()
	if c.lastRefill == 0 {
		c.tokens, c.lastRefill = capacity, now
	} else if elapsed := now - c.lastRefill; elapsed > 0 {
		// Cap elapsed so the product cannot overflow; a full bucket
		// takes burst/rate seconds to fill anyway.
		elapsed = min(elapsed, int64(o.MaxMsgBurst)*tokenUnit/max(int64(o.MaxMsgRate), 1)+tokenUnit)
		c.tokens = min(capacity, c.tokens+elapsed*int64(o.MaxMsgRate))
		c.lastRefill = now
	}
	if c.tokens < tokenUnit {
		return false
	}
	c.tokens -= tokenUnit
	return true
}
