package loop

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// buffer is a pooled byte slice. It travels by pointer so that putting it
// back in a sync.Pool does not allocate.
type buffer struct {
	b []byte
}

// Size classes are powers of two from 1<<minClassShift to 1<<maxClassShift.
// A request above the largest class is served by a plain allocation and
// dropped on release.
const (
	minClassShift = 6  // 64 B
	maxClassShift = 24 // 16 MiB
	numClasses    = maxClassShift - minClassShift + 1
)

var bufferPools [numClasses]sync.Pool

// buffersOut counts buffers handed out and not yet released, across all
// servers in the process: a gauge that tests use to prove nothing leaks.
var buffersOut atomic.Int64

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// getBuffer returns a buffer with len 0 and cap >= n.
func getBuffer(n int) *buffer {
	buffersOut.Add(1)
	c := classOf(n)
	if c >= numClasses {
		return &buffer{b: make([]byte, 0, n)}
	}
	if v := bufferPools[c].Get(); v != nil {
		b := v.(*buffer)
		b.b = b.b[:0]
		return b
	}
	return &buffer{b: make([]byte, 0, 1<<(c+minClassShift))}
}

// putBuffer returns b to its class. b must not be used afterwards.
func putBuffer(b *buffer) {
	if b == nil {
		return
	}
	buffersOut.Add(-1)
	c := cap(b.b)
	if c < 1<<minClassShift || c > 1<<maxClassShift || c&(c-1) != 0 {
		return // not one of ours (or oversize): let the GC have it
	}
	bufferPools[bits.Len(uint(c))-1-minClassShift].Put(b)
}

// growBuffer returns a buffer holding b's bytes with room for at least n
// bytes in total, releasing b if it had to move.
func growBuffer(b *buffer, n int) *buffer {
	if b == nil {
		return getBuffer(n)
	}
	if cap(b.b) >= n {
		return b
	}
	// Grow geometrically so that a message arriving in many small
	// fragments costs O(size) copying in total.
	want := max(n, 2*cap(b.b))
	nb := getBuffer(want)
	nb.b = append(nb.b, b.b...)
	putBuffer(b)
	return nb
}
