package main

import (
	"bufio"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/testkit/raw"
)

// The size attacks of gateway/size_attack_test.go against the real binary
// with --max-message 64KiB, each followed by 256 MiB of payload: the
// gateway answers 1009 and its resident memory, read from
// /proc/PID/status (VmRSS of the gateway process, not of the test), grows
// by less than 8 MiB over all of them. Before the size check was written
// so that it cannot overflow, the first attack grew it by the whole 256
// MiB.
func TestSizeAttacksRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	const max = 64 << 10
	const stream = 256 << 20
	// A long close timeout, so that the gateway reads (and discards) the
	// whole stream after its 1009 instead of cutting the connection.
	p := start(t, "--max-message", "64KiB", "--close-timeout", "60s")
	pid := p.cmd.Process.Pid

	key := codec.NewMaskKey()
	frame := func(dst []byte, op ws.OpCode, fin bool, n int) []byte {
		return codec.AppendFrameMasked(dst, op, fin, make([]byte, n), key)
	}
	header := func(dst []byte, op ws.OpCode, fin bool, n int64) []byte {
		return codec.AppendHeader(dst, ws.Header{Fin: fin, OpCode: op, Length: n, Masked: true, Mask: key})
	}
	attacks := []struct {
		name  string
		frame []byte
	}{
		{"continuation declaring 2^63-1", header(frame(nil, ws.OpBinary, false, 1), ws.OpContinuation, false, math.MaxInt64)},
		{"single frame declaring 2^63-1", header(nil, ws.OpBinary, true, math.MaxInt64)},
		{"fragments each under the limit", func() []byte {
			b := frame(nil, ws.OpBinary, false, max/4)
			for range 3 {
				b = frame(b, ws.OpContinuation, false, max/4)
			}
			return header(b, ws.OpContinuation, false, stream)
		}()},
		{"fragments interleaved with control frames", func() []byte {
			b := frame(nil, ws.OpText, false, 1)
			for i := range 8 {
				b = codec.AppendFrameMasked(b, ws.OpPing, true, []byte{byte(i)}, key)
				b = frame(b, ws.OpContinuation, false, max/8)
			}
			return header(b, ws.OpContinuation, false, stream)
		}()},
	}

	// Warm up: one connection and a message at the limit, so that the
	// baseline includes a loop's read buffer and a pooled message buffer.
	conn, r, err := wsDialWith(&net.Dialer{Timeout: 5 * time.Second}, p.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write(frame(nil, ws.OpBinary, true, max))
	if _, err := readMessageLen(r); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	base := vmRSS(t, pid)

	chunk := make([]byte, 1<<20)
	for _, a := range attacks {
		conn, r, err := wsDialWith(&net.Dialer{Timeout: 5 * time.Second}, p.addr)
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan uint16, 1)
		go func() {
			conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			code, _, _ := raw.ReadClose(r)
			closed <- code
		}()
		conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
		if _, err := conn.Write(a.frame); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		sent := 0
		for sent < stream {
			n, err := conn.Write(chunk)
			sent += n
			if err != nil {
				break // the gateway may end the connection; what it read counts
			}
		}
		code := <-closed
		rss := vmRSS(t, pid)
		t.Logf("%s: close %d, %d MiB sent, gateway RSS %d KiB (%+d KiB)", a.name, code, sent>>20, rss>>10, (rss-base)>>10)
		if code != uint16(ws.StatusMessageTooBig) {
			t.Errorf("%s: close code %d, want 1009", a.name, code)
		}
		if rss-base > 8<<20 {
			t.Errorf("%s: gateway RSS grew by %d KiB, over 8 MiB", a.name, (rss-base)>>10)
		}
		conn.Close()
	}
}

// vmRSS returns the resident set of process pid in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// readMessageLen reads one unfragmented server message and returns its
// length.
func readMessageLen(r *bufio.Reader) (int, error) {
	var hb [codec.MaxHeaderSize]byte
	n := 0
	for {
		h, hn, err := codec.ParseHeader(hb[:n], codec.RoleClient, 0)
		if err != nil {
			return 0, err
		}
		if hn > 0 {
			_, err := r.Discard(int(h.Length))
			return int(h.Length), err
		}
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		hb[n] = b
		n++
	}
}
