package codec

import (
	"bytes"
	"math"

	"github.com/gobwas/httphead"
)

// span is a view into the buffer given to Parse, kept as offsets so that
// the caller may move its bytes between calls. The zero span is "absent".
type span struct {
	off, end int32
}

func (s span) isSet() bool { return s.end != 0 }

// bytes returns the view of s in buf, or nil if s is absent.
func (s span) bytes(buf []byte) []byte {
	if !s.isSet() {
		return nil
	}
	return buf[s.off:s.end:s.end]
}

// spanOf returns the span of sub, a subslice of buf.
func spanOf(buf, sub []byte) span {
	if len(sub) == 0 {
		// An empty value reads as absent: the views return nil for it, and
		// an empty Host or key is as good as none to CheckUpgrade.
		return span{}
	}
	off := cap(buf) - cap(sub)
	return span{int32(off), int32(off + len(sub))}
}

// lineState is what lineScanner.next found.
type lineState uint8

const (
	lineMore     lineState = iota // no complete line yet
	lineOK                        // a complete line
	lineTooLarge                  // the header block cannot end within the cap
	lineShrunk                    // buf is shorter than bytes already parsed
)

// lineScanner splits an HTTP header block (RFC 9112 §2.2) into lines as its
// bytes arrive. It keeps offsets only and never looks at a byte twice: pos is
// where the next line starts and buf[pos:scanned] is known to hold no '\n',
// so a block arriving one byte at a time costs linear time in total.
type lineScanner struct {
	pos      int32
	scanned  int32
	examined int32 // bytes looked at, for the linear-time test
}

// clampMax turns a caller's maxBytes into the cap in force.
func clampMax(maxBytes int) int {
	switch {
	case maxBytes <= 0:
		return DefaultMaxHeaderBytes
	case maxBytes > math.MaxInt32-1:
		return math.MaxInt32 - 1
	}
	return maxBytes
}

// next returns the next complete line of buf without its terminator. Lines
// end in CRLF; a bare LF is accepted as RFC 9112 §2.2 allows. Only the first
// limit bytes of buf are searched: a block that has not ended by then is too
// large, which is known as soon as buf holds more than limit bytes.
func (s *lineScanner) next(buf []byte, limit int) ([]byte, lineState) {
	if int(s.scanned) > len(buf) {
		return nil, lineShrunk
	}
	end := min(len(buf), limit)
	if int(s.scanned) < end {
		i := bytes.IndexByte(buf[s.scanned:end], '\n')
		if i >= 0 {
			e := int(s.scanned) + i
			line := buf[s.pos:e]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			// Count the search and the line itself, which the caller
			// validates once.
			s.examined += int32(i+1) + int32(len(line))
			s.pos = int32(e + 1)
			s.scanned = s.pos
			return line, lineOK
		}
		s.examined += int32(end) - s.scanned
		s.scanned = int32(end)
	}
	if len(buf) > limit {
		return nil, lineTooLarge
	}
	return nil, lineMore
}

// parseHeaderLine splits a header line into name and value (RFC 9112 §5).
// It is stricter than httphead.ParseHeaderLine, which it uses: the name must
// be a non-empty token right before the colon, since whitespace there is a
// request smuggling vector that RFC 9112 §5.1 requires rejecting; a line
// starting with whitespace is obsolete line folding (§5.2), also rejected;
// and the value may hold no control character but HTAB, which rules out a
// bare CR (§2.2).
func parseHeaderLine(line []byte) (name, value []byte, ok bool) {
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return nil, nil, false
	}
	name, value, ok = httphead.ParseHeaderLine(line)
	if !ok || len(name) == 0 || line[len(name)] != ':' {
		return nil, nil, false
	}
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// nextHeader returns the first header of block, a run of header lines that
// Parse has already validated, and the rest of the block after its line.
func nextHeader(block []byte) (name, value, rest []byte) {
	line := block
	if i := bytes.IndexByte(block, '\n'); i >= 0 {
		line, rest = block[:i], block[i+1:]
	} else {
		rest = block[len(block):]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	name, value, _ = httphead.ParseHeaderLine(line)
	return name, value, rest
}

// headerValue returns the value of the first header called name in block,
// compared case-insensitively, or nil if there is none. A header present
// with an empty value returns a non-nil empty slice.
func headerValue(block []byte, name string) []byte {
	for len(block) > 0 {
		var k, v []byte
		k, v, block = nextHeader(block)
		if k != nil && asciiEqualFold(k, name) {
			if v == nil {
				v = k[len(k):]
			}
			return v
		}
	}
	return nil
}

// asciiEqualFold reports whether b equals s ignoring ASCII case. Header
// names and tokens are ASCII; bytes.EqualFold would also apply Unicode
// folding and match "webſocket" (U+017F) against "websocket".
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

// nextElem returns the first element of the comma-separated list in s (RFC
// 9110 §5.6.1) with optional whitespace trimmed, and the rest of s after its
// comma. A comma inside a quoted string does not split. Empty elements come
// back empty; callers skip them as the RFC says recipients must.
func nextElem(s []byte) (elem, rest []byte) {
	quoted := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if quoted {
			switch c {
			case '\\':
				i++
			case '"':
				quoted = false
			}
			continue
		}
		if c == '"' {
			quoted = true
		} else if c == ',' {
			break
		}
	}
	elem = trimOWS(s[:min(i, len(s))])
	if i < len(s) {
		rest = s[i+1:]
	}
	return elem, rest
}

// hasToken reports whether the comma-separated list contains token, ignoring
// ASCII case. Unlike httphead.ScanTokens it tolerates elements that are not
// bare tokens, such as "h2c/1.0" beside "websocket" in Upgrade (RFC 9110
// §7.8), instead of failing the whole list.
func hasToken(list []byte, token string) bool {
	for len(list) > 0 {
		var e []byte
		e, list = nextElem(list)
		if asciiEqualFold(e, token) {
			return true
		}
	}
	return false
}

// appendElems appends each non-empty element of the comma-separated list to
// dst.
func appendElems(dst [][]byte, list []byte) [][]byte {
	for len(list) > 0 {
		var e []byte
		e, list = nextElem(list)
		if len(e) > 0 {
			dst = append(dst, e)
		}
	}
	return dst
}

func trimOWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseHTTPVersion parses "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3). It is
// stricter than httphead.ParseVersion, which accepts any number of digits
// and overflows on long ones.
func parseHTTPVersion(b []byte) (major, minor uint8, ok bool) {
	if len(b) != 8 || string(b[:5]) != "HTTP/" || b[6] != '.' ||
		!isDigit(b[5]) || !isDigit(b[7]) {
		return 0, 0, false
	}
	return b[5] - '0', b[7] - '0', true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
