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
