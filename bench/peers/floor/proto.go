//go:build linux

package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
)

// The least of RFC 6455 a server must speak: the accept key of the upgrade
// (§4.2.2), frame headers (§5.2), unmasking (§5.3), pong and close (§5.5).

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var (
	headerEnd = []byte("\r\n\r\n")
	keyName   = []byte("sec-websocket-key:")
)

// request handles the upgrade request in data. It returns the bytes after
// the request (frames sent before the 101 arrived) and false when the
// connection is to be closed.
func (s *server) request(fd int, data []byte) ([]byte, bool) {
	end := bytes.Index(data, headerEnd)
	if end < 0 {
		return data, len(data) <= maxRequest
	}
	head := data[:end+2]
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	if bytes.HasPrefix(line, []byte("GET /healthz ")) {
		s.wbuf = append(s.wbuf, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"...)
		return nil, false
	}
	key := headerValue(head, keyName)
	if !bytes.HasPrefix(line, []byte("GET "+s.path+" ")) || len(key) == 0 {
		s.wbuf = append(s.wbuf, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"...)
		return nil, false
	}
	h := sha1.New()
	h.Write(key)
	h.Write([]byte(wsGUID))
	var sum [sha1.Size]byte
	var accept [28]byte
	base64.StdEncoding.Encode(accept[:], h.Sum(sum[:0]))
	s.wbuf = append(s.wbuf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	s.wbuf = append(s.wbuf, accept[:]...)
	s.wbuf = append(s.wbuf, "\r\n\r\n"...)
	s.upgraded(fd)
	return s.frames(fd, data[end+4:])
}

// headerValue finds a header by its lower-case name with the colon, and
// returns its trimmed value.
func headerValue(head, name []byte) []byte {
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\r\n"))
		head = rest
		if len(line) > len(name) && bytes.EqualFold(line[:len(name)], name) {
			return bytes.TrimSpace(line[len(name):])
		}
	}
	return nil
}

// Opcodes (§5.2).
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// frames handles every complete frame in data, appending replies to
// s.wbuf, and returns the incomplete rest. Each frame is echoed as it came
// (fragments as fragments), or, in broadcast mode, each data frame is
// published.
func (s *server) frames(fd int, data []byte) ([]byte, bool) {
	for len(data) >= 2 {
		b0, b1 := data[0], data[1]
		if b1&0x80 == 0 {
			return nil, false // clients must mask (§5.1)
		}
		n := uint64(b1 & 0x7f)
		hl := 2
		switch n {
		case 126:
			if len(data) < 4 {
				return data, true
			}
			n, hl = uint64(binary.BigEndian.Uint16(data[2:])), 4
		case 127:
			if len(data) < 10 {
				return data, true
			}
			n, hl = binary.BigEndian.Uint64(data[2:]), 10
		}
		if n > maxFrame {
			return nil, false
		}
		if len(data) < hl+4 || uint64(len(data)-hl-4) < n {
			return data, true
		}
		mask := data[hl : hl+4]
		p := data[hl+4 : hl+4+int(n)]
		for i := range p {
			p[i] ^= mask[i&3]
		}
		data = data[hl+4+int(n):]
		op := b0 & 0x0f
		switch op {
		case opPing:
			s.wbuf = appendFrame(s.wbuf, opPong, true, p)
		case opPong:
		case opClose:
			// Echo the status code (§5.5.1), then close.
			if len(p) >= 2 {
				s.wbuf = appendFrame(s.wbuf, opClose, true, p[:2])
			} else {
				s.wbuf = appendFrame(s.wbuf, opClose, true, nil)
			}
			return nil, false
		default:
			if s.broadcast {
				s.publish(op, p)
				if s.conns[fd].state == stFree {
					return nil, true // the sender's own copy failed
				}
				continue
			}
			s.wbuf = appendFrame(s.wbuf, op, b0&0x80 != 0, p)
		}
	}
	return data, true
}

// appendFrame appends an unmasked server frame.
func appendFrame(b []byte, op byte, fin bool, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	switch n := len(p); {
	case n < 126:
		b = append(b, b0, byte(n))
	case n <= 0xffff:
		b = append(b, b0, 126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}
