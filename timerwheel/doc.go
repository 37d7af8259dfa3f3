// Package timerwheel is a hashed timing wheel driven by its caller: it holds
// every deadline a connection has (handshake, ping/pong, idle, lifetime,
// closing handshake) in intrusive nodes embedded in the session, and the
// owning event loop expires them by calling Advance(now).
//
// It must never start a goroutine, take a lock, read the clock, or allocate
// per entry. Time is an int64 of nanoseconds on the caller's monotonic clock
// (time.Since(start), say), passed in; tests inject it and never sleep.
// Schedule, Cancel and re-scheduling are O(1) and allocate nothing; the
// wheel's own memory is a fixed array of one pointer per slot, however many
// entries it holds.
//
// # Ownership
//
// A Wheel and the nodes scheduled on it belong to one goroutine, the event
// loop that calls Advance; nothing here is safe for concurrent use. A node is
// on at most one wheel at a time and must not be copied while scheduled.
//
// # Firing rules
//
// A node fires exactly once per scheduling, never before its deadline: at
// the first Advance whose now reaches the deadline rounded up to the tick.
// So it is late by less than a tick plus the time between Advance calls:
// less than a tick with Advance on every tick boundary. A deadline not after the wheel's time (Now) fires at the next Advance, even
// one in the same tick. The fire callback may re-arm its node, and Schedule
// or Cancel any other node; whatever a callback schedules fires at a later
// Advance, never in the one running, so a callback that re-arms in the past
// cannot loop. A clock that goes backwards is taken as no time passing; a
// forward jump of any size costs at most one rotation of slots plus the
// entries they hold.
//
// # Choosing tick and slots
//
// The tick is the resolution: a timer fires up to one tick late, and the loop
// wakes once per tick. One rotation is tick × slots; a deadline further away
// than a rotation waits in its slot and is looked at (one pointer chase, no
// write) once per rotation until it is due. Each tick walks one slot, that is
// about entries/slots nodes. So pick the tick from the accuracy you need and
// the slots so that a rotation covers the common timeouts; a slot costs 8
// bytes, so slots are cheap.
//
// DefaultTick (100ms) and DefaultSlots (512) give a 51.2s rotation, as
// Netty's HashedWheelTimer: 30s pings and 60s idle timeouts are visited at
// most twice. At a 10-50ms tick, keep the rotation near a minute with 2048 to
// 8192 slots (16-64 KiB). Spread first deadlines with jitter so a million
// connections opened together do not all fire in one tick.
//
// # Idle timeouts without a wheel operation per frame
//
// As in Netty's IdleStateHandler, a busy connection should not touch the
// wheel on every frame: stamp a coarse last-activity time in the session
// (Wheel.Now is free and good to a tick) and, when the node fires early for
// that stamp, Schedule it again for the remainder. See the package example.
package timerwheel
