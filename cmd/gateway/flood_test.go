package main

import (
	"bufio"
	"context"
	be "encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
)

// procStatus reads a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// countMessages reads messages from c until it fails, counting them and
// their bytes; the first 8 bytes of each must be its index.
func countMessages(c *gorilla.Conn, msgs, bytes *atomic.Int64, order *atomic.Bool) error {
	var idx [8]byte
	var buf [64 << 10]byte
	for {
		_, r, err := c.NextReader()
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(r, idx[:]); err != nil {
			return err
		}
		if be.BigEndian.Uint64(idx[:]) != uint64(msgs.Load()) {
			order.Store(false)
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf[:])
		if err != nil {
			return err
		}
		bytes.Add(n + 8)
		msgs.Add(1)
	}
}

// One client publishes 192 MiB of 64 KiB messages to --app broadcast as
// fast as it can, a second subscriber reads everything, a third stops
// reading. The publisher stays open (its reads pause when the gateway
// falls behind, TCP slows it), the reader gets every message in order, the
// stopped one is closed 1008 (slow consumer), and the gateway's resident
// memory (from /proc, a separate process) grows by less than 48 MiB.
func TestBroadcastFlood(t *testing.T) {
	const (
		size  = 64 << 10
		total = 192 << 20
		count = total / size
	)
	p := start(t, "--app", "broadcast", "--ping-interval", "0", "--close-timeout", "30s")
	pid := p.cmd.Process.Pid
	url := "ws://" + p.addr + "/ws"
	pub, _, err := gorilla.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	reader, _, err := gorilla.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	// The stopped subscriber's receive buffer is small, so that the
	// kernel does not hold tens of MiB for it before the gateway sees it
	// is not reading.
	small := &gorilla.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
		}}
		return d.Dial(network, addr)
	}}
	stopped, _, err := small.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stopped.Close()

	// Every connection must be registered before the first broadcast:
	// a round trip through the broadcast of the last one proves it.
	stopped.WriteMessage(gorilla.TextMessage, []byte("ready"))
	for _, c := range []*gorilla.Conn{pub, reader, stopped} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, m, err := c.ReadMessage(); err != nil || string(m) != "ready" {
			t.Fatalf("ready: %q %v", m, err)
		}
		c.SetReadDeadline(time.Time{})
	}
	baseRSS := procStatus(t, pid, "VmRSS")

	var pubMsgs, pubBytes, readMsgs, readBytes atomic.Int64
	var pubOrder, readOrder atomic.Bool
	pubOrder.Store(true)
	readOrder.Store(true)
	pubRead := make(chan error, 1)
	readerDone := make(chan error, 1)
	go func() { pubRead <- countMessages(pub, &pubMsgs, &pubBytes, &pubOrder) }()
	go func() { readerDone <- countMessages(reader, &readMsgs, &readBytes, &readOrder) }()

	// The publisher writes prebuilt frames on gorilla's socket: a zero
	// masking key (RFC 6455 §5.3 allows any) keeps the payload as it is,
	// so the client spends nothing on masking.
	var peakHeld atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if v, _ := adminStats(t, p.admin)["inbound_bytes_max"].(float64); int64(v) > peakHeld.Load() {
				peakHeld.Store(int64(v))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, make([]byte, size), [4]byte{})
	hdr := len(frame) - size
	startPub := time.Now()
	conn := pub.NetConn()
	conn.SetWriteDeadline(time.Now().Add(120 * time.Second))
	for i := range count {
		be.BigEndian.PutUint64(frame[hdr:], uint64(i))
		if _, err := conn.Write(frame); err != nil {
			time.Sleep(100 * time.Millisecond)
			var perr error
			select {
			case perr = <-pubRead:
			default:
			}
			t.Fatalf("publisher cut after %d of %d messages: %v (its reader: %v; gateway closes %v)", i, count, err, perr, adminStats(t, p.admin)["closes"])
		}
	}
	pubTime := time.Since(startPub)

	waitCount := func(what string, n *atomic.Int64, done chan error) {
		deadline := time.After(60 * time.Second)
		for n.Load() < count {
			select {
			case err := <-done:
				t.Fatalf("%s stopped after %d of %d messages: %v", what, n.Load(), count, err)
			case <-deadline:
				t.Fatalf("%s got %d of %d messages", what, n.Load(), count)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitCount("the reading subscriber", &readMsgs, readerDone)
	waitCount("the publisher's own subscription", &pubMsgs, pubRead)
	cancel()
	growth := procStatus(t, pid, "VmHWM") - baseRSS
	if !readOrder.Load() || !pubOrder.Load() {
		t.Fatal("messages out of order")
	}

	// The stopped subscriber reads again: what was queued, then 1008.
	stopped.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got int
	for {
		_, _, err := stopped.ReadMessage()
		if err == nil {
			got++
			continue
		}
		if !gorilla.IsCloseError(err, gorilla.ClosePolicyViolation) {
			t.Fatalf("stopped subscriber: %v after %d messages, want close 1008", err, got)
		}
		break
	}
	var st map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st = adminStats(t, p.admin)
		if st["closes"].(map[string]any)["slow_consumer"].(float64) > 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("published %d MiB in %v (%.0f MiB/s); reader got %d MiB; stopped subscriber got %d messages, then 1008",
		total>>20, pubTime.Round(time.Millisecond), float64(total>>20)/pubTime.Seconds(), readBytes.Load()>>20, got)
	t.Logf("gateway RSS grew %d KiB (peak over the base); at most %d KiB held inbound by a connection; %v pauses, %v paused",
		growth, peakHeld.Load()>>10, st["inbound_pauses"], time.Duration(int64(st["inbound_paused_nanos"].(float64))))
	if growth > 48<<10 {
		t.Fatalf("gateway RSS grew %d KiB, over 48 MiB", growth)
	}
	// The publisher is still open.
	pub.NetConn().Write(codec.AppendFrameMasked(nil, ws.OpText, true, []byte("still here"), codec.NewMaskKey()))
	if c := st["closes"].(map[string]any); c["inbound_overflow"].(float64) != 0 || c["slow_consumer"].(float64) != 1 {
		t.Fatalf("closes %v: want one slow consumer and no inbound overflow", c)
	}
}
