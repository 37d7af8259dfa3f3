package loop

import (
	"runtime"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// permessage-deflate for publishes: one compression per publish, shared by
// the subscribers that can take it (deflate.go has the rest).

// takesShared reports whether c takes a publish's shared compressed frame:
// compressed with no dictionary and the full window, valid for any
// agreement with a 15-bit server window. Connections with server context
// takeover get the plain frame: their send window would have to take the
// text of every frame actually written to them.
func (c *Conn) takesShared() bool {
	if !c.deflating() {
		return false
	}
	d := c.deflateExtState()
	return d == nil || d.sendBits == codec.MaxDeflateWindowBits && d.send.Size() == 0
}

// sharedDeflaters is the publish pool: GOMAXPROCS Deflaters at most, made
// on demand and kept (a sync.Pool would drop 800 KB writers at every GC).
var sharedDeflaters = make(chan *codec.Deflater, runtime.GOMAXPROCS(0))

// compressShared sets f.z to the compressed form of a publish's frame when
// some target loop has a deflating connection, the message is at least
// CompressionMinSize and compressing makes it smaller. Once per publish,
// whatever the number of subscribers.
func (s *Server) compressShared(f *sharedFrame, op OpCode, data []byte, targets []*eventLoop) {
	if s.cfg.Deflate == nil || len(data) < s.cfg.CompressionMinSize {
		return
	}
	some := false
	for _, l := range targets {
		if l.stats.deflateOpen.Load() > 0 {
			some = true
			break
		}
	}
	if !some {
		return
	}
	var d *codec.Deflater
	select {
	case d = <-sharedDeflaters:
	default:
		d = codec.NewDeflater()
	}
	s.counters.compressions.Add(1)
	z := getBuffer(codec.MaxHeaderSize + len(data))
	out := d.AppendCompress(z.b[:codec.MaxHeaderSize], data, nil, codec.MaxDeflateWindowBits)
	select {
	case sharedDeflaters <- d:
	default:
	}
	zlen := len(out) - codec.MaxHeaderSize
	if zlen >= len(data) || cap(out) != cap(z.b) {
		putBuffer(z) // incompressible (or outgrew the buffer): plain for everyone
		return
	}
	h := ws.Header{Fin: true, Rsv: codec.Rsv1, OpCode: op, Length: int64(zlen)}
	hn := codec.HeaderSize(h)
	codec.PutHeader(out, h)
	z.b = append(out[:hn], out[codec.MaxHeaderSize:]...)
	f.z = z
	f.plainLen, f.zLen = int32(len(data)), int32(zlen)
}

// cost is what a shared frame is charged to the memory budget.
func (f *sharedFrame) cost() int64 {
	n := int64(cap(f.buf.b))
	if f.z != nil {
		n += int64(cap(f.z.b))
	}
	return n
}

// sharedFrames returns the frames of a publish run for c: iov, or the
// compressed ones (ld.ziov) when c takes them. hasZ says whether any frame
// of the run has a compressed form.
func (l *eventLoop) framesFor(c *Conn, iov [][]byte, hasZ bool, cmds []command) [][]byte {
	if !hasZ || !c.takesShared() || c.state != stateOpen || c.session() != nil { // envelope frames: compressed per connection as they are flushed (session_frames.go)
		return iov
	}
	for i := range cmds {
		if f := cmds[i].shared; f.z != nil {
			l.stats.deflateOutPlain.Add(int64(f.plainLen))
			l.stats.deflateOutWire.Add(int64(f.zLen))
		}
	}
	return l.deflate.ziov
}

// zRun fills the loop's ziov for a publish run and reports whether any of
// its frames is compressed.
func (l *eventLoop) zRun(cmds []command) bool {
	hasZ := false
	ziov := l.deflate.ziov[:0]
	for i := range cmds {
		f := cmds[i].shared
		if f.z != nil {
			hasZ = true
			ziov = append(ziov, f.z.b)
		} else {
			ziov = append(ziov, f.buf.b)
		}
	}
	l.deflate.ziov = ziov
	return hasZ
}

// zRunDone drops the run's references.
func (l *eventLoop) zRunDone() {
	clear(l.deflate.ziov)
	l.deflate.ziov = l.deflate.ziov[:0]
}
