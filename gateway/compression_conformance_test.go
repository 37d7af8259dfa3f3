package gateway_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// The Autobahn 13.x offers (the parameter combinations of its 13.1-13.7
// groups), answered by the server with and without --compression-context.
var autobahn13Offers = []struct {
	name  string
	offer codec.DeflateParams
}{
	{"13.1 permessage-deflate", codec.DeflateParams{}},
	{"13.2 client_no_context_takeover", codec.DeflateParams{ClientNoContextTakeover: true}},
	{"13.3 server_max_window_bits=8", codec.DeflateParams{ServerMaxWindowBits: 8}},
	{"13.4 server_max_window_bits=15", codec.DeflateParams{ServerMaxWindowBits: 15}},
	{"13.5 client_max_window_bits=8", codec.DeflateParams{ClientMaxWindowBits: 8}},
	{"13.6 client_max_window_bits=15", codec.DeflateParams{ClientMaxWindowBits: 15}},
	{"13.7 both no_context_takeover, server_max_window_bits=9", codec.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 9}},
	{"server_max_window_bits=12, client_max_window_bits=10", codec.DeflateParams{ServerMaxWindowBits: 12, ClientMaxWindowBits: 10}},
}

// Autobahn 12.x sizes, and the fragment sizes of the compressed payload.
var (
	autobahn12Sizes = []int{16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072}
	autobahn12Frags = []int{0, 256, 4096}
)

// TestAutobahn12And13: compressed echo of every size, text and binary
// (compressible and not), unfragmented and fragmented, for every offer, with
// and without context takeover on the server. Each message is sent twice in
// a row so that context takeover has history to refer to. The client
// compresses and inflates with compress/flate; the server's answer passes
// the client-side checks of RFC 7692.
func TestAutobahn12And13(t *testing.T) {
	for _, ctx := range []string{"off", "on"} {
		srv := startConformance(t, gateway.Config{CompressionContext: ctx, CompressionMinSize: 1}, gateway.Echo{})
		for _, o := range autobahn13Offers {
			t.Run("context="+ctx+"/"+o.name, func(t *testing.T) {
				z := dialDeflate(t, srv, &o.offer)
				if !z.ok {
					t.Fatal("offer declined")
				}
				sct, _ := z.params.Send(codec.RoleServer)
				cct, _ := z.params.Send(codec.RoleClient)
				if ctx == "off" && (sct || cct) {
					t.Fatalf("context takeover agreed with --compression-context off: %v", z.params)
				}
				compressedReplies := 0
				for _, n := range autobahn12Sizes {
					for fi, frag := range autobahn12Frags {
						for kind, p := range [][]byte{jsonish(n), noise(n, uint64(n+fi))} {
							op := byte(opText)
							if kind == 1 {
								op = opBinary
							}
							for rep := 0; rep < 2; rep++ {
								z.sendZ(op, p, frag)
								gotOp, got, compressed := z.readZ()
								if byte(gotOp) != op || !bytes.Equal(got, p) {
									t.Fatalf("size %d frag %d kind %d rep %d: got op %d, %d bytes %s", n, frag, kind, rep, gotOp, len(got), diffAt(got, p))
								}
								if compressed {
									compressedReplies++
								} else if kind == 0 && n >= 256 {
									t.Fatalf("size %d of JSON came back uncompressed", n)
								}
							}
						}
					}
				}
				if compressedReplies == 0 {
					t.Fatal("no reply came compressed")
				}
				z.send(closeMsg(1000, ""))
				z.expectCloseFrame(1000)
			})
		}
	}
}

// TestAutobahn6CompressedUTF8: text checks apply to the inflated text
// (Autobahn 6.x with compression): valid text split anywhere across
// compressed fragments echoes; invalid sequences close with 1007.
func TestAutobahn6CompressedUTF8(t *testing.T) {
	srv := startConformance(t, gateway.Config{CompressionMinSize: 1}, gateway.Echo{})
	valid := []byte("κόσμε, ça va? 日本語のテキスト 𝄞 " + string(jsonish(300)))
	for _, frag := range []int{0, 1, 3, 7} {
		t.Run(fmt.Sprintf("valid/frag%d", frag), func(t *testing.T) {
			z := dialDeflate(t, srv, &codec.DeflateParams{})
			z.sendZ(opText, valid, frag)
			if _, got, _ := z.readZ(); !bytes.Equal(got, valid) {
				t.Fatalf("echo: %s", diffAt(got, valid))
			}
		})
	}
	for _, tc := range []struct{ name, s string }{
		{"6.3.1 surrogate", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"},
		{"6.6.x truncated", "\xce\xba\xe1\xbd"},
		{"6.8.x 5-byte", "\xf8\x88\x80\x80\x80"},
		{"6.10.x overlong", "\xc0\xaf"},
		{"6.12.x continuation", "\x80\x80"},
		{"6.x 0xff", "abc\xff"},
		{"beyond U+10FFFF", "\xf4\x90\x80\x80"},
	} {
		for _, frag := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/frag%d", tc.name, frag), func(t *testing.T) {
				z := dialDeflate(t, srv, &codec.DeflateParams{})
				z.sendZ(opText, []byte(tc.s), frag)
				z.expectFail(1007)
			})
		}
	}
}

