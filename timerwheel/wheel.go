package timerwheel

import (
	"math"
	"time"
)

// Defaults used by New for a tick or slot count that is zero or negative.
const (
	DefaultTick  = 100 * time.Millisecond
	DefaultSlots = 512
)

// Node is one timer, meant to be embedded in the caller's per-connection
// session so that scheduling allocates nothing. Value is the caller's: set it
// once (to the session, typically) so the fire callback can find its owner.
//
// The zero Node is unscheduled and ready to use. A scheduled Node must not be
// copied or scheduled on a second wheel.
//
// A caller that finds the owner from the node's address (the node embedded
// at a known offset) may use Node[struct{}]: Value comes first, so that a
// zero-size T costs nothing.
type Node[T any] struct {
	// Value is the caller's payload; the wheel never reads or writes it.
	// It is the first field: a zero-size last field would be padded.
	Value T

	// Links: next in the slot's list, and the address of the pointer that
	// points at this node (the slot head or the previous node's next), so
	// that removal needs neither the slot index nor a backward walk.
	// pprev is nil exactly when the node is not scheduled.
	next  *Node[T]
	pprev **Node[T]

	deadline int64
}

// Scheduled reports whether n is on a wheel, waiting to fire. It is false
// inside n's own fire callback, until the callback schedules n again.
func (n *Node[T]) Scheduled() bool { return n.pprev != nil }

// Deadline returns the deadline n was last scheduled with, in the wheel's
// nanoseconds. It keeps its value after n fires or is cancelled.
func (n *Node[T]) Deadline() int64 { return n.deadline }

// Wheel is a hashed timing wheel of a fixed number of slots. It is driven by
// Advance and is for one goroutine only: see the package documentation.
type Wheel[T any] struct {
	// Configuration, fixed by New.
	fire   func(n *Node[T], now int64)
	tick   int64 // nanoseconds, > 0
	origin int64 // time of tick 0: the now given to New
	mask   int64 // len(slots)-1; len(slots) is a power of two

	// Entries. A node due at tick k (deadline rounded up to the tick) sits in
	// slots[k&mask]; one due when it was scheduled sits in due instead.
	slots []*Node[T]
	due   *Node[T]
	len   int

	// Clock. now is the greatest time seen; cur is the last tick whose slot
	// has been walked.
	now int64
	cur int64

	// Advance state. cursor is the next node of the list being walked, kept
	// here so that unlink can step it past a node a callback removes.
	cursor    *Node[T]
	advancing bool
}

// New returns a wheel whose clock starts at now, with the given tick and
// number of slots (rounded up to a power of two); a tick or slots of zero or
// less means DefaultTick or DefaultSlots. fire is called by Advance for each
// node that expires, with the node already unscheduled and Advance's now; it
// is given once here so that Advance allocates nothing. New panics if fire is
// nil.
func New[T any](tick time.Duration, slots int, now int64, fire func(n *Node[T], now int64)) *Wheel[T] {
	if fire == nil {
		panic("timerwheel: New with a nil fire callback")
	}
	if tick <= 0 {
		tick = DefaultTick
	}
	if slots <= 0 {
		slots = DefaultSlots
	}
	size := 1
	for size < slots && size < 1<<30 {
		size <<= 1
	}
	return &Wheel[T]{
		fire:   fire,
		tick:   int64(tick),
		origin: now,
		mask:   int64(size - 1),
		slots:  make([]*Node[T], size),
		now:    now,
	}
}

// Tick returns the wheel's resolution.
func (w *Wheel[T]) Tick() time.Duration { return time.Duration(w.tick) }

// Slots returns the number of slots, a power of two.
func (w *Wheel[T]) Slots() int { return len(w.slots) }

// Len returns the number of scheduled nodes.
func (w *Wheel[T]) Len() int { return w.len }

// Now returns the wheel's time: the greatest now given to New or Advance.
// It reads no clock and is good to one Advance, which makes it the coarse
// time to stamp activity with, or to schedule relative to from a callback.
func (w *Wheel[T]) Now() int64 { return w.now }

