package codec

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"testing"
)

// deflateSizes are message sizes around the boundaries that matter: tiny,
// the 256- and 512-byte windows, the 64 KiB block of the compressor, more
// than the 32 KiB window.
var deflateSizes = []int{0, 1, 5, 100, 255, 256, 257, 511, 513, 1000, 4096, 40000, 65535, 65536, 70000, 140000}

func testMessage(size int, seed uint64) []byte {
	switch seed % 3 {
	case 0:
		return textPayload(size, seed)
	case 1:
		return jsonPayload(max(size, 1024), seed)[:size]
	}
	// Half random, half repeated: matches at every distance.
	p := randomPayload(size, seed)
	for i := size / 2; i < size; i++ {
		p[i] = p[i-size/2]
	}
	return p
}

// stdInflate decodes a stripped message with the standard library, a decoder
// independent of the one Inflater uses.
func stdInflate(t *testing.T, msg, dict []byte) []byte {
	t.Helper()
	in := append(append([]byte(nil), msg...), inflateTail[:]...)
	out, err := io.ReadAll(stdflate.NewReaderDict(bytes.NewReader(in), dict))
	if err != nil {
		t.Fatalf("compress/flate: %v", err)
	}
	return out
}

func TestDeflateRoundTrip(t *testing.T) {
	d := NewDeflater()
	f := NewInflater()
	for _, size := range deflateSizes {
		for seed := uint64(0); seed < 3; seed++ {
			msg := testMessage(size, seed)
			for _, bits := range []int{8, 9, 12, 14, 15} {
				for _, withDict := range []bool{false, true} {
					var dict []byte
					if withDict {
						dict = testMessage(1<<bits, seed+7)
					}
					name := fmt.Sprintf("size=%d/seed=%d/bits=%d/dict=%v", size, seed, bits, withDict)
					z := d.AppendCompress(nil, msg, dict, bits)
					if n := len(z); n >= 4 && [4]byte(z[n-4:]) == deflateTail {
						t.Fatalf("%s: tail not stripped", name)
					}
					// The Inflater, the standard library and the reference
					// decoder all read the message back.
					f.Reset(z, dict, len(msg))
					got, err := f.InflateAll(nil)
					if err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("%s: Inflater: %d bytes, %v", name, len(got), err)
					}
					if got := stdInflate(t, z, dict); !bytes.Equal(got, msg) {
						t.Fatalf("%s: compress/flate reads %d bytes", name, len(got))
					}
					ref, dist, err := refInflate(dict, append(z, deflateTail[:]...))
					if err != nil || !bytes.Equal(ref, msg) {
						t.Fatalf("%s: reference decoder: %d bytes, %v", name, len(ref), err)
					}
					// RFC 7692 §7.1.2: no match reaches past the window.
					if dist > 1<<bits {
						t.Fatalf("%s: a match %d bytes back, window %d", name, dist, 1<<bits)
					}
				}
			}
		}
	}
}

// TestDeflateDeterministic: with no dictionary the output depends on the
// message and the window alone, whatever the Deflater compressed before, so
// a published message compressed once serves every subscriber with the same
// parameters.
func TestDeflateDeterministic(t *testing.T) {
	msg := jsonPayload(4<<10, 9)
	want := NewDeflater().AppendCompress(nil, msg, nil, 15)
	d := NewDeflater()
	for i, other := range [][]byte{textPayload(100000, 1), nil, randomPayload(5000, 2), msg} {
		_ = d.AppendCompress(nil, other, textPayload(4096, 3), 15)
		if got := d.AppendCompress(nil, msg, nil, 15); !bytes.Equal(got, want) {
			t.Fatalf("after message %d the same message compresses differently", i)
		}
	}
	if len(want) >= len(msg)/2 {
		t.Fatalf("4 KiB of JSON compresses to %d bytes", len(want))
	}
}

// TestDeflateAppends: the result goes after what dst holds.
func TestDeflateAppends(t *testing.T) {
	d := NewDeflater()
	msg := []byte("Hello Hello Hello Hello")
	z := d.AppendCompress([]byte("head"), msg, nil, 15)
	if string(z[:4]) != "head" {
		t.Fatalf("prefix lost: %q", z)
	}
	if got := stdInflate(t, z[4:], nil); !bytes.Equal(got, msg) {
		t.Fatalf("got %q", got)
	}
	// The empty message compresses to the single byte of RFC 7692
	// §7.2.3.6.
	if z := d.AppendCompress(nil, nil, nil, 15); !bytes.Equal(z, []byte{0x00}) {
		t.Fatalf("empty message: %x", z)
	}
}

