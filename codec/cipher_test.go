package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// cipherRef is RFC 6455 §5.3 written out: octet i of the payload is xored
// with octet (i mod 4) of the key.
func cipherRef(p []byte, key [4]byte, offset int) {
	for i := range p {
		p[i] ^= key[(offset+i)%4]
	}
}

func TestCipherMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	sizes := []int{1024 + 7, 64<<10 + 3}
	for n := 0; n <= 200; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		for offset := range 8 {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			want := append([]byte(nil), p...)
			cipherRef(want, key, offset)
			Cipher(p, key, offset)
			if !bytes.Equal(p, want) {
				t.Fatalf("Cipher(len %d, offset %d) differs from the reference", n, offset)
			}
		}
	}
}

// TestCipherChunked unmasks a payload in chunks cut at arbitrary offsets, as
// the event loop does when a frame arrives over several reads, and compares
// with one call over the whole payload.
func TestCipherChunked(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3, 17, 100, 1024, 64<<10 + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			for range 50 {
				var key [4]byte
				for i := range key {
					key[i] = byte(rng.Uint32())
				}
				plain := make([]byte, n)
				for i := range plain {
					plain[i] = byte(rng.Uint32())
				}
				whole := append([]byte(nil), plain...)
				Cipher(whole, key, 0)

				chunked := append([]byte(nil), plain...)
				for off := 0; off < n; {
					end := min(n, off+1+rng.IntN(n/3+40))
					Cipher(chunked[off:end], key, off)
					off = end
				}
				if !bytes.Equal(chunked, whole) {
					t.Fatalf("chunked Cipher differs from one-shot (len %d, key %x)", n, key)
				}
				Cipher(chunked, key, 0)
				if !bytes.Equal(chunked, plain) {
					t.Fatal("Cipher twice is not the identity")
				}
			}
		})
	}
}
