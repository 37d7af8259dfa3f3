// Package clock is the time source of the server's coarse clock, its drain
// and its shutdown waits: the real one, or a Fake that a test steps by
// hand, so that liveness, lifetime and drain tests need not sleep. The
// hashed timer wheels are driven by the coarse clock already; this makes
// the clock itself injectable (Config.Clock).
//
// clock never sleeps on its own: a Fake moves only when Advance is called.
package clock

import (
	"sync"
	"time"
)

// Clock is what the server reads time from.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker of period d, as time.NewTicker.
	NewTicker(d time.Duration) Ticker
	// NewTimer returns a timer that fires once after d, as time.NewTimer.
	NewTimer(d time.Duration) Timer
}

// Ticker is a time.Ticker, and Done: the receiver calls it once it has
// handled a tick, so that a Fake's Advance returns only when every tick
// on the way has had its effect (the real clock ignores it).
type Ticker interface {
	C() <-chan time.Time
	Done()
	Stop()
}

// Timer is a time.Timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// Real is the system clock.
var Real Clock = real{}

type real struct{}

func (real) Now() time.Time                   { return time.Now() }
func (real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
func (real) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (t realTicker) C() <-chan time.Time      { return t.t.C }
func (t realTicker) Stop()                    { t.t.Stop() }
func (realTicker) Done()                      {}
func (t realTimer) C() <-chan time.Time       { return t.t.C }
func (t realTimer) Stop() bool                { return t.t.Stop() }

type realTicker struct{ t *time.Ticker }
type realTimer struct{ t *time.Timer }

// Fake is a clock that moves only when Advance is called. Its zero value
// is not usable: make one with NewFake.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced when a ticker or timer is made
}

// NewFake returns a Fake reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start, changed: make(chan struct{})} }

// Now implements Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

type fakeTicker struct {
	f      *Fake
	period time.Duration
	next   time.Time
	c      chan time.Time
	done   chan struct{}
	stop   chan struct{}
	once   sync.Once
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Done()               { t.done <- struct{}{} }
func (t *fakeTicker) Stop()               { t.once.Do(func() { close(t.stop); t.f.remove(t) }) }

type fakeTimer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, x := range t.f.timers {
		if x == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			return true
		}
	}
	return false
}

// NewTicker implements Clock. Unlike a time.Ticker, it never drops a
// tick: Advance waits until each is received and Done (or the ticker
// stopped).
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker period")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{f: f, period: d, next: f.now.Add(d), c: make(chan time.Time), done: make(chan struct{}, 1), stop: make(chan struct{})}
	f.tickers = append(f.tickers, t)
	f.notify()
	return t
}

// NewTimer implements Clock.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.timers = append(f.timers, t)
	f.notify()
	return t
}

func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fake) remove(t *fakeTicker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.tickers {
		if x == t {
			f.tickers = append(f.tickers[:i], f.tickers[i+1:]...)
			return
		}
	}
}

// Advance moves the clock forward by d, one event at a time: each ticker
// tick and timer due on the way is delivered, in time order, and a tick is
// received and Done before the clock moves past it.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	end := f.now.Add(d)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		// The earliest event not after end; a timer first on a tie.
		var tk *fakeTicker
		var tm *fakeTimer
		for _, t := range f.tickers {
			if !t.next.After(end) && (tk == nil || t.next.Before(tk.next)) {
				tk = t
			}
		}
		for _, t := range f.timers {
			if !t.at.After(end) && (tm == nil || t.at.Before(tm.at)) {
				tm = t
			}
		}
		at := end
		switch {
		case tm != nil && (tk == nil || !tk.next.Before(tm.at)):
			tk, at = nil, tm.at
		case tk != nil:
			tm, at = nil, tk.next
		}
		f.now = at
		switch {
		case tm != nil:
			for i, x := range f.timers {
				if x == tm {
					f.timers = append(f.timers[:i], f.timers[i+1:]...)
					break
				}
			}
			tm.c <- at
			f.mu.Unlock()
		case tk != nil:
			tk.next = tk.next.Add(tk.period)
			f.mu.Unlock()
			select {
			case tk.c <- at:
				select {
				case <-tk.done:
				case <-tk.stop:
				}
			case <-tk.stop:
			}
		default:
			f.mu.Unlock()
			return
		}
	}
}

// WaitTickers waits until at least n tickers are running (a server's
// ticker starts with it), or timeout passes; it reports whether they are.
func (f *Fake) WaitTickers(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		ok, changed := len(f.tickers) >= n, f.changed
		f.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}