// Schedule arms n to fire at deadline, moving it if it is already scheduled
// (a reset). A deadline not after Now fires at the next Advance. It may be
// called from the fire callback, for n itself or any other node.
func (w *Wheel[T]) Schedule(n *Node[T], deadline int64) {
	if n.pprev != nil {
		w.unlink(n)
	}
	n.deadline = deadline
	if deadline <= w.now {
		w.link(&w.due, n)
		return
	}
	// deadline > now >= origin, so rel is positive unless it overflowed.
	rel := deadline - w.origin
	if rel < 0 {
		rel = math.MaxInt64
	}
	k := rel / w.tick
	if rel%w.tick != 0 {
		k++
	}
	w.link(&w.slots[k&w.mask], n)
}

// Cancel unschedules n; it does nothing if n is not scheduled. It may be
// called from the fire callback, for any node.
func (w *Wheel[T]) Cancel(n *Node[T]) {
	if n.pprev != nil {
		w.unlink(n)
	}
}

// Advance moves the wheel's clock to now and fires, in the calling goroutine,
// every node that is due: those scheduled with a deadline not after the
// previous Now, then those whose deadline rounded up to the tick is not after
// now, tick by tick in order of their ticks (entries of one tick in no
// particular order; after a jump of more than a rotation, in slot order).
// Nodes scheduled by the callbacks wait for a later Advance. A now before Now
// is taken as Now. It returns the number of nodes fired.
//
// Advance must not be called from the fire callback; it panics if it is. If
// the callback panics, the wheel stays consistent and the next Advance picks
// up where this one stopped.
func (w *Wheel[T]) Advance(now int64) (fired int) {
	if w.advancing {
		panic("timerwheel: Advance called from the fire callback")
	}
	if now < w.now {
		now = w.now
	}
	w.now = now
	w.advancing = true
	defer w.endAdvance()

	// Every node on due was scheduled before this call: one a callback puts
	// there goes in front of the cursor and waits for the next Advance.
	fired = w.walk(&w.due, math.MaxInt64, now)

	rel := now - w.origin
	if rel < 0 { // overflow
		rel = math.MaxInt64
	}
	target := rel / w.tick
	if target <= w.cur {
		return fired
	}
	// A node scheduled during this call has a deadline after now, hence
	// after limit, so the walks below never fire it.
	limit := w.origin + target*w.tick
	last := target
	if last-w.cur > int64(len(w.slots)) {
		// A jump of more than a rotation: every slot once is enough, since
		// everything due anywhere is compared against the same limit.
		last = w.cur + int64(len(w.slots))
	}
	for k := w.cur + 1; k <= last; k++ {
		fired += w.walk(&w.slots[k&w.mask], limit, now)
		w.cur = k
	}
	w.cur = target
	return fired
}

// endAdvance leaves the wheel ready for the next Advance, also when a
// callback panics.
func (w *Wheel[T]) endAdvance() {
	w.cursor = nil
	w.advancing = false
}

// walk fires the nodes of the list at head whose deadline is not after limit.
// Callbacks may unlink any node, including the next one (unlink moves the
// cursor past it), and may link nodes at the head, behind the cursor, where
// this walk does not see them.
func (w *Wheel[T]) walk(head **Node[T], limit, now int64) (fired int) {
	w.cursor = *head
	for w.cursor != nil {
		n := w.cursor
		w.cursor = n.next
		if n.deadline > limit {
			continue
		}
		w.unlink(n)
		fired++
		w.fire(n, now)
	}
	return fired
}

func (w *Wheel[T]) link(head **Node[T], n *Node[T]) {
	n.next = *head
	if n.next != nil {
		n.next.pprev = &n.next
	}
	n.pprev = head
	*head = n
	w.len++
}

func (w *Wheel[T]) unlink(n *Node[T]) {
	if w.cursor == n {
		w.cursor = n.next
	}
	*n.pprev = n.next
	if n.next != nil {
		n.next.pprev = n.pprev
	}
	n.next, n.pprev = nil, nil
	w.len--
}
