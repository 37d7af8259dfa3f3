package codec_test

import (
	"fmt"
	"strings"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// A server reads a masked client frame: parse the header, wait until the
// whole payload has arrived, then unmask it in place.
func ExampleParseHeader() {
	in := []byte{0b1000_0001, 0b1000_0101, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}

	h, n, err := codec.ParseHeader(in, codec.RoleServer, 0)
	switch {
	case err != nil:
		fmt.Println("fail the connection with close code", codec.CloseCode(err))
		return
	case n == 0 || len(in) < n+int(h.Length):
		fmt.Println("read more")
		return
	}
	payload := in[n : n+int(h.Length)]
	codec.Cipher(payload, h.Mask, 0)
	fmt.Println(h.OpCode == ws.OpText, h.Fin, string(payload))

	// A frame with a reserved opcode is refused from its first two bytes.
	_, _, err = codec.ParseHeader([]byte{0b1000_0011, 0b1000_0000}, codec.RoleServer, 0)
	fmt.Println(err, codec.CloseCode(err))
	// Output:
	// true true Hello
	// codec: reserved opcode (close 1002) 1002
}

// A server parses the opening handshake as it arrives and answers it.
func ExampleRequest_Parse() {
	in := []byte("GET /chat?room=7 HTTP/1.1\r\n" +
		"Host: server.example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n")

	var r codec.Request
	// The first read brought half the request: Parse asks for more.
	n, err := r.Parse(in[:60], 0)
	fmt.Println(n, err)
	// The next call passes everything received so far.
	n, err = r.Parse(in, 0)
	fmt.Println(n == len(in), err)

	var out []byte
	if err := r.CheckUpgrade(); err != nil {
		out = codec.AppendHandshakeError(out, err, nil)
	} else {
		protos := r.Protocols(make([][]byte, 0, 4))
		fmt.Printf("path %s, query %s, offered %q\n", r.Path(), r.Query(), protos)
		out = codec.AppendUpgradeResponse(out, r.Key(), protos[0], nil)
	}
	fmt.Print(strings.ReplaceAll(string(out), "\r\n", "\n")) // CRLF shown as LF
	// Output:
	// 0 <nil>
	// true <nil>
	// path /chat, query room=7, offered ["chat" "superchat"]
	// HTTP/1.1 101 Switching Protocols
	// Upgrade: websocket
	// Connection: Upgrade
	// Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
	// Sec-WebSocket-Protocol: chat
}

// A refused request gets a complete HTTP response that closes the
// connection.
func ExampleAppendHandshakeError() {
	out := codec.AppendHandshakeError(nil, codec.ErrHandshakeBadVersion, nil)
	fmt.Print(strings.ReplaceAll(string(out), "\r\n", "\n")) // CRLF shown as LF
	// Output:
	// HTTP/1.1 426 Upgrade Required
	// Content-Type: text/plain; charset=utf-8
	// Content-Length: 43
	// Connection: Upgrade, close
	// Upgrade: websocket
	// Sec-WebSocket-Version: 13
	//
	// unsupported Sec-WebSocket-Version, want 13
}

// A client sends its handshake and checks the server's answer.
func ExampleResponse_Check() {
	key := codec.NewClientKey()
	req := codec.AppendClientRequest(nil, "example.com", "/ws", key[:], []string{"chat"}, nil)
	_ = req // written to the connection

	// The server's answer, as a real one would compute it.
	in := codec.AppendUpgradeResponse(nil, key[:], []byte("chat"), nil)

	var r codec.Response
	n, err := r.Parse(in, 0)
	fmt.Println(n == len(in), err, r.Status(), r.Check(key[:]), string(r.Subprotocol()))
	// Output: true <nil> 101 <nil> chat
}
