package codec

// head is the parse state that Request and Response share: each is an
// HTTP/1.1 header block (a start line, header lines and an empty line, RFC
// 9112 §2.1) parsed incrementally from bytes that may move between calls,
// so it keeps offsets, never copies. Request and Response differ only in
// their start line and in the headers they record.
type head struct {
	lines   lineScanner
	start   int32 // offset of the start line, after ignored empty lines
	hdrs    int32 // offset of the first header line
	n       int32 // length of the whole block; nonzero once parsed
	started bool  // the start line has been seen
	buf     []byte
}

// step is what head.next found.
type step uint8

const (
	stepMore      step = iota // no complete line yet: Parse returns 0, nil
	stepTooLarge              // the block cannot end within the cap
	stepMalformed             // buf is shorter than bytes already parsed
	stepStart                 // line is the start line
	stepHeader                // line is a header line
	stepDone                  // the empty line: the block is complete
)

// resume is the start of Parse: once the block is complete, Parse returns
// its length for the same buf (done), or 0 if buf no longer holds it.
func (h *head) resume(buf []byte) (n int, done bool) {
	if h.n == 0 {
		return 0, false
	}
	if len(buf) < int(h.n) {
		return 0, true
	}
	h.buf = buf
	return int(h.n), true
}

// next returns the next line of the block and what it is. With skipEmpty,
// empty lines before the start line are ignored, as RFC 9112 §2.2 asks of
// a server reading a request; a response's empty first line is a start
// line, and a malformed one.
func (h *head) next(buf []byte, limit int, skipEmpty bool) ([]byte, step) {
	for {
		pos := h.lines.pos
		line, st := h.lines.next(buf, limit)
		switch st {
		case lineMore:
			return nil, stepMore
		case lineTooLarge:
			return nil, stepTooLarge
		case lineShrunk:
			return nil, stepMalformed
		}
		switch {
		case !h.started && skipEmpty && len(line) == 0:
			continue
		case !h.started:
			h.started, h.start, h.hdrs = true, pos, h.lines.pos
			return line, stepStart
		case len(line) == 0:
			h.n, h.buf = h.lines.pos, buf
			return nil, stepDone
		}
		return line, stepHeader
	}
}

// stop maps a step that ends Parse to its result: the block's length once
// done, else 0 and the parser's own error for the case (nil for more).
func (h *head) stop(s step, tooLarge, malformed error) (int, error) {
	switch s {
	case stepDone:
		return int(h.n), nil
	case stepTooLarge:
		return 0, tooLarge
	case stepMalformed:
		return 0, malformed
	}
	return 0, nil
}
