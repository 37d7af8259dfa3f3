package codec

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/flate"
)

// inflateTail is what a receiver appends to a compressed message before
// inflating it: the 00 00 FF FF the sender stripped (RFC 7692 §7.2.2), then
// an empty final stored block, so that the decoder ends the message with
// io.EOF instead of waiting for a next block (gws appends the same).
var inflateTail = [9]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// Inflater decompresses permessage-deflate messages into a caller's buffer
// (RFC 7692 §7.2.2), stopping at a size limit. It holds a 32 KiB window,
// Huffman tables and a 16 KiB copy buffer (about 55 KB in all), none of it
// tied to a connection between messages: one Inflater serves a loop or a
// worker, one message at a time. It is not safe for concurrent use.
//
// A message is inflated in slices: Reset starts it, and each Inflate call
// produces at most the bytes it is asked for, so that the caller bounds the
// work per event for a large message and stops at its limit without ever
// holding more than the limit: a decompression bomb costs one bounded
// buffer. The compressed message must be complete before the first Inflate
// (the decoder cannot wait for input), so fragments are gathered first.
//
// The zero value is ready to use.
type Inflater struct {
	fr io.ReadCloser // klauspost's decompressor; a flate.Resetter
	// A message of up to stageMax bytes is copied with its tail into
	// stage and read through a bytes.Reader, which the decoder reads
	// without an interface call per byte (a quarter less CPU on 16 KiB of
	// JSON); a longer one is read in place through src.
	stage []byte
	br    bytes.Reader
	src   inflateSource
	limit int // largest plain size accepted for this message
	n     int // plain bytes produced so far
	state inflateState
}

// stageMax is the largest compressed message copied into the stage.
const stageMax = 16 << 10

type inflateState uint8

const (
	inflateIdle    inflateState = iota // no message, or the last one finished
	inflateRunning                     // between Reset and the end
	inflateFailed                      // the message failed; Reset for the next
)

// NewInflater returns an Inflater with its decoder and window allocated.
func NewInflater() *Inflater {
	f := &Inflater{}
	f.decoder()
	return f
}

func (f *Inflater) decoder() flate.Resetter {
	if f.fr == nil {
		f.fr = flate.NewReader(&f.src)
	}
	return f.fr.(flate.Resetter)
}

// Reset starts inflating one message. msg is its compressed payload, the
// payloads of all its frames concatenated as received, without the tail
// (Reset adds it). dict is the peer's window with context takeover, the
// plain text of its previous compressed messages (Window.Bytes), or nil.
// limit is the largest plain size accepted (the connection's message
// limit); a limit <= 0 accepts nothing but the empty message. msg and dict
// must stay unchanged until the message is done or Reset is called again.
func (f *Inflater) Reset(msg, dict []byte, limit int) {
	if len(msg) <= stageMax-len(inflateTail) {
		if f.stage == nil {
			f.stage = make([]byte, 0, stageMax)
		}
		f.stage = append(append(f.stage[:0], msg...), inflateTail[:]...)
		f.br.Reset(f.stage)
		_ = f.decoder().Reset(&f.br, dict) // never fails
	} else {
		f.src = inflateSource{msg: msg}
		_ = f.decoder().Reset(&f.src, dict)
	}
	f.limit = max(limit, 0)
	f.n = 0
	f.state = inflateRunning
}

// Inflate appends at most max bytes of the message's plain text to dst (max
// <= 0 means no bound but the limit) and reports whether the message is
// complete. It returns ErrMessageTooBig as soon as the plain text exceeds
// the limit, having produced at most limit+1 bytes of it in all, and
// ErrCompressedData for data that is not DEFLATE. After done or an error,
// call Reset before the next message.
//
// Data after a final DEFLATE block (a sender may end a message with one,
// §7.2.3.4 of RFC 7692) is ignored, as zlib ignores it. When dst lacks room
// Inflate grows it, doubling it but never by more than this call may still
// produce; with room, it allocates nothing.
func (f *Inflater) Inflate(dst []byte, max int) (out []byte, done bool, err error) {
	switch f.state {
	case inflateIdle:
		return dst, true, nil
	case inflateFailed:
		return dst, false, ErrCompressedData
	}
	// room is what this call may produce: max bytes, and never more than
	// one past the limit, which is how going over it shows.
	room := f.limit - f.n + 1
	if max > 0 && max < room {
		room = max
	}
	for room > 0 {
		if len(dst) == cap(dst) {
			dst = growFor(dst, room)
		}
		b := dst[len(dst):cap(dst)]
		if len(b) > room {
			b = b[:room]
		}
		k, rerr := f.fr.Read(b)
		dst = dst[:len(dst)+k]
		f.n += k
		room -= k
		if f.n > f.limit {
			f.fail()
			return dst, false, ErrMessageTooBig
		}
		switch rerr {
		case nil:
		case io.EOF:
			f.state = inflateIdle
			f.src = inflateSource{}
			return dst, true, nil
		default:
			f.fail()
			return dst, false, ErrCompressedData
		}
	}
	return dst, false, nil
}

// fail ends the message and drops the reference to its input.
func (f *Inflater) fail() {
	f.state = inflateFailed
	f.src = inflateSource{}
}

// InflateAll inflates the rest of the message into dst: Inflate without a
// bound per call.
func (f *Inflater) InflateAll(dst []byte) ([]byte, error) {
	dst, _, err := f.Inflate(dst, 0)
	return dst, err
}

// growFor returns dst with room for more bytes, at most want: double the
// buffer, or what want asks for if that is less, and at least 512 bytes.
func growFor(dst []byte, want int) []byte {
	n := min(max(cap(dst), 512), want)
	return append(dst[:cap(dst)], make([]byte, n)...)[:len(dst)]
}

// inflateSource feeds the decoder the message, then the tail. It is an
// io.ByteReader, so the decoder reads it directly instead of through a
// bufio.Reader of its own (4 KiB more per Inflater, and read-ahead).
type inflateSource struct {
	msg  []byte
	tail int // bytes of inflateTail already read
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.msg) > 0 {
		c := s.msg[0]
		s.msg = s.msg[1:]
		return c, nil
	}
	if s.tail < len(inflateTail) {
		c := inflateTail[s.tail]
		s.tail++
		return c, nil
	}
	return 0, io.EOF
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(s.msg) > 0 {
		n := copy(p, s.msg)
		s.msg = s.msg[n:]
		return n, nil
	}
	if s.tail < len(inflateTail) {
		n := copy(p, inflateTail[s.tail:])
		s.tail += n
		return n, nil
	}
	return 0, io.EOF
}

// DeflateBound returns the most bytes a compressed message may take on the
// wire when its plain text is at most n bytes: zlib's deflateBound for
// settings other than its defaults, n + n/8 + n/64 + 5 rounded up, which
// holds for every compressor in use (stored blocks cost 5 bytes per 64 KiB).
// A receiver refuses a compressed message whose payload grows past it with
// 1009, before inflating anything, so that the compressed bytes it gathers
// are bounded by the message limit too. n must be at most 1 GiB.
func DeflateBound(n int) int {
	return n + (n+7)>>3 + (n+63)>>6 + 5
}
