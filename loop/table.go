package loop

import (
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/config"
)

// Every connection has a slot in its loop's table; its ID encodes where:
//
//	bits 0-31  slot in the loop's table
//	bits 32-39 loop index
//	bits 40-63 generation of the slot (never 0), so that a reused slot
//	           gives a new ID
//
// IDs are never reused within a process: a slot whose generation reaches
// the largest is retired rather than wrapped (a backend may hold a stale
// ID for as long as it likes, and must never reach another user's
// connection with it). A retired slot costs its 8 bytes for the rest of
// the process, once per 16.7 million connections it served.
//
// The table is pages of slots, written only by its loop and read by any
// goroutine (Server.Lookup) through atomic loads. It grows by a page at a
// time: the loop publishes a new directory (the page pointers, copied);
// the pages themselves never move, so growing copies no slots and leaves
// no garbage, and a slot in use costs its pointer, 8 bytes, and at most a
// page of slack per loop: its generation is in its connection's ID, and a
// free slot keeps it on the free list. A reader holding an older directory
// may miss a connection opened since, never find a wrong one: Lookup
// checks the ID.

const (
	pageBits = 10 // 1,024 slots, 8 KiB a page
	pageSize = 1 << pageBits
)

type connPage [pageSize]atomic.Pointer[Conn]

type connTable struct {
	pages atomic.Pointer[[]*connPage]
	used  uint32   // loop-owned: slots handed out so far
	free  []uint64 // loop-owned: slots to reuse, each with its last generation (freeSlot)
}

// freeSlot is a free list entry: the slot, and the generation its last
// connection had.
func freeSlot(slot, gen uint32) uint64 { return uint64(gen)<<32 | uint64(slot) }

// at returns slot i of the directory p, or nil if p has no such slot.
func at(p *[]*connPage, i uint32) *atomic.Pointer[Conn] {
	if p == nil || int(i>>pageBits) >= len(*p) {
		return nil
	}
	return &(*p)[i>>pageBits][i&(pageSize-1)]
}

const (
	slotBits   = 32
	loopBits   = 8
	genBits    = 24
	maxGen     = 1<<genBits - 1
	maxLoopIdx = 1<<loopBits - 1
)

// insert gives c a slot and its ID. It runs on the loop.
func (l *eventLoop) insert(c *Conn) {
	t := &l.table
	var slot, g uint32
	if n := len(t.free); n > 0 {
		e := t.free[n-1]
		t.free = t.free[:n-1]
		slot, g = uint32(e), uint32(e>>32)+1 // remove retires a slot at maxGen
	} else {
		slot, g = t.used, 1
		t.used++
		if cur := t.pages.Load(); at(cur, slot) == nil {
			var grown []*connPage
			if cur != nil {
				grown = append(make([]*connPage, 0, len(*cur)+1), *cur...)
			}
			grown = append(grown, new(connPage))
			t.pages.Store(&grown)
		}
	}
	c.id = uint64(g)<<(slotBits+loopBits) | uint64(l.idx&maxLoopIdx)<<slotBits | uint64(slot)
	at(t.pages.Load(), slot).Store(c)
}

// remove frees c's slot. It runs on the loop.
func (l *eventLoop) remove(c *Conn) {
	slot := uint32(c.id)
	at(l.table.pages.Load(), slot).Store(nil)
	g := uint32(c.id >> (slotBits + loopBits))
	if g >= maxGen {
		return // retired: its next ID would repeat an old one
	}
	l.table.free = append(l.table.free, freeSlot(slot, g))
}

// Lookup returns the upgraded connection with the given ID, or nil if there
// is none or it is closing. Safe from any goroutine.
func (s *Server) Lookup(id uint64) *Conn {
	loops := s.eventLoops()
	idx := int(id>>slotBits) & maxLoopIdx
	if idx >= len(loops) {
		return nil
	}
	p := at(loops[idx].table.pages.Load(), uint32(id))
	if p == nil {
		return nil
	}
	c := p.Load()
	if c == nil || c.id != id || !c.flags.has(fUpgraded) || c.flags.has(fClosing) && !keptAnchor(c) {
		return nil // a session's anchor is found while the session lives (session.go)
	}
	return c
}

// forEachConn calls fn for each connection of loop idx from slot on, until
// fn returns false, off the loop. It returns the slot after the last one
// visited, or -1 when the table was exhausted.
func (s *Server) forEachConn(idx int, from uint32, fn func(c *Conn) bool) int64 {
	loops := s.eventLoops()
	if idx >= len(loops) {
		return -1
	}
	p := loops[idx].table.pages.Load()
	if p == nil {
		return -1
	}
	for i := int(from); i < len(*p)*pageSize; i++ {
		if c := at(p, uint32(i)).Load(); c != nil && c.flags.has(fUpgraded) && (!c.flags.has(fClosing) || keptAnchor(c)) {
			if !fn(c) {
				return int64(i) + 1
			}
		}
	}
	return -1
}

// conns ranges over the loop's connections, on the loop. The body may
// close them.
func (l *eventLoop) conns(yield func(*Conn) bool) {
	p := l.table.pages.Load()
	if p == nil {
		return
	}
	for _, pg := range *p {
		for i := range pg {
			if c := pg[i].Load(); c != nil && !yield(c) {
				return
			}
		}
	}
}

// A connection ID has room for config.MaxLoops loops, no more, no fewer.
var (
	_ [maxLoopIdx + 1 - config.MaxLoops]struct{}
	_ [config.MaxLoops - maxLoopIdx - 1]struct{}
)
