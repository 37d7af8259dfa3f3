package codec

import (
	"crypto/sha1"
	"encoding/base64"
)

// acceptGUID is appended to the client's key before hashing (RFC 6455 §1.3).
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKeySize is the length of a Sec-WebSocket-Accept value: the base64 of
// a SHA-1 sum.
const AcceptKeySize = 28

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) (RFC 6455
// §4.2.2). It allocates nothing, for keys of any length.
func AcceptKey(key []byte) (accept [AcceptKeySize]byte) {
	var sum [sha1.Size]byte
	if len(key) <= 64 {
		// A valid key has 24 bytes: hash it in one sha1.Sum call over a
		// stack array. Longer ones, which CheckUpgrade refuses anyway,
		// stream through sha1.New, whose digest the compiler keeps on the
		// stack (enforced by the allocation tests).
		var b [64 + len(acceptGUID)]byte
		n := copy(b[:], key)
		n += copy(b[n:], acceptGUID)
		sum = sha1.Sum(b[:n])
	} else {
		h := sha1.New()
		h.Write(key)
		h.Write([]byte(acceptGUID))
		h.Sum(sum[:0])
	}
	base64.StdEncoding.Encode(accept[:], sum[:])
	return accept
}

// AppendUpgradeResponse appends the server's answer to a valid opening
// handshake (RFC 6455 §4.2.2) to dst: "HTTP/1.1 101 Switching Protocols",
// Upgrade, Connection, Sec-WebSocket-Accept computed from key,
// Sec-WebSocket-Protocol if subprotocol is not empty, the raw header lines in
// extra ("Name: value\r\n" each, may be nil) and the blank line. It allocates
// nothing when dst has room.
func AppendUpgradeResponse(dst []byte, key []byte, subprotocol []byte, extra []byte) []byte {
	dst = appendUpgradeHead(dst, key, subprotocol)
	dst = append(dst, extra...)
	return append(dst, "\r\n"...)
}

// appendUpgradeHead appends the 101 response through its
// Sec-WebSocket-Protocol line.
func appendUpgradeHead(dst []byte, key []byte, subprotocol []byte) []byte {
	accept := AcceptKey(key)
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	dst = append(dst, accept[:]...)
	dst = append(dst, "\r\n"...)
	if len(subprotocol) > 0 {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, subprotocol...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}
