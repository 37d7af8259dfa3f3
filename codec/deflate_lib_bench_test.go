package codec

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"runtime"
	"testing"

	kflate "github.com/klauspost/compress/flate"
)

// The library choice for permessage-deflate, measured side by side:
// klauspost/compress/flate (a BestSpeed Writer, and its stateless mode)
// against the standard library's compress/flate, on the corpus of
// deflate_data_test.go. Each compress op is one message: reset, write,
// sync flush, as a pooled compressor would do it. Each inflate op is one
// message into a reused buffer. "ratio" is compressed/plain.
//
//	go test -run '^$' -bench 'Lib' -benchmem ./codec/

type libCompressor struct {
	name string
	new  func() func(w *appendWriter, p []byte)
}

var libCompressors = []libCompressor{
	{"klauspost-L1", func() func(*appendWriter, []byte) {
		fw, _ := kflate.NewWriter(nil, kflate.BestSpeed)
		return func(w *appendWriter, p []byte) {
			fw.Reset(w)
			_, _ = fw.Write(p)
			_ = fw.Flush()
		}
	}},
	{"klauspost-stateless", func() func(*appendWriter, []byte) {
		return func(w *appendWriter, p []byte) {
			_ = kflate.StatelessDeflate(w, p, false, nil)
		}
	}},
	{"stdlib-L1", func() func(*appendWriter, []byte) {
		fw, _ := stdflate.NewWriter(nil, stdflate.BestSpeed)
		return func(w *appendWriter, p []byte) {
			fw.Reset(w)
			_, _ = fw.Write(p)
			_ = fw.Flush()
		}
	}},
}

func BenchmarkLibCompress(b *testing.B) {
	for _, c := range corpus {
		for _, lib := range libCompressors {
			b.Run(c.name+"/"+lib.name, func(b *testing.B) {
				compress := lib.new()
				w := &appendWriter{b: make([]byte, 0, len(c.data)+1024)}
				compress(w, c.data)
				b.SetBytes(int64(len(c.data)))
				b.ReportAllocs()
				cpu := startCPU(b)
				for b.Loop() {
					w.b = w.b[:0]
					compress(w, c.data)
				}
				cpu.report(b)
				b.ReportMetric(float64(len(w.b)-len(deflateTail))/float64(len(c.data)), "ratio")
			})
		}
	}
}

// byteSource is an io.ByteReader that is not one of the concrete types the
// klauspost decoder special-cases, to price its generic path.
type byteSource struct{ r bytes.Reader }

func (s *byteSource) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *byteSource) ReadByte() (byte, error)    { return s.r.ReadByte() }

type libInflater struct {
	name string
	new  func() io.ReadCloser
}

var libInflaters = []libInflater{
	{"klauspost", func() io.ReadCloser { return kflate.NewReader(nil) }},
	{"stdlib", func() io.ReadCloser { return stdflate.NewReader(bytes.NewReader(nil)) }},
}

func BenchmarkLibInflate(b *testing.B) {
	for _, c := range corpus {
		fw, _ := kflate.NewWriter(nil, kflate.BestSpeed)
		w := &appendWriter{}
		fw.Reset(w)
		_, _ = fw.Write(c.data)
		_ = fw.Flush()
		// The stripped message, the tail put back, and a final empty block
		// so that the reader ends with io.EOF.
		in := append(w.b, 0x01, 0x00, 0x00, 0xff, 0xff)
		out := make([]byte, len(c.data)+1)
		for _, lib := range libInflaters {
			for _, generic := range []bool{false, true} {
				name := c.name + "/" + lib.name
				if generic {
					name += "-generic-reader"
				}
				b.Run(name, func(b *testing.B) {
					fr := lib.new()
					var br bytes.Reader
					var bs byteSource
					inflate := func() int {
						var src io.Reader = &br
						if generic {
							bs.r.Reset(in)
							src = &bs
						} else {
							br.Reset(in)
						}
						_ = fr.(stdflate.Resetter).Reset(src, nil)
						n := 0
						for {
							k, err := fr.Read(out[n:])
							n += k
							if err == io.EOF {
								return n
							}
							if err != nil {
								b.Fatal(err)
							}
						}
					}
					if n := inflate(); n != len(c.data) || !bytes.Equal(out[:n], c.data) {
						b.Fatalf("inflated %d bytes, want %d", n, len(c.data))
					}
					b.SetBytes(int64(len(c.data)))
					b.ReportAllocs()
					cpu := startCPU(b)
					for b.Loop() {
						inflate()
					}
					cpu.report(b)
				})
			}
		}
	}
}

