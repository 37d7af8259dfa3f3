package codec

import (
	"bytes"
	"testing"
)

// Steady state with warm pooled state: compressing and inflating a message
// allocates nothing, nor do negotiation and the context windows.
func TestDeflateNoAllocs(t *testing.T) {
	d := NewDeflater()
	f := NewInflater()
	small := jsonPayload(1<<10, 11)
	big := jsonPayload(16<<10, 12)
	var win Window
	win.Init(12)
	win.Append(textPayload(8<<10, 13))
	dict := win.Bytes()
	out := make([]byte, 0, 64<<10)
	plain := make([]byte, 0, 64<<10)
	zSmall := d.AppendCompress(nil, small, nil, 15)
	zDict := d.AppendCompress(nil, small, dict, 12)
	zBig := d.AppendCompress(nil, big, nil, 15)
	_ = d.AppendCompress(nil, big, nil, 10) // allocates the bounded compressor

	noAllocs(t, "AppendCompress 1 KiB", func() { out = d.AppendCompress(out[:0], small, nil, 15) })
	noAllocs(t, "AppendCompress 16 KiB", func() { out = d.AppendCompress(out[:0], big, nil, 15) })
	noAllocs(t, "AppendCompress with a context window", func() { out = d.AppendCompress(out[:0], small, dict, 12) })
	noAllocs(t, "AppendCompress 16 KiB in a 1 KiB window", func() { out = d.AppendCompress(out[:0], big, nil, 10) })
	noAllocs(t, "Inflate 1 KiB", func() {
		f.Reset(zSmall, nil, 1<<20)
		if plain, _ = f.InflateAll(plain[:0]); len(plain) != len(small) {
			t.Fatal(len(plain))
		}
	})
	noAllocs(t, "Inflate 16 KiB in 4 KiB slices", func() {
		f.Reset(zBig, nil, 1<<20)
		plain = plain[:0]
		for done := false; !done; {
			var err error
			if plain, done, err = f.Inflate(plain, 4<<10); err != nil {
				t.Fatal(err)
			}
		}
	})
	long := textPayload(80000, 14)
	zLong := d.AppendCompress(nil, long, nil, 15)
	if len(zLong) <= stageMax {
		t.Fatalf("%d compressed bytes do not take the in-place path", len(zLong))
	}
	plainLong := make([]byte, 0, len(long)+1)
	noAllocs(t, "Inflate 80 KB read in place", func() {
		f.Reset(zLong, nil, 1<<20)
		if plainLong, _ = f.InflateAll(plainLong[:0]); len(plainLong) != len(long) {
			t.Fatal(len(plainLong))
		}
	})
	noAllocs(t, "Inflate with a context window", func() {
		f.Reset(zDict, dict, 1<<20)
		if plain, _ = f.InflateAll(plain[:0]); !bytes.Equal(plain, small) {
			t.Fatal("mismatch")
		}
	})
	noAllocs(t, "Inflate over the limit", func() {
		f.Reset(zBig, nil, 100)
		if _, err := f.InflateAll(plain[:0]); err != ErrMessageTooBig {
			t.Fatal(err)
		}
	})
	noAllocs(t, "Window.Append", func() { win.Append(small) })

	in := []byte(upgradeReq("GET /ws HTTP/1.1", "Sec-WebSocket-Extensions: x-webkit-deflate-frame",
		"Sec-WebSocket-Extensions: permessage-deflate; foo, "+offerChromium))
	many := []byte(upgradeReq("GET /ws HTTP/1.1", "Sec-WebSocket-Extensions: a", "Sec-WebSocket-Extensions: b",
		"Sec-WebSocket-Extensions: c", "Sec-WebSocket-Extensions: d", "Sec-WebSocket-Extensions: "+autobahnOffer(true, 9)))
	var r Request
	noAllocs(t, "NegotiateDeflate+AppendUpgradeResponseDeflate", func() {
		for _, b := range [][]byte{in, many} {
			r.Reset()
			if _, err := r.Parse(b, 0); err != nil || r.CheckUpgrade() != nil {
				t.Fatal(err)
			}
			p, ok := r.NegotiateDeflate(ctxConfig)
			if !ok {
				t.Fatal("declined")
			}
			out = AppendUpgradeResponseDeflate(out[:0], r.Key(), nil, p, nil)
		}
	})
	resp := []byte(respFor(rfcKey, "Sec-WebSocket-Extensions: "+answerNoContext))
	offer := DeflateParams{ClientMaxWindowBits: 15}
	var rr Response
	noAllocs(t, "Response.Deflate", func() {
		rr.Reset()
		if _, err := rr.Parse(resp, 0); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := rr.Deflate(&offer); !ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	noAllocs(t, "AppendDeflateOffer", func() { out = AppendDeflateOffer(out[:0], offer) })
	noAllocs(t, "ParseHeader RSV1 rules", func() {
		if _, _, err := ParseHeader([]byte{0xc1, 0x80, 0, 0, 0, 0}, RoleServer, Rsv1); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ParseHeader([]byte{0xc0, 0x80}, RoleServer, Rsv1); err != ErrCompressedContinuation {
			t.Fatal(err)
		}
	})
}
