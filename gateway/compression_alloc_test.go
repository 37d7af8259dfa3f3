package gateway_test

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// TestCompressedEchoAllocations: the steady-state compressed echo path
// allocates nothing on the server: gathering the compressed frame,
// inflating it with the loop's Inflater into a pooled buffer, the mailbox,
// the worker, Send, compressing with the loop's Deflater into its scratch,
// and the write; with server context takeover the window too. The client
// sends one pre-compressed frame and reads replies into fixed buffers, so
// every allocation counted is the server's.
func TestCompressedEchoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	for _, tc := range []struct {
		name  string
		ctx   string
		offer codec.DeflateParams
	}{
		{"no-context", "", codec.DeflateParams{}},
		{"server-context", "on", codec.DeflateParams{ClientNoContextTakeover: true, ClientMaxWindowBits: 15}},
	} {
		for _, size := range []int{1024, 16 << 10} {
			srv := startServer(t, gateway.Config{Loops: 1, PingInterval: -1, CompressionContext: tc.ctx}, gateway.Echo{})
			z := dialDeflate(t, srv, &tc.offer)
			if !z.ok {
				t.Fatal("not negotiated")
			}
			wf := &zClient{params: z.params}
			var frame []byte
			{
				p := jsonish(size)
				zp := wf.compress(p)
				f := msg(opText, zp)
				f.rsv = 4
				frame = z.wire(f)
			}
			hdr := make([]byte, 10)
			body := make([]byte, size+1024)
			roundTrip := func() {
				if _, err := z.conn.Write(frame); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(z.r, hdr[:2]); err != nil {
					t.Fatal(err)
				}
				if hdr[0] != 0xc1 { // FIN, RSV1, text
					t.Fatalf("reply header %#x: not a compressed text frame", hdr[0])
				}
				n := int(hdr[1] & 0x7f)
				switch n {
				case 126:
					io.ReadFull(z.r, hdr[2:4])
					n = int(binary.BigEndian.Uint16(hdr[2:4]))
				case 127:
					io.ReadFull(z.r, hdr[2:10])
					n = int(binary.BigEndian.Uint64(hdr[2:10]))
				}
				if _, err := io.ReadFull(z.r, body[:n]); err != nil {
					t.Fatal(err)
				}
			}
			for range 200 { // fill the pools, the engines, the windows
				roundTrip()
			}
			if allocs := testing.AllocsPerRun(300, roundTrip); allocs != 0 {
				t.Errorf("%s: compressed echo of %d bytes: %v allocations per round trip, want 0", tc.name, size, allocs)
			}
			st := srv.Stats()
			if st.Compressions < 500 || st.CompressionInPlain < int64(500*size) {
				t.Fatalf("%s: %d compressions, %d bytes inflated: the path was not the compressed one", tc.name, st.Compressions, st.CompressionInPlain)
			}
		}
	}
}
