package codec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// A minimal echo server built from this package alone (blocking sockets,
// one connection at a time), for TestDeflatePeers*: negotiation, then
// every message echoed, compressed when the agreement allows.

// echoStats is what the server saw on one connection.
type echoStats struct {
	offer         string
	agreed        DeflateParams
	negotiated    bool
	compressedIn  int // messages received with RSV1
	compressedOut int // messages sent with RSV1
	messages      int
	err           error
}

// deflateEchoServer accepts connections on a loopback port and echoes every
// message, compressing what it sends when the agreement allows.
type deflateEchoServer struct {
	ln    net.Listener
	cfg   DeflateConfig
	mu    sync.Mutex
	stats []echoStats
	wg    sync.WaitGroup
}

func startDeflateEcho(t *testing.T, cfg DeflateConfig) *deflateEchoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &deflateEchoServer{ln: ln, cfg: cfg}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			st := s.serve(c)
			_ = c.Close()
			s.mu.Lock()
			s.stats = append(s.stats, st)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *deflateEchoServer) url() string { return "ws://" + s.ln.Addr().String() + "/" }

// last returns the stats of the last connection that ended.
func (s *deflateEchoServer) last(t *testing.T) echoStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.stats)
		var st echoStats
		if n > 0 {
			st = s.stats[n-1]
		}
		s.mu.Unlock()
		if n > 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatal("the server saw no connection end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const echoLimit = 4 << 20

func (s *deflateEchoServer) serve(c net.Conn) (st echoStats) {
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	var buf []byte
	var r Request
	for {
		b, err := br.ReadByte()
		if err != nil {
			st.err = err
			return st
		}
		buf = append(buf, b)
		n, err := r.Parse(buf, 0)
		if err != nil {
			st.err = err
			return st
		}
		if n > 0 {
			break
		}
	}
	if st.err = r.CheckUpgrade(); st.err != nil {
		return st
	}
	st.offer = string(r.Header("Sec-WebSocket-Extensions"))
	st.agreed, st.negotiated = r.NegotiateDeflate(s.cfg)
	var resp []byte
	rsv := byte(0)
	if st.negotiated {
		resp = AppendUpgradeResponseDeflate(nil, r.Key(), nil, st.agreed, nil)
		rsv = Rsv1
	} else {
		resp = AppendUpgradeResponse(nil, r.Key(), nil, nil)
	}
	if _, st.err = c.Write(resp); st.err != nil {
		return st
	}

	d, f := NewDeflater(), NewInflater()
	sendCtx, sendBits := st.agreed.Send(RoleServer)
	recvCtx, recvBits := st.agreed.Receive(RoleServer)
	var sendWin, recvWin Window
	if sendCtx {
		sendWin.Init(min(sendBits, int(s.cfg.windowBits())))
	}
	if recvCtx {
		recvWin.Init(recvBits)
	}
	var msg []byte
	var op ws.OpCode
	compressed := false
	var hdr [MaxHeaderSize]byte
	for {
		// Read a header: the fixed part, then what its length needs.
		if _, st.err = io.ReadFull(br, hdr[:2]); st.err != nil {
			return st
		}
		need := 2 + 4
		switch hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if _, st.err = io.ReadFull(br, hdr[2:need]); st.err != nil {
			return st
		}
		h, n, err := ParseHeader(hdr[:need], RoleServer, rsv)
		if err != nil || n != need {
			st.err = fmt.Errorf("header %x: %v", hdr[:need], err)
			return st
		}
		payload := make([]byte, h.Length)
		if _, st.err = io.ReadFull(br, payload); st.err != nil {
			return st
		}
		Cipher(payload, h.Mask, 0)
		if h.OpCode.IsControl() {
			switch h.OpCode {
			case ws.OpPing:
				_, st.err = c.Write(AppendFrame(nil, ws.OpPong, true, payload))
			case ws.OpClose:
				_, _ = c.Write(AppendFrame(nil, ws.OpClose, true, payload))
				return st
			}
			if st.err != nil {
				return st
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op, msg, compressed = h.OpCode, msg[:0], h.Rsv&Rsv1 != 0
		}
		msg = append(msg, payload...)
		if !h.Fin {
			continue
		}
		st.messages++
		plain := msg
		if compressed {
			st.compressedIn++
			var dict []byte
			if recvCtx {
				dict = recvWin.Bytes()
			}
			f.Reset(msg, dict, echoLimit)
			if plain, st.err = f.InflateAll(nil); st.err != nil {
				return st
			}
			if recvCtx {
				recvWin.Append(plain)
			}
		}
		if op == ws.OpText && !ValidUTF8(plain) {
			st.err = errors.New("invalid UTF-8 after inflating")
			return st
		}
		if _, st.err = c.Write(s.frames(d, &sendWin, sendCtx, sendBits, op, plain, st.negotiated, &st)); st.err != nil {
			return st
		}
	}
}

// frames encodes the echo of a message: compressed above 64 bytes when it
// pays, in fragments of 64 KiB (RSV1 on the first only, RFC 7692 §6.1).
func (s *deflateEchoServer) frames(d *Deflater, win *Window, ctx bool, bits int, op ws.OpCode, plain []byte, negotiated bool, st *echoStats) []byte {
	body, rsv := plain, byte(0)
	if negotiated && len(plain) > 64 {
		var dict []byte
		if ctx {
			dict = win.Bytes()
		}
		if z := d.AppendCompress(nil, plain, dict, bits); len(z) < len(plain) {
			body, rsv = z, Rsv1
			st.compressedOut++
			if ctx {
				win.Append(plain)
			}
		}
	}
	var out []byte
	for first := true; first || len(body) > 0; first = false {
		n := min(len(body), 64<<10)
		h := ws.Header{Fin: n == len(body), OpCode: ws.OpContinuation, Length: int64(n)}
		if first {
			h.OpCode, h.Rsv = op, rsv
		}
		out = AppendHeader(out, h)
		out = append(out, body[:n]...)
		body = body[n:]
	}
	return out
}
