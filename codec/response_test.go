package codec

import (
	"errors"
	"strings"
	"testing"
)

const rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

func resp(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

func TestResponseParseCheck(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		parseErr error
		status   int
		check    error
		protocol string
	}{
		{
			name:   "RFC 6455 example",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+rfcAccept, "Sec-WebSocket-Protocol: chat"),
			status: 101, protocol: "chat",
		},
		{
			name:   "any case, no reason phrase, bare LF",
			in:     "HTTP/1.1 101\nupgrade: WebSocket\nconnection: upgrade\nsec-websocket-accept:" + rfcAccept + "\n\n",
			status: 101,
		},
		{
			name:   "Connection list",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: keep-alive, Upgrade", "Sec-WebSocket-Accept: "+rfcAccept),
			status: 101,
		},
		{
			name:   "wrong accept",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOA="),
			status: 101, check: ErrResponseAccept,
		},
		{
			name:   "missing accept",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"),
			status: 101, check: ErrResponseAccept,
		},
		{
			name:   "two accepts",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+rfcAccept, "Sec-WebSocket-Accept: "+rfcAccept),
			status: 101, check: ErrResponseAccept,
		},
		{
			name:   "not 101",
			in:     resp("HTTP/1.1 403 Forbidden", "Content-Length: 0"),
			status: 403, check: ErrResponseStatus,
		},
		{
			name:   "200 with upgrade headers",
			in:     resp("HTTP/1.1 200 OK", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+rfcAccept),
			status: 200, check: ErrResponseStatus,
		},
		{
			name:   "missing Upgrade",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Sec-WebSocket-Accept: "+rfcAccept),
			status: 101, check: ErrResponseUpgrade,
		},
		{
			name:   "missing Connection",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Sec-WebSocket-Accept: "+rfcAccept),
			status: 101, check: ErrResponseConnection,
		},
		{
			name:   "two subprotocols in a list",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+rfcAccept, "Sec-WebSocket-Protocol: a, b"),
			status: 101, check: ErrResponseProtocol, protocol: "a, b",
		},
		{
			name:   "two subprotocol lines",
			in:     resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: "+rfcAccept, "Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"),
			status: 101, check: ErrResponseProtocol, protocol: "a",
		},
		{name: "bad status digits", in: resp("HTTP/1.1 1x1 Switching Protocols"), parseErr: ErrResponseMalformed},
		{name: "status below 100", in: resp("HTTP/1.1 099 Odd"), parseErr: ErrResponseMalformed},
		{name: "no space before reason", in: resp("HTTP/1.1 101Switching"), parseErr: ErrResponseMalformed},
		{name: "bad version", in: resp("HTTP/1 101 Switching Protocols"), parseErr: ErrResponseMalformed},
		{name: "bad header line", in: resp("HTTP/1.1 101 Switching Protocols", "Upgrade websocket"), parseErr: ErrResponseMalformed},
		{name: "control byte in reason", in: resp("HTTP/1.1 101 Switching\x00"), parseErr: ErrResponseMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			n, err := r.Parse([]byte(tc.in+"\x81\x00"), 0)
			if tc.parseErr != nil {
				if !errors.Is(err, tc.parseErr) || n != 0 {
					t.Fatalf("Parse = %d, %v; want 0, %v", n, err, tc.parseErr)
				}
				return
			}
			if n != len(tc.in) || err != nil {
				t.Fatalf("Parse = %d, %v; want %d, nil", n, err, len(tc.in))
			}
			if r.Status() != tc.status || string(r.Subprotocol()) != tc.protocol {
				t.Fatalf("Status %d, Subprotocol %q; want %d, %q", r.Status(), r.Subprotocol(), tc.status, tc.protocol)
			}
			if err := r.Check([]byte(rfcKey)); err != tc.check {
				t.Fatalf("Check = %v; want %v", err, tc.check)
			}
		})
	}
}

func TestResponseParseSplitAndLimits(t *testing.T) {
	in := resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: "+rfcAccept, "Sec-WebSocket-Protocol: chat", "X-Trace: abc")
	for k := 0; k <= len(in); k++ {
		var r Response
		if n, err := r.Parse([]byte(in[:k]), 0); (n != 0) != (k == len(in)) || err != nil {
			t.Fatalf("prefix %d: Parse = %d, %v", k, n, err)
		}
		if n, err := r.Parse([]byte(in), 0); n != len(in) || err != nil {
			t.Fatalf("split at %d: Parse = %d, %v", k, n, err)
		}
		if err := r.Check([]byte(rfcKey)); err != nil || string(r.Header("x-trace")) != "abc" || string(r.Subprotocol()) != "chat" {
			t.Fatalf("split at %d: Check = %v, X-Trace %q", k, err, r.Header("x-trace"))
		}
	}

	var r Response
	if r.Header("Upgrade") != nil || r.Subprotocol() != nil || r.Check([]byte(rfcKey)) != ErrResponseMalformed {
		t.Fatal("an unparsed Response must report nothing")
	}
	if _, err := r.Parse([]byte(in), 64); err != ErrResponseTooLarge {
		t.Fatalf("over a 64-byte cap: err = %v", err)
	}
	if _, err := r.Parse([]byte(in), 0); err != ErrResponseTooLarge {
		t.Fatalf("a failed Response must stay failed, got %v", err)
	}
	r.Reset()
	if n, err := r.Parse([]byte(in), len(in)); n != len(in) || err != nil {
		t.Fatalf("at exactly the cap: Parse = %d, %v", n, err)
	}
}
