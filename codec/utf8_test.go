package codec

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

var utf8Cases = []struct {
	name     string
	in       []byte
	bad      int  // index of the first byte that makes the prefix invalid; -1 if none
	complete bool // valid and ends on a rune boundary
}{
	{name: "empty", in: []byte{}, bad: -1, complete: true},
	{name: "ascii", in: []byte("hello"), bad: -1, complete: true},
	{name: "two-byte", in: []byte("\u00e9t\u00e9"), bad: -1, complete: true},
	{name: "three-byte", in: []byte("\u20ac\u20ac"), bad: -1, complete: true},
	{name: "four-byte", in: []byte("\U0001F600x"), bad: -1, complete: true},
	{name: "U+D7FF last before surrogates", in: []byte{0xed, 0x9f, 0xbf}, bad: -1, complete: true},
	{name: "U+E000 first after surrogates", in: []byte{0xee, 0x80, 0x80}, bad: -1, complete: true},
	{name: "U+FFFF", in: []byte{0xef, 0xbf, 0xbf}, bad: -1, complete: true},
	{name: "U+10FFFF max", in: []byte{0xf4, 0x8f, 0xbf, 0xbf}, bad: -1, complete: true},
	{name: "U+0080 min two-byte", in: []byte{0xc2, 0x80}, bad: -1, complete: true},
	{name: "U+0800 min three-byte", in: []byte{0xe0, 0xa0, 0x80}, bad: -1, complete: true},
	{name: "U+10000 min four-byte", in: []byte{0xf0, 0x90, 0x80, 0x80}, bad: -1, complete: true},

	{name: "truncated two-byte", in: []byte{'a', 0xc3}, bad: -1},
	{name: "truncated three-byte", in: []byte{'a', 0xe2, 0x82}, bad: -1},
	{name: "truncated four-byte", in: []byte{0xf0, 0x9f, 0x98}, bad: -1},

	{name: "surrogate U+D800", in: []byte{0xed, 0xa0, 0x80}, bad: 1},
	{name: "surrogate U+DFFF", in: []byte{'x', 0xed, 0xbf, 0xbf}, bad: 2},
	{name: "overlong C0 80", in: []byte{0xc0, 0x80}, bad: 0},
	{name: "overlong C1 BF", in: []byte{0xc1, 0xbf}, bad: 0},
	{name: "overlong E0 80 80", in: []byte{0xe0, 0x80, 0x80}, bad: 1},
	{name: "overlong E0 9F BF", in: []byte{0xe0, 0x9f, 0xbf}, bad: 1},
	{name: "overlong F0 80 80 80", in: []byte{0xf0, 0x80, 0x80, 0x80}, bad: 1},
	{name: "overlong F0 8F BF BF", in: []byte{0xf0, 0x8f, 0xbf, 0xbf}, bad: 1},
	{name: "above U+10FFFF F4 90 80 80", in: []byte{0xf4, 0x90, 0x80, 0x80}, bad: 1},
	{name: "F5 lead", in: []byte{0xf5, 0x80, 0x80, 0x80}, bad: 0},
	{name: "FF byte", in: []byte{'a', 'b', 0xff}, bad: 2},
	{name: "lone continuation", in: []byte{0x80}, bad: 0},
	{name: "continuation after ascii", in: []byte("ok\xbf"), bad: 2},
	{name: "too many continuations", in: []byte{0xc3, 0xa9, 0xa9}, bad: 2},
	{name: "lead interrupted by ascii", in: []byte{0xe2, 0x82, 'a'}, bad: 2},
	{name: "lead interrupted by lead", in: []byte{0xe2, 0xe2, 0x82, 0xac}, bad: 1},
	{name: "valid then truncated then ascii", in: []byte("\u20ac\xf0\x9f!"), bad: 5},
}

func TestUTF8Table(t *testing.T) {
	for _, tc := range utf8Cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstBad(tc.in); got != tc.bad {
				t.Fatalf("table error: reference firstBad = %d, table says %d", got, tc.bad)
			}
			var v UTF8
			ok := v.Write(tc.in)
			if ok != (tc.bad < 0) {
				t.Fatalf("Write = %v; want %v", ok, tc.bad < 0)
			}
			if v.Complete() != tc.complete {
				t.Fatalf("Complete = %v; want %v", v.Complete(), tc.complete)
			}
			if ValidUTF8(tc.in) != tc.complete {
				t.Fatalf("ValidUTF8 = %v; want %v", ValidUTF8(tc.in), tc.complete)
			}
			if (tc.complete || !ok) && v.Write([]byte("a")) != ok {
				t.Fatal("a failed validator must stay failed; a complete one must accept more ASCII")
			}
			v.Reset()
			if !v.Write([]byte("fresh")) || !v.Complete() {
				t.Fatal("Reset did not clear the validator")
			}
		})
	}
}

