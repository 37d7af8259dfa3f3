package gateway_test

import (
	"io"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// The steady-state echo path allocates nothing on the server: reading and
// unmasking the frame, the mailbox, the worker, Send, the loop's inbox and
// wake, and the write. The client side of this test (a pre-encoded frame
// and a fixed read buffer on a net.Conn) allocates nothing either, so any
// allocation counted is the server's.
func TestEchoPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	for _, size := range []int{16, 1024, 64 << 10} {
		srv := startServer(t, gateway.Config{Loops: 1, PingInterval: -1}, gateway.Echo{})
		c := dialRaw(t, srv)
		frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, payload(size, false), c.key)
		reply := make([]byte, len(codec.AppendFrame(nil, ws.OpBinary, true, payload(size, false))))
		roundTrip := func() {
			if _, err := c.conn.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c.r, reply); err != nil {
				t.Fatal(err)
			}
		}
		for range 200 { // fill the pools
			roundTrip()
		}
		if allocs := testing.AllocsPerRun(500, roundTrip); allocs != 0 {
			t.Errorf("echo of %d bytes: %v allocations per round trip, want 0", size, allocs)
		}
	}
}
