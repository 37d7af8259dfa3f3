package codec

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func BenchmarkParseHeader(b *testing.B) {
	cases := []struct {
		name string
		raw  []byte
	}{
		{name: "7-bit", raw: m(0b1000_0001, 0b1000_0101)},
		{name: "16-bit", raw: m(0b1000_0010, 0b1111_1110, 0x04, 0x00)},
		{name: "64-bit", raw: m(0b1000_0010, 0b1111_1111, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, n, err := ParseHeader(c.raw, RoleServer, 0); n == 0 || err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendHeader(b *testing.B) {
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1024}
	buf := make([]byte, 0, MaxHeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHeader(buf[:0], h)
	}
}

func BenchmarkCipher(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			p := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				Cipher(p, mask, 1)
			}
		})
	}
}

func BenchmarkUTF8(b *testing.B) {
	cases := []struct {
		name string
		text []byte
	}{
		{name: "ascii-1KiB", text: []byte(strings.Repeat("abcdefgh", 128))},
		{name: "multibyte-1KiB", text: []byte(strings.Repeat("h\u00e9\u20ac\U0001F600", 103))[:1024]},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			b.ReportAllocs()
			var v UTF8
			for b.Loop() {
				v.Reset()
				v.Write(c.text)
			}
		})
	}
}

// BenchmarkUTF8Split validates 64 KiB of mostly ASCII text arriving in
// 4 KiB reads, each of which cuts a euro sign in two, as frames and reads
// do: the rest of each read should still take the fast path.
func BenchmarkUTF8Split(b *testing.B) {
	text := []byte(strings.Repeat("a", 64<<10))
	for i := 4096; i < len(text); i += 4096 {
		copy(text[i-1:], "\u20ac")
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var v UTF8
	for b.Loop() {
		v.Reset()
		for p := text; len(p) > 0; {
			n := min(len(p), 4096)
			if !v.Write(p[:n]) {
				b.Fatal("invalid")
			}
			p = p[n:]
		}
	}
}

func BenchmarkHandshake(b *testing.B) {
	in := []byte(req("GET /chat?room=7 HTTP/1.1",
		"Host: server.example.com",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Accept: */*",
		"Accept-Language: en-US,en;q=0.5",
		"Accept-Encoding: gzip, deflate, br",
		"Sec-WebSocket-Version: 13",
		"Origin: https://example.com",
		"Sec-WebSocket-Protocol: chat, superchat",
		"Sec-WebSocket-Extensions: permessage-deflate",
		"Sec-WebSocket-Key: "+rfcKey,
		"Connection: keep-alive, Upgrade",
		"Upgrade: websocket"))
	out := make([]byte, 0, 512)
	protos := make([][]byte, 0, 4)
	var r Request
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if n, err := r.Parse(in, 0); n == 0 || err != nil {
			b.Fatal(err)
		}
		if err := r.CheckUpgrade(); err != nil {
			b.Fatal(err)
		}
		protos = r.Protocols(protos[:0])
		out = AppendUpgradeResponse(out[:0], r.Key(), protos[0], nil)
	}
}

func BenchmarkResponseCheck(b *testing.B) {
	in := []byte(resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: "+rfcAccept))
	key := []byte(rfcKey)
	var r Response
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if n, err := r.Parse(in, 0); n == 0 || err != nil {
			b.Fatal(err)
		}
		if err := r.Check(key); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int) string {
	if n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