// TestUTF8ByteByByte feeds each case one byte at a time: Write must fail at
// exactly the first bad byte, not before and not after.
func TestUTF8ByteByByte(t *testing.T) {
	for _, tc := range utf8Cases {
		t.Run(tc.name, func(t *testing.T) {
			var v UTF8
			for i, b := range tc.in {
				ok := v.Write([]byte{b})
				if want := tc.bad < 0 || i < tc.bad; ok != want {
					t.Fatalf("Write(byte %d = %#x) = %v; want %v", i, b, ok, want)
				}
			}
			if v.Complete() != tc.complete {
				t.Fatalf("Complete = %v; want %v", v.Complete(), tc.complete)
			}
		})
	}
}

// TestUTF8RandomSplits cross-checks the validator against unicode/utf8 on
// random inputs cut into random chunks: the whole verdict must match
// utf8.Valid, and the first failing Write must be the chunk holding the
// first bad byte.
func TestUTF8RandomSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	// Mostly valid text with rare corruption, so that both verdicts occur
	// and bad bytes land anywhere, including inside long valid runs.
	alphabet := []string{"a", "z", " ", "\u00e9", "\u07ff", "\u0800", "\u20ac", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010ffff"}
	for range 3000 {
		var p []byte
		n := rng.IntN(300)
		for len(p) < n {
			p = append(p, alphabet[rng.IntN(len(alphabet))]...)
		}
		if rng.IntN(3) > 0 && len(p) > 0 {
			// Corrupt: a random byte, or truncate mid-rune.
			if rng.IntN(2) == 0 {
				p[rng.IntN(len(p))] = byte(rng.Uint32())
			} else {
				p = p[:rng.IntN(len(p))]
			}
		}
		bad := firstBad(p)
		var v UTF8
		failedAt := -1
		for off := 0; off < len(p); {
			end := min(len(p), off+1+rng.IntN(40))
			if !v.Write(p[off:end]) && failedAt < 0 {
				failedAt = off
				if bad < off || bad >= end {
					t.Fatalf("%x: Write failed on chunk [%d,%d); first bad byte is %d", p, off, end, bad)
				}
			}
			if failedAt < 0 && bad >= off && bad < end {
				t.Fatalf("%x: Write accepted chunk [%d,%d) holding bad byte %d", p, off, end, bad)
			}
			off = end
		}
		if got, want := v.Complete(), utf8.Valid(p); got != want {
			t.Fatalf("%x: Complete = %v; utf8.Valid = %v", p, got, want)
		}
	}
}

// firstBad is the reference for fail-fast: the index of the first byte after
// which p's prefix cannot begin valid UTF-8, or -1. utf8.FullRune reports
// false exactly for a proper prefix of a valid encoding.
func firstBad(p []byte) int {
	for i := 0; i < len(p); {
		if !utf8.FullRune(p[i:]) {
			return -1 // a valid but incomplete tail
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			valid := 0 // how many bytes at i still begin a valid rune
			for valid < 3 && i+valid+1 <= len(p) && !utf8.FullRune(p[i:i+valid+1]) {
				valid++
			}
			return i + valid
		}
		i += size
	}
	return -1
}

// TestUTF8Exhaustive checks the automaton and its byte classes against
// unicode/utf8: every input of one and two bytes, every three-byte input that
// starts with a non-ASCII byte (an ASCII start reduces to the two-byte case),
// and every four-byte input starting F0-F4 whose last two bytes come from the
// edges of the byte classes.
func TestUTF8Exhaustive(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("millions of inputs; the race detector adds nothing to pure computation")
	}
	check := func(p []byte) {
		var v UTF8
		ok := v.Write(p)
		if ok != (firstBad(p) < 0) || v.Complete() != utf8.Valid(p) {
			t.Fatalf("%x: Write = %v, Complete = %v; want %v, %v", p, ok, v.Complete(), firstBad(p) < 0, utf8.Valid(p))
		}
	}
	var b [4]byte
	for i := range 1 << 16 {
		b[0], b[1] = byte(i>>8), byte(i)
		check(b[:1])
		check(b[:2])
	}
	for i := 0x80 << 16; i < 1<<24; i++ {
		b[0], b[1], b[2] = byte(i>>16), byte(i>>8), byte(i)
		check(b[:3])
	}
	edges := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff}
	for i := 0xf000; i < 0xf500; i++ {
		b[0], b[1] = byte(i>>8), byte(i)
		for _, c := range edges {
			for _, d := range edges {
				b[2], b[3] = c, d
				check(b[:4])
			}
		}
	}
}
