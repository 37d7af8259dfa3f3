package codec

import (
	"fmt"
	"testing"
)

// The compression engine as the loop will use it, on the corpus of
// deflate_data_test.go. "ratio" is compressed/plain.
//
//	go test -run '^$' -bench 'Deflater|Inflater|ContextWindow' -benchmem ./codec/

func BenchmarkDeflater(b *testing.B) {
	for _, c := range corpus {
		for _, bits := range []int{15, 10} {
			b.Run(fmt.Sprintf("%s/bits=%d", c.name, bits), func(b *testing.B) {
				d := NewDeflater()
				out := d.AppendCompress(nil, c.data, nil, bits)
				b.SetBytes(int64(len(c.data)))
				b.ReportAllocs()
				cpu := startCPU(b)
				for b.Loop() {
					out = d.AppendCompress(out[:0], c.data, nil, bits)
				}
				cpu.report(b)
				b.ReportMetric(float64(len(out))/float64(len(c.data)), "ratio")
			})
		}
	}
}

func BenchmarkInflater(b *testing.B) {
	for _, c := range corpus {
		b.Run(c.name, func(b *testing.B) {
			z := NewDeflater().AppendCompress(nil, c.data, nil, 15)
			f := NewInflater()
			out := make([]byte, 0, len(c.data)+1)
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				f.Reset(z, nil, len(c.data))
				var err error
				if out, err = f.InflateAll(out[:0]); err != nil || len(out) != len(c.data) {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkContextWindow measures what context takeover buys on a stream
// of similar JSON messages, per window size kept per connection (bits=0:
// no context takeover): ratio over the stream, and the cost per message of
// compressing against the window and inflating against it.
func BenchmarkContextWindow(b *testing.B) {
	for _, size := range []int{300, 1024} {
		msgs := jsonStream(200, size, uint64(size))
		for _, bits := range []int{0, 10, 12, 13, 15} {
			b.Run(fmt.Sprintf("msg=%dB/bits=%d", size, bits), func(b *testing.B) {
				d := NewDeflater()
				f := NewInflater()
				var send, recv Window
				out := make([]byte, 0, 4096)
				plainOut := make([]byte, 0, 4096)
				wire, sent := 0, 0
				b.ReportAllocs()
				i := 0
				cpu := startCPU(b)
				for b.Loop() {
					if i%len(msgs) == 0 {
						send.Init(max(bits, 8))
						recv.Init(max(bits, 8))
					}
					m := msgs[i%len(msgs)]
					i++
					var dict, rdict []byte
					if bits > 0 {
						dict, rdict = send.Bytes(), recv.Bytes()
					}
					out = d.AppendCompress(out[:0], m, dict, 15)
					wire += len(out)
					sent += len(m)
					f.Reset(out, rdict, len(m))
					var err error
					if plainOut, err = f.InflateAll(plainOut[:0]); err != nil {
						b.Fatal(err)
					}
					if bits > 0 {
						send.Append(m)
						recv.Append(plainOut)
					}
				}
				cpu.report(b)
				b.ReportMetric(float64(wire)/float64(sent), "ratio")
			})
		}
	}
}
