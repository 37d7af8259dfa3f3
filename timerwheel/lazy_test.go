package timerwheel

import (
	"math/rand/v2"
	"testing"
)

// idleConn is a session whose idle timer is re-armed lazily, as in the
// package example.
type idleConn struct {
	lastActive int64
	stopAt     int64 // sends no frame from then on
	chatty     bool  // a frame every tick, else at random
	frames     int
	rearms     int
	closedAt   int64
	timer      Node[*idleConn]
}

func TestLazyIdleTimeout(t *testing.T) {
	const (
		tick    = 10
		timeout = 1000 // 100 ticks, several rotations of 16 slots
	)
	rng := rand.New(rand.NewPCG(7, 7))
	var w *Wheel[*idleConn]
	w = New(tick, 16, 0, func(n *Node[*idleConn], now int64) {
		c := n.Value
		if due := c.lastActive + timeout; due > now {
			c.rearms++
			w.Schedule(n, due)
			return
		}
		c.closedAt = now
	})
	conns := make([]idleConn, 200)
	for i := range conns {
		c := &conns[i]
		c.stopAt = rng.Int64N(5000)
		c.chatty = i%2 == 0
		c.closedAt = -1
		c.timer.Value = c
		w.Schedule(&c.timer, timeout)
	}
	for now := int64(tick); w.Len() > 0; now += tick {
		w.Advance(now)
		for i := range conns {
			c := &conns[i]
			if c.closedAt < 0 && now < c.stopAt && (c.chatty || rng.IntN(8) == 0) {
				c.lastActive = w.Now() // the only per-frame work
				c.frames++
			}
		}
	}
	for i, c := range conns {
		// Activity and timeouts fall on ticks and Advance runs every tick,
		// so a connection closes exactly a timeout after its last frame.
		if c.closedAt != c.lastActive+timeout {
			t.Errorf("conn %d: last frame at %d, closed at %d", i, c.lastActive, c.closedAt)
		}
		if c.rearms > c.frames {
			t.Errorf("conn %d: %d re-arms for %d frames", i, c.rearms, c.frames)
		}
		if c.chatty && int64(c.rearms) > c.stopAt/(timeout-tick)+1 {
			t.Errorf("conn %d: %d re-arms in %d of steady traffic", i, c.rearms, c.stopAt)
		}
	}
}
