package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// TestCompressionBombRSS: decompression bombs against the real binary with
// --max-message 64KiB (issue 13): 100 MiB of zeros in ~125 KiB compressed,
// one frame (refused at its header: more than 64 KiB can compress to) and
// 4 KiB fragments; 40 MiB in ~50 KiB, one frame and 1 KiB fragments
// (stopped while inflating, one byte past the limit). Each closes with
// 1009, ten times over, and the gateway's resident memory (VmRSS of its
// process) grows by less than 4 MiB over all of them, after a warm-up
// message at the limit.
func TestCompressionBombRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	p := start(t, "--max-message", "64KiB")
	pid := p.cmd.Process.Pid
	compress := func(plain []byte) []byte {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.BestSpeed)
		w.Write(plain)
		w.Flush()
		return b.Bytes()[:b.Len()-4]
	}
	key := codec.NewMaskKey()
	// message encodes z as one compressed message in frames of frag bytes.
	message := func(z []byte, frag int) []byte {
		if frag <= 0 {
			frag = len(z)
		}
		var out []byte
		for i := 0; i < len(z); i += frag {
			end := min(i+frag, len(z))
			h := ws.Header{Fin: end == len(z), OpCode: ws.OpContinuation, Length: int64(end - i), Masked: true, Mask: key}
			if i == 0 {
				h.OpCode, h.Rsv = ws.OpBinary, codec.Rsv1
			}
			out = codec.AppendHeader(out, h)
			start := len(out)
			out = append(out, z[i:end]...)
			codec.Cipher(out[start:], key, 0)
		}
		return out
	}
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		k := codec.NewClientKey()
		offer := codec.AppendDeflateOffer(nil, codec.DeflateParams{ClientMaxWindowBits: 15})
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		conn.Write(codec.AppendClientRequest(nil, p.addr, "/ws", k[:], nil, offer))
		r := bufio.NewReader(conn)
		var resp []byte
		for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
			b, err := r.ReadByte()
			if err != nil {
				t.Fatalf("upgrade: %v (%q)", err, resp)
			}
			resp = append(resp, b)
		}
		if !bytes.Contains(resp, []byte("101")) || !bytes.Contains(resp, []byte("permessage-deflate")) {
			t.Fatalf("upgrade response without permessage-deflate:\n%s", resp)
		}
		return conn, r
	}

	// Warm up: a compressed message at the limit, echoed.
	conn, r := dial()
	conn.Write(message(compress(make([]byte, 64<<10)), 0))
	h, _, err := readFrameRsv(r)
	if err != nil || h.Rsv&codec.Rsv1 == 0 {
		t.Fatalf("warm-up echo: %+v %v", h, err)
	}
	conn.Close()
	base := vmRSS(t, pid)

	big, small := compress(make([]byte, 100<<20)), compress(make([]byte, 40<<20))
	for _, a := range []struct {
		name string
		wire []byte
	}{
		{"100 MiB in one frame", message(big, 0)},
		{"100 MiB in 4 KiB fragments", message(big, 4096)},
		{"40 MiB in one frame", message(small, 0)},
		{"40 MiB in 1 KiB fragments", message(small, 1024)},
	} {
		for range 10 {
			conn, r := dial()
			conn.Write(a.wire) // may meet a closed socket: the 1009 counts
			code, _, err := readClose(r)
			if err != nil || code != uint16(ws.StatusMessageTooBig) {
				t.Fatalf("%s (%d bytes): close %d, %v; want 1009", a.name, len(a.wire), code, err)
			}
			conn.Close()
		}
		rss := vmRSS(t, pid)
		t.Logf("%s (%d bytes on the wire) x10: 1009; gateway RSS %d KiB (%+d KiB)", a.name, len(a.wire), rss>>10, (rss-base)>>10)
		if rss-base > 4<<20 {
			t.Errorf("%s: gateway RSS grew by %d KiB, over 4 MiB", a.name, (rss-base)>>10)
		}
	}
}

// readFrameRsv reads one server frame, RSV1 allowed.
func readFrameRsv(r *bufio.Reader) (ws.Header, []byte, error) {
	var hb []byte
	for {
		h, hn, err := codec.ParseHeader(hb, codec.RoleClient, codec.Rsv1)
		if err != nil {
			return h, nil, err
		}
		if hn > 0 {
			p := make([]byte, h.Length)
			_, err := io.ReadFull(r, p)
			return h, p, err
		}
		b, err := r.ReadByte()
		if err != nil {
			return h, nil, err
		}
		hb = append(hb, b)
	}
}
