package main

// This file is the client side of the opening handshake (RFC 6455 §4.1,
// §4.2.2). It mirrors the API announced for codec on branch codec-hs
// (codec.NewClientKey, codec.AppendClientRequest, codec.Response) so that,
// once that branch lands, this file is deleted and the three call sites in
// conn_linux.go switch to the codec names. Until then it is kept small and
// strict: the response must be 101 with the right Upgrade, Connection and
// Sec-WebSocket-Accept, or the connection fails with a named cause.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var (
	errRespTooLarge   = errors.New("handshake: response header too large")
	errRespStatusLine = errors.New("handshake: malformed status line")
	errRespUpgrade    = errors.New("handshake: missing Upgrade: websocket")
	errRespConnection = errors.New("handshake: missing Connection: upgrade")
	errRespAccept     = errors.New("handshake: wrong Sec-WebSocket-Accept")
)

// newClientKey returns a fresh Sec-WebSocket-Key: 16 random bytes in base64
// (RFC 6455 §4.1, item 7).
func newClientKey() [24]byte {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	var k [24]byte
	base64.StdEncoding.Encode(k[:], raw[:])
	return k
}

// appendClientRequest appends the upgrade request for uri on host to dst.
func appendClientRequest(dst []byte, host, uri string, key []byte) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n\r\n"...)
	return dst
}

// response is a parsed upgrade response. Parse is fed all bytes received so
// far; it keeps nothing between calls but what it returns.
type response struct {
	status     int
	upgrade    bool
	connection bool
	accept     [28]byte
	acceptLen  int
}

// parse reads the response header at the start of buf. It returns n == 0 and
// a nil error when the header is not complete yet, and an error when it is
// longer than maxBytes or malformed.
func (r *response) parse(buf []byte, maxBytes int) (n int, err error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxBytes {
			return 0, errRespTooLarge
		}
		return 0, nil
	}
	*r = response{}
	head := buf[:end]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	// "HTTP/1.1 101 Switching Protocols"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, errRespStatusLine
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, errRespStatusLine
	}
	r.status = code
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			r.upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range bytes.Split(value, []byte(",")) {
				if bytes.EqualFold(bytes.TrimSpace(tok), []byte("upgrade")) {
					r.connection = true
				}
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			r.acceptLen = copy(r.accept[:], value)
		}
	}
	return end + 4, nil
}

// check verifies a 101 response against the key that was sent
// (RFC 6455 §4.2.2, item 5.4).
func (r *response) check(key []byte) error {
	if r.status != 101 {
		return statusError(r.status)
	}
	if !r.upgrade {
		return errRespUpgrade
	}
	if !r.connection {
		return errRespConnection
	}
	h := sha1.New()
	h.Write(key)
	h.Write([]byte(wsGUID))
	var want [28]byte
	base64.StdEncoding.Encode(want[:], h.Sum(nil))
	if r.acceptLen != len(want) || r.accept != want {
		return errRespAccept
	}
	return nil
}

// statusError is a handshake answered with a status other than 101. Its text
// is the failure cause in reports ("handshake: status 503").
type statusError int

func (e statusError) Error() string { return "handshake: status " + strconv.Itoa(int(e)) }
