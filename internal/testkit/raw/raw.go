// Package raw is the tests' raw WebSocket client: byte by byte over a real
// TCP socket, built on package codec, for tests that need to see or send
// exactly what goes over the wire. (It is apart from testkit, which codec's
// own tests import.) gateway's conformance suite keeps its own encoder and
// parser on purpose: it must share no code with codec.
package raw

import (
	"bufio"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// Dial connects to addr and upgrades at path; the returned reader has
// consumed the 101 response, checked against the key.
func Dial(addr, path string) (net.Conn, *bufio.Reader, error) {
	return DialWith(&net.Dialer{Timeout: 5 * time.Second}, addr, path)
}

// DialWith is Dial through d (a chosen source address, say).
func DialWith(d *net.Dialer, addr, path string) (net.Conn, *bufio.Reader, error) {
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	r, err := Upgrade(conn, addr, path)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, r, nil
}

// Upgrade sends the upgrade request for path on conn and reads the 101
// response; the returned reader is the connection's from then on.
func Upgrade(conn net.Conn, host, path string) (*bufio.Reader, error) {
	key := codec.NewClientKey()
	if _, err := conn.Write(codec.AppendClientRequest(nil, host, path, key[:], nil, nil)); err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	r := bufio.NewReaderSize(conn, 64<<10)
	var resp codec.Response
	var buf []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		buf = append(buf, b)
		if n, err := resp.Parse(buf, 0); err != nil || n > 0 {
			if err == nil {
				err = resp.Check(key[:])
			}
			return r, err
		}
	}
}

// ReadFrame reads one server frame.
func ReadFrame(r *bufio.Reader) (ws.Header, []byte, error) {
	var hb [codec.MaxHeaderSize]byte
	n := 0
	for {
		h, hn, err := codec.ParseHeader(hb[:n], codec.RoleClient, 0)
		if err != nil {
			return h, nil, err
		}
		if hn > 0 {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(r, p); err != nil {
				return h, nil, err
			}
			return h, p, nil
		}
		b, err := r.ReadByte()
		if err != nil {
			return h, nil, err
		}
		hb[n] = b
		n++
	}
}

// ReadClose reads server frames up to the close frame and returns its
// code and reason.
func ReadClose(r *bufio.Reader) (uint16, string, error) {
	for {
		h, p, err := ReadFrame(r)
		if err != nil {
			return 0, "", err
		}
		if h.OpCode == ws.OpClose {
			code, reason, err := codec.ParseCloseUnsafe(p)
			return uint16(code), string(reason), err
		}
	}
}

// ReadText reads server frames up to the first text frame and returns
// its payload.
func ReadText(r *bufio.Reader) ([]byte, error) {
	for {
		h, p, err := ReadFrame(r)
		if err != nil || h.OpCode == ws.OpText {
			return p, err
		}
	}
}
