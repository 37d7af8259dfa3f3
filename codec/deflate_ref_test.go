package codec

import "errors"

// refInflate is a reference DEFLATE decoder (RFC 1951), written after
// zlib's puff.c for clarity rather than speed. The tests use it to check
// what no production decoder reports: the longest match distance a stream
// uses, which must stay within the negotiated window (RFC 7692 §7.1.2), and
// to check the Inflater against a decoder that shares no code with it.
//
// dict is the history that precedes data (context takeover). It decodes
// until a final block, or until data ends right after a stored block (a
// permessage-deflate payload with its 00 00 FF FF put back), and returns
// the output without the dictionary. Any other end is an error.
func refInflate(dict, data []byte) (out []byte, maxDist int, err error) {
	s := &refState{in: data, out: append([]byte(nil), dict...)}
	base := len(dict)
	for blocks := 0; ; blocks++ {
		if blocks > 0 && s.pos == len(s.in) && s.bitcnt == 0 {
			break
		}
		last := s.bits(1)
		typ := s.bits(2)
		if s.err != nil {
			break
		}
		switch typ {
		case 0:
			s.stored()
		case 1:
			s.codes(&fixedLit, &fixedDist, &maxDist, base)
		case 2:
			var lit, dist refHuffman
			if s.dynamic(&lit, &dist) {
				s.codes(&lit, &dist, &maxDist, base)
			}
		default:
			s.err = errRefCorrupt
		}
		if s.err != nil || last == 1 {
			break
		}
	}
	return s.out[base:], maxDist, s.err
}

var (
	errRefCorrupt = errors.New("ref: corrupt stream")
	errRefEOF     = errors.New("ref: unexpected end of stream")
)

type refState struct {
	in     []byte
	pos    int
	bitbuf uint32
	bitcnt uint
	out    []byte
	err    error
}

func (s *refState) bits(n uint) int {
	for s.bitcnt < n {
		if s.pos >= len(s.in) {
			if s.err == nil {
				s.err = errRefEOF
			}
			return 0
		}
		s.bitbuf |= uint32(s.in[s.pos]) << s.bitcnt
		s.pos++
		s.bitcnt += 8
	}
	v := int(s.bitbuf & (1<<n - 1))
	s.bitbuf >>= n
	s.bitcnt -= n
	return v
}

func (s *refState) stored() {
	s.bitbuf, s.bitcnt = 0, 0
	if s.pos+4 > len(s.in) {
		s.err = errRefEOF
		return
	}
	n := int(s.in[s.pos]) | int(s.in[s.pos+1])<<8
	if n != ^(int(s.in[s.pos+2])|int(s.in[s.pos+3])<<8)&0xffff {
		s.err = errRefCorrupt
		return
	}
	s.pos += 4
	if s.pos+n > len(s.in) {
		s.err = errRefEOF
		return
	}
	s.out = append(s.out, s.in[s.pos:s.pos+n]...)
	s.pos += n
}

// refHuffman is a canonical code: count[len] codes of each length, and the
// symbols in code order.
type refHuffman struct {
	count  [16]int
	symbol [320]int
}

// build returns false for an over-subscribed set of lengths; incomplete
// codes are accepted, as in puff (only a lone distance code is legal, but
// the decoders under test accept others too).
func (h *refHuffman) build(length []int) bool {
	h.count = [16]int{}
	for _, l := range length {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= h.count[l]
		if left < 0 {
			return false
		}
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range length {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return true
}

func (s *refState) decode(h *refHuffman) int {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		code |= s.bits(1)
		if s.err != nil {
			return -1
		}
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)]
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	s.err = errRefCorrupt
	return -1
}

var (
	refLenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	refLenExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	refDistBase = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
		4097, 6145, 8193, 12289, 16385, 24577}
	refDistExtra = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	fixedLit, fixedDist refHuffman
)

func init() {
	var l [288]int
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var d [30]int
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:])
}

func (s *refState) codes(lit, dist *refHuffman, maxDist *int, base int) {
	for {
		sym := s.decode(lit)
		switch {
		case s.err != nil:
			return
		case sym < 256:
			s.out = append(s.out, byte(sym))
		case sym == 256:
			return
		default:
			sym -= 257
			if sym >= 29 {
				s.err = errRefCorrupt
				return
			}
			n := refLenBase[sym] + s.bits(refLenExtra[sym])
			ds := s.decode(dist)
			if s.err != nil {
				return
			}
			if ds >= 30 {
				s.err = errRefCorrupt
				return
			}
			d := refDistBase[ds] + s.bits(refDistExtra[ds])
			if s.err != nil {
				return
			}
			if d > len(s.out) {
				s.err = errRefCorrupt // before the start of the history
				return
			}
			*maxDist = max(*maxDist, d)
			for range n {
				s.out = append(s.out, s.out[len(s.out)-d])
			}
		}
	}
}

func (s *refState) dynamic(lit, dist *refHuffman) bool {
	nlen := s.bits(5) + 257
	ndist := s.bits(5) + 1
	ncode := s.bits(4) + 4
	if s.err != nil {
		return false
	}
	if nlen > 286 || ndist > 30 {
		s.err = errRefCorrupt
		return false
	}
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var lengths [320]int
	for i := range ncode {
		lengths[order[i]] = s.bits(3)
	}
	var lencode refHuffman
	if !lencode.build(lengths[:19]) {
		s.err = errRefCorrupt
		return false
	}
	lengths = [320]int{}
	for i := 0; i < nlen+ndist; {
		sym := s.decode(&lencode)
		if s.err != nil {
			return false
		}
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		prev, rep := 0, 0
		switch sym {
		case 16:
			if i == 0 {
				s.err = errRefCorrupt
				return false
			}
			prev = lengths[i-1]
			rep = 3 + s.bits(2)
		case 17:
			rep = 3 + s.bits(3)
		default:
			rep = 11 + s.bits(7)
		}
		if i+rep > nlen+ndist {
			s.err = errRefCorrupt
			return false
		}
		for ; rep > 0; rep-- {
			lengths[i] = prev
			i++
		}
	}
	if lengths[256] == 0 || !lit.build(lengths[:nlen]) || !dist.build(lengths[nlen:nlen+ndist]) {
		s.err = errRefCorrupt
		return false
	}
	return s.err == nil
}
