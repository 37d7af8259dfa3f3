package codec

// Window is the context of one direction of a connection with context
// takeover (RFC 7692 §7.1.1): the last bytes of plain text of the
// compressed messages sent that way, the dictionary of the next one.
// Messages sent uncompressed are not part of it: the peer's decoder never
// saw them.
//
// It is the only compression state a connection holds, and only with
// context takeover: Size bytes, allocated on the first Append. The zero
// value keeps nothing; Init gives it a size.
type Window struct {
	buf  []byte
	size int32
}

// Init sets the window to the last 1<<bits bytes (bits from 8 to 15, as
// DeflateParams.Send or Receive return) and empties it.
func (w *Window) Init(bits int) {
	bits = min(max(bits, MinDeflateWindowBits), MaxDeflateWindowBits)
	w.size = 1 << bits
	if cap(w.buf) != int(w.size) {
		w.buf = nil
	}
	w.buf = w.buf[:0]
}

// Size returns the most bytes the window keeps.
func (w *Window) Size() int { return int(w.size) }

// Append adds the plain text of a message just compressed or inflated with
// this window, keeping the last Size bytes.
func (w *Window) Append(msg []byte) {
	size := int(w.size)
	if size == 0 {
		return
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, size)
	}
	if len(msg) >= size {
		w.buf = append(w.buf[:0], msg[len(msg)-size:]...)
		return
	}
	if over := len(w.buf) + len(msg) - size; over > 0 {
		w.buf = w.buf[:copy(w.buf, w.buf[over:])]
	}
	w.buf = append(w.buf, msg...)
}

// Bytes returns the window's content, oldest first: the dict argument of
// Deflater.AppendCompress and Inflater.Reset. The view is valid until the
// next Append or Init.
func (w *Window) Bytes() []byte { return w.buf }

// Reset empties the window and releases its memory.
func (w *Window) Reset() { w.buf = nil }
