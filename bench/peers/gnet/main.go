// Command gnet is bare gnet v2.10.0 speaking just enough WebSocket to be
// measured beside wsgate: it answers the upgrade with a 101 (no checks
// beyond finding the key), echoes each complete frame back unmasked, and
// keeps nothing per connection of its own (the context is a shared
// marker). It is the baseline of issue 16's goal 3: what wsgate keeps per
// connection beyond gnet's own state is its RSS slope minus this one's.
// Not a server to use: no limits, no validation, no timeouts.
package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"flag"
	"log"
	"runtime"

	"github.com/panjf2000/gnet/v2"
)

var upgraded = new(byte) // the context of an upgraded connection

type server struct {
	gnet.BuiltinEventEngine
	path []byte
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	if c.Context() == nil {
		return s.handshake(c)
	}
	for {
		n := c.InboundBuffered()
		if n < 2 {
			return gnet.None
		}
		h, _ := c.Peek(min(n, 14))
		op, plen, hl := h[0]&0x0f, int(h[1]&0x7f), 2
		switch plen {
		case 126:
			if n < 4 {
				return gnet.None
			}
			plen, hl = int(h[2])<<8|int(h[3]), 4
		case 127:
			if n < 10 {
				return gnet.None
			}
			plen = 0
			for i := 2; i < 10; i++ {
				plen = plen<<8 | int(h[i])
			}
			hl = 10
		}
		masked := h[1]&0x80 != 0
		if masked {
			hl += 4
		}
		if n < hl+plen {
			return gnet.None
		}
		f, _ := c.Peek(hl + plen)
		if op == 0x8 {
			return gnet.Close
		}
		p := f[hl:]
		if masked {
			m := f[hl-4 : hl]
			for i := range p {
				p[i] ^= m[i&3]
			}
		}
		if op != 0x9 && op != 0xa {
			var out [10]byte
			out[0] = 0x80 | op
			ol := 2
			switch {
			case plen < 126:
				out[1] = byte(plen)
			case plen < 1<<16:
				out[1], out[2], out[3], ol = 126, byte(plen>>8), byte(plen), 4
			default:
				out[1], ol = 127, 10
				for i := 0; i < 8; i++ {
					out[9-i] = byte(plen >> (8 * i))
				}
			}
			_, _ = c.Writev([][]byte{out[:ol], p})
		}
		_, _ = c.Discard(hl + plen)
	}
}

func (s *server) handshake(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return gnet.None
	}
	req := buf[:end]
	if bytes.HasPrefix(req, []byte("GET /healthz ")) {
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		return gnet.Close
	}
	i := bytes.Index(bytes.ToLower(req), []byte("\r\nsec-websocket-key:"))
	if i < 0 || !bytes.HasPrefix(req, append(append([]byte("GET "), s.path...), ' ')) {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		return gnet.Close
	}
	key := req[i+len("\r\nsec-websocket-key:"):]
	if j := bytes.Index(key, []byte("\r\n")); j >= 0 {
		key = key[:j]
	}
	sum := sha1.Sum(append(bytes.TrimSpace(key), wsGUID...))
	var resp [160]byte
	out := append(resp[:0], "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	out = base64.StdEncoding.AppendEncode(out, sum[:])
	out = append(out, "\r\n\r\n"...)
	_, _ = c.Discard(end + 4)
	c.SetContext(upgraded)
	_, _ = c.Write(out)
	return gnet.None
}

func main() {
	listen := flag.String("listen", ":8080", "listen address")
	path := flag.String("path", "/ws", "WebSocket path")
	flag.Bool("broadcast", false, "not supported: bare gnet is measured for idle memory and echo only")
	flag.Parse()
	log.Fatal(gnet.Run(&server{path: []byte(*path)}, "tcp://"+*listen,
		gnet.WithNumEventLoop(runtime.GOMAXPROCS(0)), gnet.WithTCPNoDelay(gnet.TCPNoDelay)))
}
