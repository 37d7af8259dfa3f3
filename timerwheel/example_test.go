package timerwheel_test

import (
	"fmt"
	"time"

	"github.com/wsgate/wsgate/timerwheel"
)

// conn is a gateway session with its idle timer embedded in it.
type conn struct {
	name       string
	lastActive int64 // stamped on every frame, from Wheel.Now: no wheel operation
	frames     int
	rearms     int
	idle       timerwheel.Node[*conn]
}

// The lazy idle timeout of Netty's IdleStateHandler: a frame only stamps the
// session's last activity; when the timer fires early for that stamp, it is
// scheduled again for the remainder. A busy connection costs a wheel
// operation per timeout, not per frame.
func Example() {
	const idleTimeout = int64(3 * time.Second)
	const tick = 100 * time.Millisecond

	var w *timerwheel.Wheel[*conn]
	w = timerwheel.New(tick, 512, 0, func(n *timerwheel.Node[*conn], now int64) {
		c := n.Value
		if due := c.lastActive + idleTimeout; due > now {
			c.rearms++
			w.Schedule(n, due) // active since it was armed: wait for the rest
			return
		}
		fmt.Printf("%s: idle at %v after %d frames and %d re-arms\n",
			c.name, time.Duration(now), c.frames, c.rearms)
	})
	open := func(name string) *conn {
		c := &conn{name: name, lastActive: w.Now()}
		c.idle.Value = c
		w.Schedule(&c.idle, c.lastActive+idleTimeout)
		return c
	}
	open("quiet")
	busy := open("busy")

	// The event loop: Advance once a tick; busy sends a frame every 500ms
	// for its first 5 seconds.
	for now := int64(0); now <= int64(10*time.Second); now += int64(tick) {
		w.Advance(now)
		if now%int64(500*time.Millisecond) == 0 && now <= int64(5*time.Second) {
			busy.lastActive = w.Now()
			busy.frames++
		}
	}
	// Output:
	// quiet: idle at 3s after 0 frames and 0 re-arms
	// busy: idle at 8s after 11 frames and 2 re-arms
}