// The examples of RFC 7692 §7.2.3, each "Hello".
func TestInflateRFCExamples(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		dict    string
	}{
		{"7.2.3.1 one compressed block", []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, ""},
		{"7.2.3.2 sharing the window", []byte{0xf2, 0x00, 0x11, 0x00, 0x00}, "Hello"},
		{"7.2.3.3 no compression", []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, ""},
		{"7.2.3.4 BFINAL set", []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, ""},
		{"7.2.3.5 two blocks", []byte{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}, ""},
	}
	f := NewInflater()
	for _, c := range cases {
		f.Reset(c.payload, []byte(c.dict), 100)
		got, err := f.InflateAll(nil)
		if err != nil || string(got) != "Hello" {
			t.Errorf("%s: %q, %v", c.name, got, err)
		}
	}
	// §7.2.3.6: 0x00 is an empty message.
	f.Reset([]byte{0x00}, nil, 0)
	if got, err := f.InflateAll(nil); err != nil || len(got) != 0 {
		t.Errorf("empty: %q, %v", got, err)
	}
}

func TestInflateLimit(t *testing.T) {
	d := NewDeflater()
	f := NewInflater()
	msg := textPayload(100000, 5)
	z := d.AppendCompress(nil, msg, nil, 15)
	for _, limit := range []int{len(msg), len(msg) + 1, 1 << 20} {
		f.Reset(z, nil, limit)
		if got, err := f.InflateAll(nil); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("limit %d: %d bytes, %v", limit, len(got), err)
		}
	}
	for _, limit := range []int{len(msg) - 1, 1000, 1, 0, -5} {
		for _, chunk := range []int{0, 1, 777, 1 << 20} {
			f.Reset(z, nil, limit)
			var got []byte
			var err error
			var done bool
			for calls := 0; err == nil && !done; calls++ {
				if calls > len(msg)+2 {
					t.Fatal("no progress")
				}
				got, done, err = f.Inflate(got, chunk)
			}
			if err != ErrMessageTooBig || CloseCode(err) != 1009 {
				t.Fatalf("limit %d chunk %d: %v, done %v", limit, chunk, err, done)
			}
			if len(got) > max(limit, 0)+1 || !bytes.Equal(got, msg[:len(got)]) {
				t.Fatalf("limit %d chunk %d: %d bytes out", limit, chunk, len(got))
			}
			// Spent until Reset.
			if _, _, err := f.Inflate(nil, 0); err == nil {
				t.Fatal("a failed message goes on")
			}
		}
	}
}

