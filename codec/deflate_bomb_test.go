package codec

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"runtime"
	"sync"
	"testing"
)

const (
	bombPlain = 100 << 20 // what the bomb inflates to
	bombLimit = 64 << 10  // the message limit it meets
)

// bombMatches is how many 258-byte matches the bomb holds: with its
// leading literal, just over 100 MiB.
const bombMatches = (bombPlain + 256) / 258

// bombOnce builds the bomb by hand: one dynamic-Huffman block whose codes
// are a literal 0, then a 1-bit length-258 code and a 1-bit distance-1
// code repeated, 258 bytes for every 2 bits (DEFLATE's ceiling, about
// 1000:1), ended like a sync flush with the tail stripped. Built from bits,
// it costs nothing to make, even under the race detector, and the test
// never holds the 100 MiB it describes.
var bombOnce = sync.OnceValue(func() []byte {
	var w bitWriter
	w.bits(0, 1)  // BFINAL
	w.bits(2, 2)  // BTYPE: dynamic
	w.bits(29, 5) // HLIT: 286 literal/length codes
	w.bits(0, 5)  // HDIST: 1 distance code
	w.bits(14, 4) // HCLEN: 18 code length codes
	// Code length code lengths, in RFC 1951 order 16, 17, 18, 0, 8, 7, 9,
	// 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1: 18 gets 1 bit, 1 and 2 get 2.
	for _, l := range []uint32{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2} {
		w.bits(l, 3)
	}
	// Canonical codes: 18 = 0, 1 = 10, 2 = 11.
	cl2 := func() { w.code(0b11, 2) }
	cl1 := func() { w.code(0b10, 2) }
	zeros := func(n uint32) { w.code(0, 1); w.bits(n-11, 7) } // code 18: 11 to 138 zeros
	cl2()                                                     // literal 0: 2 bits
	zeros(138)
	zeros(117) // literals 1 to 255: none
	cl2()      // 256, end of block: 2 bits
	zeros(28)  // 257 to 284: none
	cl1()      // 285, length 258: 1 bit
	cl1()      // distance code 0: 1 bit
	// Literal codes: 285 = 0, 0 = 10, 256 = 11; distance 0 = 0.
	w.code(0b10, 2)
	for range bombMatches {
		w.code(0, 1)
		w.code(0, 1)
	}
	w.code(0b11, 2)
	w.bits(0, 3) // the header of the sync flush's empty stored block
	return w.flush()
})

// bitWriter writes a DEFLATE bit stream: fields least significant bit
// first, Huffman codes most significant bit first (RFC 1951 §3.1.1).
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	w.acc |= uint64(v) << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) code(c uint32, n uint) {
	var r uint32
	for i := range n {
		r |= (c >> i & 1) << (n - 1 - i)
	}
	w.bits(r, n)
}

func (w *bitWriter) flush() []byte {
	if w.n > 0 {
		w.out = append(w.out, byte(w.acc))
	}
	return w.out
}

// inflatedZeros inflates the bomb with compress/flate and returns its
// size, failing on anything but zeros.
func inflatedZeros(t *testing.T, bomb []byte) int {
	fr := stdflate.NewReader(io.MultiReader(bytes.NewReader(bomb), bytes.NewReader(inflateTail[:])))
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	n := 0
	for {
		k, err := io.ReadFull(fr, buf)
		if !bytes.Equal(buf[:k], zero[:k]) {
			t.Fatal("not zeros")
		}
		n += k
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// heapCounters reads the bytes allocated so far and the live heap.
func heapCounters() (total, live uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc, ms.HeapAlloc
}

// checkBombBounded fails if inflating cost more than a few MiB of heap.
func checkBombBounded(t *testing.T, total0, live0 uint64) {
	t.Helper()
	const bound = 2 << 20
	total, live := heapCounters()
	if total-total0 > bound {
		t.Errorf("inflating the bomb allocated %d bytes; bound %d", total-total0, bound)
	}
	if live > live0 && live-live0 > bound {
		t.Errorf("the live heap grew by %d bytes; bound %d", live-live0, bound)
	}
	t.Logf("allocated %d bytes while inflating", total-total0)
}

// TestInflateBomb: about 100 KiB that inflate to 100 MiB, against a 64 KiB
// limit, in one frame: ErrMessageTooBig (close 1009) once the output passes
// the limit, having produced at most limit+1 bytes, for a bounded heap.
func TestInflateBomb(t *testing.T) {
	bomb := bombOnce()
	if len(bomb) < 50<<10 || len(bomb) > 200<<10 {
		t.Fatalf("the bomb is %d bytes; want about 100 KiB", len(bomb))
	}
	// It is what it claims: 100 MiB of zeros when nothing stops it, as the
	// standard library reads it too.
	if n := inflatedZeros(t, bomb); n != 1+258*bombMatches || n < bombPlain {
		t.Fatalf("the bomb inflates to %d bytes", n)
	}
	f := NewInflater()
	for _, chunk := range []int{0, 16 << 10, 1000} {
		runtime.GC()
		total0, live0 := heapCounters()
		f.Reset(bomb, nil, bombLimit)
		var out []byte
		var err error
		produced := 0
		for calls := 0; err == nil; calls++ {
			before := len(out)
			var done bool
			out, done, err = f.Inflate(out, chunk)
			produced += len(out) - before
			if done {
				t.Fatal("the bomb inflated within the limit")
			}
			if calls > bombLimit {
				t.Fatal("no progress")
			}
		}
		if err != ErrMessageTooBig || CloseCode(err) != 1009 {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if produced > bombLimit+1 {
			t.Fatalf("chunk %d: produced %d bytes past a %d limit", chunk, produced, bombLimit)
		}
		checkBombBounded(t, total0, live0)
		runtime.KeepAlive(out)
	}
}

// TestInflateBombFragments: the same bomb spread over fragments of a
// message. The receiver gathers the compressed payloads (its compressed
// size is bounded by the limit's allowance like any message's), then
// inflates in slices: the same 1009 after at most limit+1 bytes.
func TestInflateBombFragments(t *testing.T) {
	bomb := bombOnce()
	f := NewInflater()
	runtime.GC()
	total0, live0 := heapCounters()
	// Fragments of uneven sizes, as a sender may cut them.
	gathered := make([]byte, 0, len(bomb))
	for rest, i := bomb, 0; len(rest) > 0; i++ {
		n := min(len(rest), 1+(i*7919)%(24<<10))
		gathered = append(gathered, rest[:n]...)
		rest = rest[n:]
	}
	f.Reset(gathered, nil, bombLimit)
	var out []byte
	var err error
	for calls := 0; err == nil; calls++ {
		var done bool
		if out, done, err = f.Inflate(out, 4096); done || calls > bombLimit {
			t.Fatal("the bomb inflated within the limit")
		}
	}
	if err != ErrMessageTooBig || len(out) > bombLimit+1 {
		t.Fatalf("%v after %d bytes", err, len(out))
	}
	checkBombBounded(t, total0, live0)
	runtime.KeepAlive(gathered)
}
