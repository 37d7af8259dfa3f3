package codec

import (
	"github.com/klauspost/compress/flate"
)

// deflateTail is the empty stored block a sync flush ends with, which the
// sender strips from every compressed message (RFC 7692 §7.2.1).
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// Deflater compresses whole messages for permessage-deflate (RFC 7692
// §7.2.1). It holds no state between messages: one Deflater serves every
// connection of an event loop or worker, one message at a time, which is
// what keeps an idle connection free of compression state. It is not safe
// for concurrent use.
//
// It uses klauspost/compress/flate at BestSpeed: a sync flush ends each
// message, never a final block, so that a peer with context takeover reads
// the messages as one stream. Its state, about 800 KB, is allocated on the
// first message; a Deflater that is also asked for windows smaller than
// 15 bits on messages longer than the window holds one bounded-window
// compressor more (about 1 MB).
//
// The zero value is ready to use.
type Deflater struct {
	full    *flate.Writer // matches reach up to 32 KiB back
	bounded *flate.Writer // matches reach at most 1<<boundedBits bytes back
	// boundedBits is the window of bounded. A bounded writer serves every
	// window at least as large, so it is replaced only for a smaller one:
	// a Deflater keeps at most one, for the smallest window it has met.
	boundedBits int
	out         appendWriter
}

// appendWriter is an io.Writer that appends to a caller's slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// NewDeflater returns a Deflater with its compressor allocated, so that the
// first message costs no more than the next.
func NewDeflater() *Deflater {
	d := &Deflater{}
	d.fullWriter()
	return d
}

func (d *Deflater) fullWriter() *flate.Writer {
	if d.full == nil {
		d.full, _ = flate.NewWriter(nil, flate.BestSpeed) // never fails for BestSpeed
	}
	return d.full
}

func (d *Deflater) boundedWriter(bits int) *flate.Writer {
	if d.bounded == nil || d.boundedBits > bits {
		// The window size is within [MinCustomWindowSize,
		// MaxCustomWindowSize] for every bits from 8 to 14.
		d.bounded, _ = flate.NewWriterWindow(nil, 1<<bits)
		d.boundedBits = bits
	}
	return d.bounded
}

// AppendCompress appends the permessage-deflate payload of the message msg
// to dst: its DEFLATE encoding ending in a sync flush, with the 00 00 FF FF
// tail stripped (§7.2.1). The frame that carries it, or the first of its
// fragments, has RSV1 set (§6.1).
//
// bits is the LZ77 window the agreement allows this sender (the bits of
// DeflateParams.Send, 8 to 15; 0 means 15): no match reaches further back,
// so the peer's window of that size always suffices. For a message that
// fits in the window with its dictionary, any match does; longer messages
// under a window below 15 bits go through a compressor whose matches are
// bounded (klauspost's NewWriterWindow), which compresses a little less.
//
// dict is the plain text of the compressed messages sent before on this
// connection with context takeover, the last bytes of the peer's window
// (Window.Bytes), or nil without context takeover: then the result depends
// on msg and bits alone, and one compression serves every connection that
// agreed on the same window. Only the last 1<<bits bytes of dict are used.
//
// The result may be longer than msg for incompressible data (a few bytes
// per 64 KiB): send msg uncompressed then. AppendCompress allocates nothing
// once the Deflater has met a message of the same kind and dst has room.
func (d *Deflater) AppendCompress(dst, msg, dict []byte, bits int) []byte {
	if bits <= 0 || bits > MaxDeflateWindowBits {
		bits = MaxDeflateWindowBits
	}
	bits = max(bits, MinDeflateWindowBits)
	window := 1 << bits
	if len(dict) > window {
		dict = dict[len(dict)-window:]
	}
	var fw *flate.Writer
	if bits == MaxDeflateWindowBits || len(msg) <= window-len(dict) {
		// No distance can exceed what precedes a byte in dict+msg.
		fw = d.fullWriter()
	} else {
		fw = d.boundedWriter(bits)
	}
	d.out.b = dst
	start := len(dst)
	// ResetDict, even with a nil dict: a Writer keeps the last dictionary it
	// was given and Reset would load it again.
	fw.ResetDict(&d.out, dict)
	_, _ = fw.Write(msg) // writes to an appendWriter cannot fail
	_ = fw.Flush()
	out := d.out.b
	d.out.b = nil
	fw.ResetDict(nil, nil) // drop the references to dst and dict
	if n := len(out); n-start >= len(deflateTail) && [4]byte(out[n-4:]) == deflateTail {
		out = out[:n-4]
	}
	return out
}
