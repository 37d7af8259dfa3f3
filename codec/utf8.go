package codec

import "unicode/utf8"

// UTF8 validates a text message incrementally (RFC 6455 §8.1, RFC 3629). Its
// state survives any split of the message, between frames or between reads,
// so invalid text is rejected at the chunk in which the first bad byte
// arrives rather than at the end of the message. Overlong forms, surrogates
// (U+D800..U+DFFF) and code points above U+10FFFF are invalid.
//
// The zero value is ready to use; it is a single word, meant to live inside a
// per-connection struct.
type UTF8 struct {
	state uint8
}

const (
	utf8Accept = 0
	utf8Reject = 12
)

// Reset prepares v for a new message.
func (v *UTF8) Reset() { v.state = utf8Accept }

// Write feeds the next chunk of the message. It reports false as soon as the
// bytes seen so far cannot be the prefix of valid UTF-8; the validator then
// stays failed until Reset.
func (v *UTF8) Write(p []byte) bool {
	s := v.state
	if s == utf8Reject {
		return false
	}
	// Finish a rune that the previous chunk cut in two, so that the rest of
	// p can take the fast path: reads and frames split runes all the time,
	// and the automaton is several times slower than utf8.Valid.
	for s != utf8Accept && len(p) > 0 {
		s = utf8Trans[int(s)+int(utf8Class[p[0]])]
		p = p[1:]
		if s == utf8Reject {
			v.state = s
			return false
		}
	}
	if s == utf8Accept {
		// Fast path: validate whole runes with the standard library and
		// leave only a possibly incomplete last rune to the automaton.
		cut := len(p) - runeTail(p)
		if utf8.Valid(p[:cut]) {
			p = p[cut:]
		}
	}
	for _, b := range p {
		s = utf8Trans[int(s)+int(utf8Class[b])]
		if s == utf8Reject {
			v.state = s
			return false
		}
	}
	v.state = s
	return true
}

// Complete reports whether the bytes written so far end on a rune boundary
// and are all valid: the check to make when the final frame has arrived.
func (v *UTF8) Complete() bool { return v.state == utf8Accept }

// ValidUTF8 reports whether p is complete, valid UTF-8 under the same rules.
func ValidUTF8(p []byte) bool { return utf8.Valid(p) }

// runeTail returns how many bytes at the end of p belong to a rune that may
// be incomplete: 0 if p ends on a rune boundary as far as lead bytes tell.
func runeTail(p []byte) int {
	for i := 1; i <= 3 && i <= len(p); i++ {
		b := p[len(p)-i]
		if b < 0x80 {
			return 0
		}
		if b >= 0xc0 { // lead byte: incomplete if the rune needs more than i bytes
			need := 2
			if b >= 0xe0 {
				need = 3
			}
			if b >= 0xf0 {
				need = 4
			}
			if need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

// The automaton of Bjoern Hoehrmann's "Flexible and Economical UTF-8
// Decoder" (states are multiples of 12; 0 accepts, 12 rejects). utf8Class
// maps each byte to its character class.
var utf8Class = [256]uint8{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
}

var utf8Trans = [108]uint8{
	0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
	12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12, 12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, 12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
	12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
}
