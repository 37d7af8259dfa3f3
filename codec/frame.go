package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// Role says which side of a connection the codec speaks for. It decides
// which masking rule frames are checked against (RFC 6455 §5.1): a server
// requires every frame it receives to be masked and sends unmasked frames; a
// client does the opposite.
type Role uint8

const (
	// RoleServer parses masked client frames.
	RoleServer Role = iota
	// RoleClient parses unmasked server frames.
	RoleClient
)

// MaxHeaderSize is the longest frame header: 2 bytes, a 64-bit length and a
// masking key.
const MaxHeaderSize = ws.MaxHeaderSize

// MaxControlPayload is the largest control frame payload (RFC 6455 §5.5).
const MaxControlPayload = 125

// Reserved bit masks for the rsv argument of ParseHeader, in the layout of
// ws.Header.Rsv.
const (
	Rsv1 byte = 0x4
	Rsv2 byte = 0x2
	Rsv3 byte = 0x1
)

// ParseHeader parses a frame header at the start of p and checks it against
// RFC 6455 §5.2 and §5.5 for the given role. rsv holds the reserved bits a
// negotiated extension gives meaning to (0 when none was negotiated). Rsv1
// is the bit of permessage-deflate, which marks the first frame of a
// compressed message: with Rsv1 allowed, it is still refused on a control
// frame (ErrCompressedControl) and on a continuation frame
// (ErrCompressedContinuation), as RFC 7692 §6.1 requires.
//
// It returns the header and its encoded length n. If p holds less than a
// whole header, it returns n == 0 and a nil error: read more and call again.
// A violation returns one of the package's *CloseError values. It never
// allocates.
//
// ParseHeader checks each frame on its own; whether a continuation frame is
// expected is the caller's state (see ErrContinuationUnexpected).
func ParseHeader(p []byte, role Role, rsv byte) (h ws.Header, n int, err error) {
	if len(p) < 2 {
		return h, 0, nil
	}
	b0, b1 := p[0], p[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.OpCode = ws.OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0

	// The first two bytes decide the frame's validity apart from its length
	// encoding: fail at once, before waiting for the rest of the header.
	if h.Rsv&^rsv != 0 {
		return h, 0, ErrReservedBits
	}
	switch h.OpCode {
	case ws.OpText, ws.OpBinary:
	case ws.OpContinuation:
		if h.Rsv&Rsv1 != 0 {
			return h, 0, ErrCompressedContinuation
		}
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if h.Rsv&Rsv1 != 0 {
			return h, 0, ErrCompressedControl
		}
		// RFC 6455 §5.5: control frames are not fragmented and carry at most
		// 125 bytes, so their length always fits the 7-bit form.
		if !h.Fin {
			return h, 0, ErrControlFragmented
		}
		if b1&0x7f > MaxControlPayload {
			return h, 0, ErrControlTooLong
		}
	default:
		return h, 0, ErrReservedOpcode
	}
	if role == RoleServer && !h.Masked {
		return h, 0, ErrUnmasked
	}
	if role == RoleClient && h.Masked {
		return h, 0, ErrMasked
	}

	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(p) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(p[2:4]))
		if h.Length < 126 {
			return h, 0, ErrLengthNotMinimal
		}
		n = 4
	case 127:
		if len(p) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(p[2:10])
		if u>>63 != 0 {
			return h, 0, ErrLengthOverflow
		}
		if u <= 0xffff {
			return h, 0, ErrLengthNotMinimal
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(p) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], p[n:n+4])
		n += 4
	}
	return h, n, nil
}

// HeaderSize returns the encoded length of h.
func HeaderSize(h ws.Header) int {
	return ws.HeaderSize(h)
}

// PutHeader encodes h at the start of dst, which must hold at least
// MaxHeaderSize bytes, and returns the number of bytes written. It does not
// validate h: encoding a header that ParseHeader would reject is the caller's
// bug, and tests use it to build bad frames.
func PutHeader(dst []byte, h ws.Header) int {
	_ = dst[MaxHeaderSize-1]
	dst[0] = h.Rsv<<4 | byte(h.OpCode)
	if h.Fin {
		dst[0] |= 0x80
	}
	var n int
	switch {
	case h.Length <= MaxControlPayload:
		dst[1] = byte(h.Length)
		n = 2
	case h.Length <= 0xffff:
		dst[1] = 126
		binary.BigEndian.PutUint16(dst[2:4], uint16(h.Length))
		n = 4
	default:
		dst[1] = 127
		binary.BigEndian.PutUint64(dst[2:10], uint64(h.Length))
		n = 10
	}
	if h.Masked {
		dst[1] |= 0x80
		copy(dst[n:n+4], h.Mask[:])
		n += 4
	}
	return n
}

// AppendHeader appends the encoding of h to dst.
func AppendHeader(dst []byte, h ws.Header) []byte {
	var b [MaxHeaderSize]byte
	n := PutHeader(b[:], h)
	return append(dst, b[:n]...)
}

// AppendFrame appends an unmasked frame (server role) carrying payload to dst.
func AppendFrame(dst []byte, op ws.OpCode, fin bool, payload []byte) []byte {
	dst = AppendHeader(dst, ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload))})
	return append(dst, payload...)
}

// AppendFrameMasked appends a frame masked with key (client role) to dst.
// payload itself is left as it was: the masked copy is in dst.
func AppendFrameMasked(dst []byte, op ws.OpCode, fin bool, payload []byte, key [4]byte) []byte {
	dst = AppendHeader(dst, ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: key})
	start := len(dst)
	dst = append(dst, payload...)
	Cipher(dst[start:], key, 0)
	return dst
}

// Cipher masks or unmasks p in place with key (RFC 6455 §5.3). offset is the
// position of p[0] within the frame's payload, so a payload that arrives in
// chunks is unmasked chunk by chunk. It is ws.Cipher, which uses SIMD where
// the platform has it.
func Cipher(p []byte, key [4]byte, offset int) {
	ws.Cipher(p, key, offset)
}