// heapHeld returns the live heap after a full collection.
func heapHeld() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkLibMemory reports the heap one pooled compressor or decompressor
// holds once it has handled a message of each corpus size: what a pool per
// event loop or worker costs, which idle connections never pay.
func BenchmarkLibMemory(b *testing.B) {
	const n = 16
	msg := corpus[1].data
	big := corpus[2].data
	cases := []struct {
		name string
		make func() any
	}{
		{"compressor/klauspost-L1", func() any {
			fw, _ := kflate.NewWriter(nil, kflate.BestSpeed)
			for _, p := range [][]byte{msg, big} {
				fw.Reset(io.Discard)
				_, _ = fw.Write(p)
				_ = fw.Flush()
			}
			return fw
		}},
		{"compressor/klauspost-window-1KiB", func() any {
			fw, _ := kflate.NewWriterWindow(nil, 1<<10)
			for _, p := range [][]byte{msg, big} {
				fw.Reset(io.Discard)
				_, _ = fw.Write(p)
				_ = fw.Flush()
			}
			return fw
		}},
		{"compressor/stdlib-L1", func() any {
			fw, _ := stdflate.NewWriter(nil, stdflate.BestSpeed)
			for _, p := range [][]byte{msg, big} {
				fw.Reset(io.Discard)
				_, _ = fw.Write(p)
				_ = fw.Flush()
			}
			return fw
		}},
		{"compressor/codec.Deflater", func() any {
			d := NewDeflater()
			_ = d.AppendCompress(nil, msg, nil, 15)
			_ = d.AppendCompress(nil, big, nil, 15)
			return d
		}},
		{"compressor/codec.Deflater+bounded", func() any {
			d := NewDeflater()
			_ = d.AppendCompress(nil, msg, nil, 15)
			_ = d.AppendCompress(nil, big, nil, 10)
			return d
		}},
		{"decompressor/codec.Inflater", func() any {
			f := NewInflater()
			f.Reset(NewDeflater().AppendCompress(nil, msg, nil, 15), nil, len(msg))
			if _, err := f.InflateAll(nil); err != nil {
				b.Fatal(err)
			}
			return f
		}},
		{"decompressor/klauspost", func() any { return warmReader(b, kflate.NewReader(nil), msg) }},
		{"decompressor/stdlib", func() any { return warmReader(b, stdflate.NewReader(bytes.NewReader(nil)), msg) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				keep := make([]any, n)
				before := heapHeld()
				for i := range keep {
					keep[i] = c.make()
				}
				after := heapHeld()
				runtime.KeepAlive(keep)
				per = float64(after-before) / n
			}
			b.ReportMetric(per, "B/held")
		})
	}
}

func warmReader(b *testing.B, fr io.ReadCloser, msg []byte) io.ReadCloser {
	fw, _ := kflate.NewWriter(nil, kflate.BestSpeed)
	w := &appendWriter{}
	fw.Reset(w)
	_, _ = fw.Write(msg)
	_ = fw.Flush()
	in := append(w.b, 0x01, 0x00, 0x00, 0xff, 0xff)
	_ = fr.(stdflate.Resetter).Reset(bytes.NewReader(in), nil)
	if _, err := io.Copy(io.Discard, fr); err != nil {
		b.Fatal(err)
	}
	_ = fr.(stdflate.Resetter).Reset(bytes.NewReader(nil), nil)
	return fr
}