// TestCompressionProtocolErrors: RSV1 where RFC 7692 §6.1 forbids it is
// 1002; without a negotiation RSV1 stays reserved (1002); data that is not
// DEFLATE is 1007 (as node ws); an uncompressed message on a compressed
// connection is ordinary.
func TestCompressionProtocolErrors(t *testing.T) {
	srv := startConformance(t, gateway.Config{CompressionMinSize: 1}, gateway.Echo{})
	t.Run("RSV1 on a continuation", func(t *testing.T) {
		z := dialDeflate(t, srv, &codec.DeflateParams{})
		zp := z.compress([]byte("hello hello hello hello"))
		f := frag(opText, zp[:2])
		f.rsv = 4
		g := msg(opCont, zp[2:])
		g.rsv = 4
		z.send(f, g)
		z.expectFail(1002)
	})
	t.Run("RSV1 on a ping", func(t *testing.T) {
		z := dialDeflate(t, srv, &codec.DeflateParams{})
		f := ping("x")
		f.rsv = 4
		z.send(f)
		z.expectFail(1002)
	})
	t.Run("RSV1 without negotiation", func(t *testing.T) {
		z := dialDeflate(t, srv, nil)
		if z.ok {
			t.Fatal("negotiated without an offer")
		}
		z.sendFrames(opText, z.compress([]byte("hello")), 0, 4)
		z.expectFail(1002)
	})
	t.Run("RSV2 with compression", func(t *testing.T) {
		z := dialDeflate(t, srv, &codec.DeflateParams{})
		z.sendFrames(opText, []byte("hello"), 0, 2)
		z.expectFail(1002)
	})
	t.Run("corrupt data", func(t *testing.T) {
		z := dialDeflate(t, srv, &codec.DeflateParams{})
		z.sendFrames(opBinary, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, 4)
		z.expectFail(1007)
		if st := srv.Stats(); st.InflateErrors["corrupt"] == 0 {
			t.Fatalf("InflateErrors %v", st.InflateErrors)
		}
	})
	t.Run("plain message, ping between fragments", func(t *testing.T) {
		z := dialDeflate(t, srv, &codec.DeflateParams{})
		p := jsonish(3000)
		z.send(frag(opText, p[:1000]), ping("mid"), msg(opCont, p[1000:]))
		z.expectPong([]byte("mid"))
		if _, got, _ := z.readZ(); !bytes.Equal(got, p) {
			t.Fatalf("echo: %s", diffAt(got, p))
		}
		zp := z.compress(p)
		f := frag(opText, zp[:10])
		f.rsv = 4
		z.send(f, ping("mid2"), msg(opCont, zp[10:]))
		z.expectPong([]byte("mid2"))
		if _, got, _ := z.readZ(); !bytes.Equal(got, p) {
			t.Fatalf("echo: %s", diffAt(got, p))
		}
	})
}

// bomb returns about n bytes of DEFLATE (tail stripped) that inflate to
// about 1030 times as much: zeros, the best case of the format.
func bomb(t testing.TB, plain int) []byte {
	z := &zClient{}
	zp := z.compress(make([]byte, plain))
	t.Logf("bomb: %d compressed bytes inflate to %d", len(zp), plain)
	return zp
}

// TestCompressionBomb: with --max-message 64KiB, a compressed message
// whose plain text is far larger closes with 1009: refused at its header
// when the compressed size alone is over what 64 KiB can compress to, and
// stopped as it inflates otherwise, one frame or many. The server allocates
// at most a few bounded buffers for it (under 4 MiB, measured).
func TestCompressionBomb(t *testing.T) {
	srv := startConformance(t, gateway.Config{MaxMessageSize: 64 << 10}, gateway.Echo{})
	big := bomb(t, 100<<20)  // ~100 KiB compressed: over DeflateBound(64 KiB)
	small := bomb(t, 40<<20) // ~50 KiB compressed: inflates to 40 MiB
	for _, tc := range []struct {
		name  string
		z     []byte
		frag  int
		limit bool // stopped while inflating (counted in InflateErrors)
	}{
		{"100MiB in 100KiB, one frame", big, 0, false},
		{"100MiB in 100KiB, 4KiB fragments", big, 4096, false},
		{"40MiB in 50KiB, one frame", small, 0, true},
		{"40MiB in 50KiB, 1KiB fragments", small, 1024, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := dialDeflate(t, srv, &codec.DeflateParams{})
			before := srv.Stats().InflateErrors["too_big"]
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			z.sendFrames(opBinary, tc.z, tc.frag, 4)
			z.expectFail(1009)
			runtime.ReadMemStats(&m1)
			alloc := m1.TotalAlloc - m0.TotalAlloc
			t.Logf("allocated while the bomb was handled (client and server): %d KiB", alloc>>10)
			if alloc > 4<<20 {
				t.Fatalf("a bomb cost %d bytes of allocation, over 4 MiB", alloc)
			}
			after := srv.Stats().InflateErrors["too_big"]
			if tc.limit && after != before+1 || !tc.limit && after != before {
				t.Fatalf("InflateErrors[too_big] %d -> %d", before, after)
			}
		})
	}
	// The connection next to a bomb is unaffected.
	z := dialDeflate(t, srv, &codec.DeflateParams{})
	p := jsonish(60 << 10)
	z.sendZ(opText, p, 0)
	if _, got, _ := z.readZ(); !bytes.Equal(got, p) {
		t.Fatalf("echo after the bombs: %s", diffAt(got, p))
	}
}
