package codec

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"strings"
	"testing"
)

// FuzzNegotiateDeflate feeds arbitrary Sec-WebSocket-Extensions values,
// split over header lines at a fuzzer-chosen offset. Whatever the offers,
// the request is not refused, an answer is one the RFC allows for the
// configuration, and the client that made the chosen offer accepts it.
func FuzzNegotiateDeflate(f *testing.F) {
	for _, tc := range negotiateCases() {
		f.Add([]byte(strings.Join(tc.lines, ", ")), uint16(0), true, uint8(12))
	}
	f.Add([]byte(offerChromium), uint16(10), false, uint8(0))
	f.Fuzz(func(t *testing.T, value []byte, split uint16, ctx bool, bits uint8) {
		if bytes.ContainsAny(value, "\r\n") {
			return // not a header value
		}
		cfg := DeflateConfig{ContextTakeover: ctx, WindowBits: bits}
		k := int(split) % (len(value) + 1)
		buf := []byte(upgradeReq("GET / HTTP/1.1",
			"Sec-WebSocket-Extensions: "+string(value[:k]), "Sec-WebSocket-Extensions: "+string(value[k:])))
		var r Request
		if n, err := r.Parse(buf, 1<<20); n == 0 || err != nil {
			return // not a valid header value for the parser: nothing to negotiate
		}
		if err := r.CheckUpgrade(); err != nil {
			t.Fatalf("CheckUpgrade: %v", err)
		}
		p, ok := r.NegotiateDeflate(cfg)
		if !ok {
			return
		}
		answer := p.AppendResponse(nil)
		back, res := parseDeflate(answer, false)
		if res != deflateOK || back != p {
			t.Fatalf("answer %q parses back as %+v, %v", answer, back, res)
		}
		if !ctx && (!p.ServerNoContextTakeover || !p.ClientNoContextTakeover) {
			t.Fatalf("context takeover answered without the configuration: %q", answer)
		}
		if !p.ClientNoContextTakeover && (p.ClientMaxWindowBits == 0 || p.ClientMaxWindowBits > cfg.windowBits()) {
			t.Fatalf("the client's window is not bounded by ours: %q", answer)
		}
		// The offer the server picked, found independently, accepts it.
		var offer DeflateParams
		found := false
		for _, line := range [][]byte{value[:k], value[k:]} {
			for list := line; len(list) > 0 && !found; {
				var e []byte
				e, list = nextElem(list)
				offer, res = parseDeflate(e, true)
				found = res == deflateOK
			}
		}
		if !found {
			t.Fatalf("answered %q with no well-formed offer", answer)
		}
		if again, res := parseDeflate(offer.AppendOffer(nil), true); res != deflateOK || again != offer {
			t.Fatalf("offer %+v does not survive writing: %+v", offer, again)
		}
		var rr Response
		if _, err := rr.Parse([]byte(respFor(rfcKey, "Sec-WebSocket-Extensions: "+string(answer))), 0); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := rr.Deflate(&offer); !ok || err != nil {
			t.Fatalf("the client that offered %q refuses %q: %v", offer.AppendOffer(nil), answer, err)
		}
	})
}

// FuzzInflate feeds arbitrary compressed messages. The Inflater never
// produces more than limit+1 bytes, never more per call than asked, and
// agrees with the standard library's decoder on every stream either
// accepts.
func FuzzInflate(f *testing.F) {
	d := NewDeflater()
	for i, c := range corpus {
		if len(c.data) < 64<<10 {
			f.Add(d.AppendCompress(nil, c.data, nil, 15), []byte(nil), uint32(len(c.data)), uint16(i*100))
		}
	}
	f.Add([]byte{0xf2, 0x00, 0x11, 0x00, 0x00}, []byte("Hello"), uint32(5), uint16(1))
	f.Add([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, []byte(nil), uint32(4), uint16(2))
	f.Add(bombOnce()[:200], []byte(nil), uint32(1000), uint16(300))
	fr := NewInflater()
	f.Fuzz(func(t *testing.T, msg, dict []byte, limit uint32, chunk uint16) {
		lim := int(limit % (64 << 10))
		step := int(chunk % 4096) // 0: no bound per call
		fr.Reset(msg, dict, lim)
		var out []byte
		var err error
		done := false
		for calls := 0; err == nil && !done; calls++ {
			before := len(out)
			out, done, err = fr.Inflate(out, step)
			if step > 0 && len(out)-before > step {
				t.Fatalf("one call produced %d bytes, asked %d", len(out)-before, step)
			}
			if calls > lim+2 {
				t.Fatal("no progress")
			}
		}
		if len(out) > lim+1 {
			t.Fatalf("%d bytes out with a limit of %d", len(out), lim)
		}
		std, stdErr := io.ReadAll(io.LimitReader(stdflate.NewReaderDict(
			io.MultiReader(bytes.NewReader(msg), bytes.NewReader(inflateTail[:])), dict), int64(lim)+1))
		switch {
		case err == nil:
			if stdErr != nil || !bytes.Equal(std, out) {
				t.Fatalf("Inflater: %d bytes; compress/flate: %d bytes, %v", len(out), len(std), stdErr)
			}
		case err == ErrMessageTooBig:
			if len(out) != lim+1 || !bytes.Equal(std[:min(len(std), len(out))], out) {
				t.Fatalf("too big after %d bytes; compress/flate: %d bytes, %v", len(out), len(std), stdErr)
			}
		case err == ErrCompressedData:
			if stdErr == nil && len(std) <= lim {
				t.Fatalf("Inflater refuses what compress/flate reads (%d bytes)", len(std))
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzDeflateRoundTrip compresses arbitrary messages against arbitrary
// dictionaries and windows: the Inflater reads them back, and the reference
// decoder finds no match beyond the window.
func FuzzDeflateRoundTrip(f *testing.F) {
	f.Add([]byte("Hello Hello Hello"), []byte("Hello"), uint8(8))
	f.Add(testMessage(3000, 2), testMessage(600, 5), uint8(9))
	d := NewDeflater()
	fr := NewInflater()
	f.Fuzz(func(t *testing.T, msg, dict []byte, bits uint8) {
		b := MinDeflateWindowBits + int(bits)%8
		z := d.AppendCompress(nil, msg, dict, b)
		if len(dict) > 1<<b {
			dict = dict[len(dict)-1<<b:]
		}
		fr.Reset(z, dict, len(msg))
		got, err := fr.InflateAll(nil)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("bits %d: %d bytes back of %d, %v", b, len(got), len(msg), err)
		}
		ref, dist, err := refInflate(dict, append(z, deflateTail[:]...))
		if err != nil || !bytes.Equal(ref, msg) || dist > 1<<b {
			t.Fatalf("bits %d: reference decoder %d bytes, %v, distance %d", b, len(ref), err, dist)
		}
	})
}
