package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

// TestDeflateZlib: zlib, the library behind Chromium's, Python's and node's
// permessage-deflate, reads what the Deflater writes with a window of
// exactly the negotiated size, which it enforces (a match beyond it fails
// with "invalid distance too far back"), and the Inflater reads what zlib
// writes, with and without context takeover, for every window size.
func TestDeflateZlib(t *testing.T) {
	py := requireTool(t, "/usr/bin/python3", "python3")
	msgs := jsonStream(40, 1024, 31)
	msgs = append(append(msgs, textPayload(70000, 32), testMessage(40000, 2)), jsonStream(5, 200, 33)...)

	type zcase struct {
		Op       string   `json:"op"`
		Bits     int      `json:"bits"`
		Ctx      bool     `json:"ctx"`
		Messages [][]byte `json:"messages"`
	}
	var cases []zcase
	d := NewDeflater()
	for bits := MinDeflateWindowBits; bits <= MaxDeflateWindowBits; bits++ {
		for _, ctx := range []bool{false, true} {
			var win Window
			win.Init(bits)
			zs := make([][]byte, len(msgs))
			for i, m := range msgs {
				var dict []byte
				if ctx {
					dict = win.Bytes()
				}
				zs[i] = d.AppendCompress(nil, m, dict, bits)
				win.Append(m)
			}
			cases = append(cases, zcase{"inflate", bits, ctx, zs})
			if bits > 8 { // zlib's deflate refuses 8-bit raw windows since 1.2.9
				cases = append(cases, zcase{"deflate", bits, ctx, msgs})
			}
		}
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/deflate/zlib_peer.py")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zlib_peer.py: %v", err)
	}
	var results []struct {
		Messages [][]byte `json:"messages"`
		Error    string   `json:"error"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("%d results for %d cases: %v", len(results), len(cases), err)
	}
	f := NewInflater()
	for i, c := range cases {
		res := results[i]
		if res.Error != "" || len(res.Messages) != len(msgs) {
			t.Fatalf("%s bits=%d ctx=%v: zlib: %q (%d messages)", c.Op, c.Bits, c.Ctx, res.Error, len(res.Messages))
		}
		if c.Op == "inflate" {
			for j, m := range res.Messages {
				if !bytes.Equal(m, msgs[j]) {
					t.Fatalf("inflate bits=%d ctx=%v: message %d reads back as %d bytes of %d", c.Bits, c.Ctx, j, len(m), len(msgs[j]))
				}
			}
			continue
		}
		var win Window
		win.Init(c.Bits)
		for j, z := range res.Messages {
			var dict []byte
			if c.Ctx {
				dict = win.Bytes()
			}
			f.Reset(z, dict, len(msgs[j]))
			got, err := f.InflateAll(nil)
			if err != nil || !bytes.Equal(got, msgs[j]) {
				t.Fatalf("deflate bits=%d ctx=%v: message %d: %d bytes of %d, %v", c.Bits, c.Ctx, j, len(got), len(msgs[j]), err)
			}
			win.Append(got)
		}
	}
}
