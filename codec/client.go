package codec

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	mrand "math/rand/v2"
)

// NewClientKey returns a fresh Sec-WebSocket-Key: the base64 of 16 random
// bytes from crypto/rand, as RFC 6455 §4.1 requires the nonce to be randomly
// selected for each connection.
func NewClientKey() (key [24]byte) {
	var nonce [16]byte
	rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24+)
	base64.StdEncoding.Encode(key[:], nonce[:])
	return key
}

// NewMaskKey returns a masking key for a client frame. RFC 6455 §5.3 asks
// for keys an attacker cannot predict; math/rand/v2's runtime-seeded
// ChaCha8 source is enough against cache poisoning by the page's own script
// and costs a few nanoseconds, where crypto/rand would cost a system call.
func NewMaskKey() (key [4]byte) {
	binary.LittleEndian.PutUint32(key[:], mrand.Uint32())
	return key
}

// AppendClientRequest appends a WebSocket opening handshake (RFC 6455 §4.1)
// to dst: "GET uri HTTP/1.1" ("/" if uri is empty), Host, Upgrade,
// Connection, Sec-WebSocket-Key, Sec-WebSocket-Version 13,
// Sec-WebSocket-Protocol with protocols joined by ", " (omitted if there are
// none), the raw header lines in extra ("Name: value\r\n" each, may be nil)
// and the blank line. uri is the path and query, already escaped; nothing is
// validated.
func AppendClientRequest(dst []byte, host, uri string, key []byte, protocols []string, extra []byte) []byte {
	if uri == "" {
		uri = "/"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if len(protocols) > 0 {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		for i, p := range protocols {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = append(dst, p...)
		}
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, extra...)
	return append(dst, "\r\n"...)
}