func TestInflateSlices(t *testing.T) {
	d := NewDeflater()
	f := NewInflater()
	msg := jsonPayload(200000, 6)
	z := d.AppendCompress(nil, msg, nil, 15)
	for _, chunk := range []int{1, 100, 4096, 65536} {
		f.Reset(z, nil, len(msg))
		var got []byte
		for calls := 0; ; calls++ {
			before := len(got)
			var done bool
			var err error
			got, done, err = f.Inflate(got, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if len(got)-before > chunk {
				t.Fatalf("chunk %d: one call produced %d bytes", chunk, len(got)-before)
			}
			if done {
				break
			}
			if calls > len(msg)+1 {
				t.Fatal("no progress")
			}
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("chunk %d: %d bytes", chunk, len(got))
		}
		// Done stays done.
		if out, done, err := f.Inflate(got, chunk); !done || err != nil || len(out) != len(got) {
			t.Fatal("after done:", done, err)
		}
	}
}

func TestInflateCorrupt(t *testing.T) {
	f := NewInflater()
	good := NewDeflater().AppendCompress(nil, textPayload(5000, 8), nil, 15)
	cases := map[string][]byte{
		"reserved block type":    {0x07},
		"stored length mismatch": {0x00, 0x05, 0x00, 0xfb, 0xff, 'H'},
		"distance before start":  {0x03, 0x02, 0x00}, // a fixed block that starts with a match
		"bad dynamic header":     {0xfc, 0xff, 0xff, 0xff, 0xff, 0xff},
		"truncated":              good[:len(good)/2],
	}
	for name, in := range cases {
		f.Reset(in, nil, 1<<20)
		out, err := f.InflateAll(nil)
		if err != ErrCompressedData || CloseCode(err) != 1007 {
			t.Errorf("%s: %d bytes, %v; want ErrCompressedData", name, len(out), err)
		}
	}
	// Trailing bytes after a final block are ignored, as zlib does.
	f.Reset([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xde, 0xad}, nil, 10)
	if out, err := f.InflateAll(nil); err != nil || string(out) != "Hello" {
		t.Errorf("after a final block: %q, %v", out, err)
	}
}

// TestContextTakeoverStream: with context takeover on both sides, each
// message is compressed against the sender's window and inflated against
// the receiver's, and a peer that keeps one DEFLATE stream for the whole
// connection (zlib with a 32 KiB window, as every browser does) reads the
// concatenated messages too.
func TestContextTakeoverStream(t *testing.T) {
	for _, bits := range []int{8, 10, 12, 15} {
		d := NewDeflater()
		f := NewInflater()
		var send, recv Window
		send.Init(bits)
		recv.Init(bits)
		var stream []byte // every payload with its tail: what zlib's inflater sees
		var plain []byte
		msgs := jsonStream(60, 1024, uint64(bits))
		msgs = append(append(msgs, textPayload(70000, 3)), jsonStream(3, 300, 4)...)
		total := 0
		for i, msg := range msgs {
			z := d.AppendCompress(nil, msg, send.Bytes(), bits)
			send.Append(msg)
			f.Reset(z, recv.Bytes(), len(msg))
			got, err := f.InflateAll(nil)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("bits %d message %d: %d bytes, %v", bits, i, len(got), err)
			}
			recv.Append(got)
			stream = append(append(stream, z...), deflateTail[:]...)
			plain = append(plain, msg...)
			total += len(z)
		}
		got, err := io.ReadAll(stdflate.NewReader(io.MultiReader(bytes.NewReader(stream), bytes.NewReader(inflateTail[4:]))))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("bits %d: one stream reads %d bytes, %v", bits, len(got), err)
		}
		// The reference decoder over the whole stream: no match reaches past
		// the window, across messages too.
		ref, dist, err := refInflate(nil, stream)
		if err != nil || !bytes.Equal(ref, plain) || dist > 1<<bits {
			t.Fatalf("bits %d: reference decoder %d bytes, %v, distance %d", bits, len(ref), err, dist)
		}
		if send.Size() != 1<<bits || !bytes.Equal(send.Bytes(), plain[len(plain)-1<<bits:]) {
			t.Fatalf("bits %d: the window holds %d bytes", bits, len(send.Bytes()))
		}
	}
}

func TestWindow(t *testing.T) {
	var w Window
	w.Append([]byte("ignored")) // no size yet
	if len(w.Bytes()) != 0 {
		t.Fatal("a window without a size keeps bytes")
	}
	w.Init(8)
	var all []byte
	for i := range 100 {
		p := bytes.Repeat([]byte{byte(i)}, i*7%300)
		w.Append(p)
		all = append(all, p...)
		want := all[max(0, len(all)-256):]
		if !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("after %d appends: %d bytes, want %d", i, len(w.Bytes()), len(want))
		}
		if cap(w.Bytes()) != 256 {
			t.Fatalf("cap %d", cap(w.Bytes()))
		}
	}
	w.Init(9) // a larger size: reuses nothing it cannot
	if len(w.Bytes()) != 0 || w.Size() != 512 {
		t.Fatal("Init does not empty")
	}
	w.Reset()
	if w.Bytes() != nil {
		t.Fatal("Reset keeps memory")
	}
}

// TestDeflateBound: what the Deflater and zlib write for incompressible
// data fits the bound a receiver enforces.
func TestDeflateBound(t *testing.T) {
	d := NewDeflater()
	for _, n := range []int{0, 1, 100, 65535, 65536, 200000, 1 << 20} {
		msg := randomPayload(n, uint64(n))
		for _, bits := range []int{9, 15} {
			if z := d.AppendCompress(nil, msg, nil, bits); len(z) > DeflateBound(n) {
				t.Errorf("%d random bytes, bits %d: %d compressed, bound %d", n, bits, len(z), DeflateBound(n))
			}
		}
	}
	if DeflateBound(1<<30) <= 1<<30 || DeflateBound(1<<30) > 1<<31-1 {
		t.Fatal("bound out of range for the largest message limit")
	}
}
