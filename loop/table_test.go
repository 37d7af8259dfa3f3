package loop

import "testing"

// A slot whose generation reaches the largest is retired, not wrapped:
// no ID repeats within a process, however many connections a slot sees.
func TestTableNeverReusesID(t *testing.T) {
	l := &eventLoop{idx: 3}
	c := &Conn{}
	l.insert(c)
	slot := uint32(c.id)
	l.remove(c)
	// Fast-forward the slot to just below the largest generation.
	l.table.free[len(l.table.free)-1] = freeSlot(slot, maxGen-2)
	seen := map[uint64]bool{}
	var last uint64
	for range 4 {
		c := &Conn{}
		l.insert(c)
		if seen[c.id] {
			t.Fatalf("ID %#x given twice", c.id)
		}
		seen[c.id] = true
		if int(c.id>>slotBits)&maxLoopIdx != 3 || c.id>>(slotBits+loopBits) == 0 {
			t.Fatalf("ID %#x: wrong loop or generation 0", c.id)
		}
		if uint32(c.id) == slot {
			last = c.id
		}
		l.remove(c)
	}
	if g := last >> (slotBits + loopBits); g != maxGen {
		t.Fatalf("slot %d last at generation %d, want it retired at %d", slot, g, maxGen)
	}
	for _, f := range l.table.free {
		if uint32(f) == slot {
			t.Fatalf("retired slot %d is on the free list", slot)
		}
	}
	// Slot 0 served twice more and retired; a second slot served twice.
	if l.table.used != 2 {
		t.Fatalf("%d slots, want 2: the retired one and its successor", l.table.used)
	}
}

// The table grows a page at a time: slots never move (a reader's pointer
// into an old directory still reaches the live slot), every connection is
// at the slot its ID names, and a slot past the last page is nil.
func TestTablePages(t *testing.T) {
	l := &eventLoop{idx: 1}
	first := &Conn{}
	l.insert(first)
	old := l.table.pages.Load()
	cs := []*Conn{first}
	for range 2*pageSize + 2 {
		c := &Conn{}
		l.insert(c)
		cs = append(cs, c)
	}
	p := l.table.pages.Load()
	if len(*p) != 3 || len(*old) != 1 {
		t.Fatalf("%d pages (first directory %d), want 3 (1)", len(*p), len(*old))
	}
	if at(old, 0) != at(p, 0) {
		t.Fatal("the first page moved when the table grew")
	}
	for i, c := range cs {
		if uint32(c.id) != uint32(i) || at(p, uint32(i)).Load() != c {
			t.Fatalf("connection %d not at its slot (ID %#x)", i, c.id)
		}
	}
	if at(p, 3*pageSize) != nil || at(nil, 0) != nil {
		t.Fatal("a slot past the last page")
	}
	for _, c := range cs[pageSize-1 : pageSize+1] {
		l.remove(c) // the last slot of a page and the first of the next
	}
	n := 0
	for range l.conns {
		n++
	}
	if n != len(cs)-2 {
		t.Fatalf("conns visited %d, want %d", n, len(cs)-2)
	}
	// The freed slots are reused before a new one, with new IDs.
	c := &Conn{}
	l.insert(c)
	if s := uint32(c.id); s != pageSize && s != pageSize-1 || c.id == cs[s].id {
		t.Fatalf("ID %#x: want a freed slot with a new generation", c.id)
	}
}
