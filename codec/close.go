package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// ValidCloseCode reports whether code may appear in a close frame on the wire
// (RFC 6455 §7.4.1, §7.4.2): 1000-1003, 1007-1014 and 3000-4999. 1004, 1005,
// 1006 and 1015 are reserved or must never be sent; 0-999 and 1016-2999 are
// unassigned.
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003,
		code >= 1007 && code <= 1014,
		code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseCloseUnsafe parses an unmasked close frame payload (RFC 6455 §5.5.1).
// An empty payload means no status: it returns ws.StatusNoStatusRcvd (1005).
// A one-byte payload, a code that ValidCloseCode rejects, or a reason that is
// not valid UTF-8 is an error. reason aliases p and is valid as long as p is.
func ParseCloseUnsafe(p []byte) (code ws.StatusCode, reason []byte, err error) {
	switch len(p) {
	case 0:
		return ws.StatusNoStatusRcvd, nil, nil
	case 1:
		return 0, nil, ErrBadClosePayload
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return code, nil, ErrBadCloseCode
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return code, nil, ErrCloseReasonUTF8
	}
	return code, reason, nil
}

// MaxCloseReason is the longest reason that fits a close frame beside its code.
const MaxCloseReason = MaxControlPayload - 2

// AppendClose appends an unmasked close frame to dst. A code of 0 sends an
// empty payload (no status, RFC 6455 §7.1.5). A reason longer than
// MaxCloseReason bytes is cut at the last rune boundary that fits.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	return appendClose(dst, code, reason, false, [4]byte{})
}

// AppendCloseMasked appends a close frame masked with key (client role).
func AppendCloseMasked(dst []byte, code ws.StatusCode, reason string, key [4]byte) []byte {
	return appendClose(dst, code, reason, true, key)
}

func appendClose(dst []byte, code ws.StatusCode, reason string, masked bool, key [4]byte) []byte {
	if code == 0 {
		return AppendHeader(dst, ws.Header{Fin: true, OpCode: ws.OpClose, Masked: masked, Mask: key})
	}
	reason = truncateUTF8(reason, MaxCloseReason)
	h := ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(2 + len(reason)), Masked: masked, Mask: key}
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, reason...)
	if masked {
		Cipher(dst[start:], key, 0)
	}
	return dst
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
