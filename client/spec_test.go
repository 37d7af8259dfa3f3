package client

import (
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSpecExamples checks every frame of docs/resume.md's examples
// (```wire blocks: "S|C text|binary PAYLOAD", then the frame in hex):
// the bytes are the RFC 6455 framing of the payload (client frames masked
// with 37 fa 21 3d), and the payload is what this package writes or
// accepts for that message.
func TestSpecExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/resume.md")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(doc), "\n") {
		switch {
		case l == "```wire":
			in = true
		case l == "```":
			in = false
		case in:
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 || len(lines)%2 != 0 {
		t.Fatalf("%d wire lines, want pairs", len(lines))
	}
	for i := 0; i < len(lines); i += 2 {
		dir, rest, _ := strings.Cut(lines[i], " ")
		op, text, _ := strings.Cut(rest, " ")
		payload := unescape(t, text)
		want, err := hex.DecodeString(strings.ReplaceAll(lines[i+1], " ", ""))
		if err != nil {
			t.Fatalf("%q: %v", lines[i+1], err)
		}
		opcode := map[string]byte{"text": 1, "binary": 2}[op]
		var mask []byte
		if dir == "C" {
			mask = []byte{0x37, 0xfa, 0x21, 0x3d}
		}
		if got := frame(opcode, payload, mask); !bytes.Equal(got, want) {
			t.Errorf("%s: frame\n got % x\nwant % x", lines[i], got, want)
		}
		checkPayload(t, dir, opcode, payload)
	}
}

// checkPayload holds each example to the client's own encoder and
// parsers.
func checkPayload(t *testing.T, dir string, opcode byte, p []byte) {
	t.Helper()
	switch {
	case p[0] == typeData:
		// DATA in either direction: the client writes the prefix, then the
		// payload untouched.
		if !bytes.Equal(append(append([]byte(nil), dataPrefix...), p[1:]...), p) {
			t.Errorf("DATA %q", p)
		}
	case dir == "S" && p[0] == typeHello:
		if _, ok := parseHello(string(p[1:])); !ok || opcode != 1 {
			t.Errorf("HELLO %q does not parse", p)
		}
	case dir == "S" && p[0] == typeBeat:
		if _, ok := countField(string(p[1:]), "seq", 0); !ok || opcode != 1 {
			t.Errorf("BEAT %q", p)
		}
	case dir == "C" && p[0] == typeAck:
		seq, _ := countField(string(p[1:]), "seq", 0)
		if got := appendAck(nil, seq); !bytes.Equal(got, p) {
			t.Errorf("ACK: the client writes %q, the spec %q", got, p)
		}
	default:
		t.Errorf("%s %q: no such message", dir, p)
	}
}

func unescape(t *testing.T, s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			b, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			out = append(out, byte(b))
			i += 3
			continue
		}
		out = append(out, s[i])
	}
	return out
}

// frame is RFC 6455 §5.2 framing of one final frame, written out here
// rather than taken from a library so that the check is independent.
func frame(opcode byte, payload, mask []byte) []byte {
	b := []byte{0x80 | opcode}
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if mask == nil {
		return append(b, payload...)
	}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}
