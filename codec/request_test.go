package codec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// rfcKey is the Sec-WebSocket-Key of RFC 6455 §1.3.
const rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="

// req joins the request line and header lines with CRLF and ends the block.
func req(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// upgradeLines are the headers of a valid upgrade, for tests to vary.
var upgradeLines = []string{
	"Host: server.example.com",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: " + rfcKey,
	"Sec-WebSocket-Version: 13",
}

func upgradeReq(first string, extra ...string) string {
	return req(append(append([]string{first}, upgradeLines...), extra...)...)
}

type parsedRequest struct {
	n                                           int
	err                                         error
	method, uri, path, query, host, origin, key string
	hasQuery, isUpgrade                         bool
	protocols, extensions                       []string
	check                                       error
}

// parseAll parses buf with r and collects every view as strings.
func collect(r *Request, n int, err error) parsedRequest {
	p := parsedRequest{n: n, err: err}
	if n == 0 {
		return p
	}
	p.method, p.uri, p.path = string(r.Method()), string(r.URI()), string(r.Path())
	p.query, p.hasQuery = string(r.Query()), r.Query() != nil
	p.host, p.origin, p.key = string(r.Host()), string(r.Origin()), string(r.Key())
	p.isUpgrade = r.IsUpgrade()
	for _, b := range r.Protocols(nil) {
		p.protocols = append(p.protocols, string(b))
	}
	for _, b := range r.Extensions(nil) {
		p.extensions = append(p.extensions, string(b))
	}
	p.check = r.CheckUpgrade()
	return p
}

func parseOnce(buf []byte, maxBytes int) parsedRequest {
	var r Request
	n, err := r.Parse(buf, maxBytes)
	return collect(&r, n, err)
}

var goodRequests = []struct {
	name string
	in   string
	want parsedRequest // n is filled in from in
}{
	{
		name: "RFC 6455 example",
		in: req("GET /chat HTTP/1.1",
			"Host: server.example.com",
			"Upgrade: websocket",
			"Connection: Upgrade",
			"Sec-WebSocket-Key: "+rfcKey,
			"Origin: http://example.com",
			"Sec-WebSocket-Protocol: chat, superchat",
			"Sec-WebSocket-Version: 13"),
		want: parsedRequest{method: "GET", uri: "/chat", path: "/chat", host: "server.example.com",
			origin: "http://example.com", key: rfcKey, isUpgrade: true, protocols: []string{"chat", "superchat"}},
	},
	{
		name: "Firefox keep-alive, Upgrade and query",
		in: req("GET /ws?room=1&user=a HTTP/1.1",
			"Host: localhost:8080",
			"User-Agent: Mozilla/5.0",
			"Accept: */*",
			"Sec-WebSocket-Version: 13",
			"Origin: http://localhost:8080",
			"Sec-WebSocket-Extensions: permessage-deflate",
			"Sec-WebSocket-Key: "+rfcKey,
			"Connection: keep-alive, Upgrade",
			"Upgrade: websocket"),
		want: parsedRequest{method: "GET", uri: "/ws?room=1&user=a", path: "/ws", query: "room=1&user=a", hasQuery: true,
			host: "localhost:8080", origin: "http://localhost:8080", key: rfcKey, isUpgrade: true,
			extensions: []string{"permessage-deflate"}},
	},
	{
		name: "header names and tokens in any case",
		in: req("GET / HTTP/1.1",
			"HOST: h",
			"upgrade: WebSocket",
			"CONNECTION: UPGRADE",
			"sec-websocket-key: "+rfcKey,
			"SEC-WEBSOCKET-VERSION: 13"),
		want: parsedRequest{method: "GET", uri: "/", path: "/", host: "h", key: rfcKey, isUpgrade: true},
	},
	{
		name: "lists with odd whitespace and other tokens",
		in: req("GET /x? HTTP/1.1",
			"Host: [::1]:443",
			"Upgrade: h2c/1.0,\twebsocket ",
			"Connection: close , ,Upgrade",
			"Sec-WebSocket-Key:"+rfcKey+"\t",
			"Sec-WebSocket-Version: 13"),
		want: parsedRequest{method: "GET", uri: "/x?", path: "/x", hasQuery: true, host: "[::1]:443", key: rfcKey, isUpgrade: true},
	},
	{
		name: "several protocol and extension lines",
		in: req("GET /p HTTP/1.1",
			"Host: h",
			"Sec-WebSocket-Protocol: a",
			"Upgrade: websocket",
			"Sec-WebSocket-Protocol: b, c",
			"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
			"Connection: Upgrade",
			"Sec-WebSocket-Protocol: ,d,",
			"Sec-WebSocket-Extensions: foo; bar=\"1,2\"",
			"Sec-WebSocket-Key: "+rfcKey,
			"Sec-WebSocket-Version: 13"),
		want: parsedRequest{method: "GET", uri: "/p", path: "/p", host: "h", key: rfcKey, isUpgrade: true,
			protocols:  []string{"a", "b", "c", "d"},
			extensions: []string{"permessage-deflate; client_max_window_bits", "x-webkit-deflate-frame", "foo; bar=\"1,2\""}},
	},
	{
		name: "more protocol lines than the array holds",
		in: upgradeReq("GET / HTTP/1.1",
			"Sec-WebSocket-Protocol: p1", "Sec-WebSocket-Protocol: p2", "Sec-WebSocket-Protocol: p3",
			"Sec-WebSocket-Protocol: p4", "sec-websocket-protocol: p5, p6"),
		want: parsedRequest{method: "GET", uri: "/", path: "/", host: "server.example.com", key: rfcKey, isUpgrade: true,
			protocols: []string{"p1", "p2", "p3", "p4", "p5", "p6"}},
	},
	{
		name: "bare LF line ends and a leading empty line",
		in:   "\r\nGET / HTTP/1.1\nHost: h\nUpgrade: websocket\r\nConnection: Upgrade\nSec-WebSocket-Key: " + rfcKey + "\nSec-WebSocket-Version: 13\n\n",
		want: parsedRequest{method: "GET", uri: "/", path: "/", host: "h", key: rfcKey, isUpgrade: true},
	},
	{
		name: "HTTP/2.0 request line counts as 1.1 or later",
		in:   upgradeReq("GET / HTTP/2.0"),
		want: parsedRequest{method: "GET", uri: "/", path: "/", host: "server.example.com", key: rfcKey, isUpgrade: true},
	},
	{
		name: "plain GET health check parses",
		in:   req("GET /healthz HTTP/1.1", "Host: h"),
		want: parsedRequest{method: "GET", uri: "/healthz", path: "/healthz", host: "h", check: ErrHandshakeBadUpgrade},
	},
	{
		name: "POST parses, CheckUpgrade refuses",
		in:   upgradeReq("POST /ws HTTP/1.1", "Content-Length: 0"),
		want: parsedRequest{method: "POST", uri: "/ws", path: "/ws", host: "server.example.com", key: rfcKey, isUpgrade: true,
			check: ErrHandshakeBadMethod},
	},
}

func TestRequestParseGood(t *testing.T) {
	for _, tc := range goodRequests {
		t.Run(tc.name, func(t *testing.T) {
			// Bytes after the block belong to the WebSocket stream.
			buf := []byte(tc.in + "\x81\x80abcd")
			got := parseOnce(buf, 0)
			want := tc.want
			want.n = len(tc.in)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestRequestParseSplit parses each good request from two calls cut at
// every offset, moving the bytes to a new array between the calls as a
// caller growing its buffer would, then one byte at a time.
func TestRequestParseSplit(t *testing.T) {
	for _, tc := range goodRequests {
		t.Run(tc.name, func(t *testing.T) {
			want := parseOnce([]byte(tc.in), 0)
			for k := 0; k <= len(tc.in); k++ {
				var r Request
				n, err := r.Parse([]byte(tc.in[:k]), 0)
				if k < len(tc.in) && (n != 0 || err != nil) {
					t.Fatalf("prefix %d: n %d, err %v; want 0, nil", k, n, err)
				}
				n, err = r.Parse([]byte(tc.in), 0)
				if got := collect(&r, n, err); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("split at %d:\ngot  %+v\nwant %+v", k, got, want)
				}
			}
			var r Request
			var n int
			var err error
			for k := 0; k <= len(tc.in) && n == 0 && err == nil; k++ {
				n, err = r.Parse([]byte(tc.in[:k]), 0)
			}
			if got := collect(&r, n, err); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("byte by byte:\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestRequestReject(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		err    error // from Parse, else from CheckUpgrade
		status int
	}{
		{name: "request line without version", in: req("GET /", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "double space in request line", in: req("GET  / HTTP/1.1", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "garbage after version", in: req("GET / HTTP/1.1 x", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "long version digits", in: req("GET / HTTP/11.1", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "lowercase http", in: req("GET / http/1.1", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "control byte in target", in: req("GET /a\x01b HTTP/1.1", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "method not a token", in: req("G(T / HTTP/1.1", "Host: h"), err: ErrHandshakeMalformed, status: 400},
		{name: "HTTP/1.0", in: upgradeReq("GET / HTTP/1.0"), err: ErrHandshakeBadHTTPVersion, status: 400},
		{name: "HTTP/0.9", in: upgradeReq("GET / HTTP/0.9"), err: ErrHandshakeBadHTTPVersion, status: 400},
		{name: "header without colon", in: upgradeReq("GET / HTTP/1.1", "X-Bad"), err: ErrHandshakeMalformed, status: 400},
		{name: "empty header name", in: upgradeReq("GET / HTTP/1.1", ": v"), err: ErrHandshakeMalformed, status: 400},
		{name: "space before colon", in: upgradeReq("GET / HTTP/1.1", "X-Bad : v"), err: ErrHandshakeMalformed, status: 400},
		{name: "obsolete line folding", in: upgradeReq("GET / HTTP/1.1", "X-A: 1", " folded"), err: ErrHandshakeMalformed, status: 400},
		{name: "bare CR in value", in: upgradeReq("GET / HTTP/1.1", "X-A: 1\r2"), err: ErrHandshakeMalformed, status: 400},
		{name: "NUL in value", in: upgradeReq("GET / HTTP/1.1", "X-A: \x00"), err: ErrHandshakeMalformed, status: 400},
		{name: "two Host headers", in: upgradeReq("GET / HTTP/1.1", "Host: other"), err: ErrHandshakeMalformed, status: 400},
		{name: "bad Host value", in: req("GET / HTTP/1.1", "Host: a/b"), err: ErrHandshakeMalformed, status: 400},

		{name: "POST", in: upgradeReq("POST / HTTP/1.1"), err: ErrHandshakeBadMethod, status: 405},
		{name: "lowercase get", in: upgradeReq("get / HTTP/1.1"), err: ErrHandshakeBadMethod, status: 405},
		{name: "missing Host", in: req("GET / HTTP/1.1", upgradeLines[1], upgradeLines[2], upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeMissingHost, status: 400},
		{name: "empty Host", in: req("GET / HTTP/1.1", "Host:", upgradeLines[1], upgradeLines[2], upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeMissingHost, status: 400},
		{name: "missing Upgrade", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[2], upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeBadUpgrade, status: 426},
		{name: "Upgrade without websocket", in: req("GET / HTTP/1.1", upgradeLines[0], "Upgrade: h2c, websockets", upgradeLines[2], upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeBadUpgrade, status: 426},
		{name: "Upgrade with Unicode fold of websocket", in: req("GET / HTTP/1.1", upgradeLines[0], "Upgrade: web\u017focket", upgradeLines[2], upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeBadUpgrade, status: 426},
		{name: "missing Connection", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeBadConnection, status: 400},
		{name: "Connection keep-alive only", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], "Connection: keep-alive, upgraded", upgradeLines[3], upgradeLines[4]),
			err: ErrHandshakeBadConnection, status: 400},
		{name: "missing version", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[3]),
			err: ErrHandshakeBadVersion, status: 426},
		{name: "version 8", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[3], "Sec-WebSocket-Version: 8"),
			err: ErrHandshakeBadVersion, status: 426},
		{name: "version list", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[3], "Sec-WebSocket-Version: 13, 8"),
			err: ErrHandshakeBadVersion, status: 426},
		{name: "two version lines", in: upgradeReq("GET / HTTP/1.1", "Sec-WebSocket-Version: 13"), err: ErrHandshakeBadVersion, status: 426},
		{name: "missing key", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[4]),
			err: ErrHandshakeBadKey, status: 400},
		{name: "key of 15 bytes", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[4], "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"),
			err: ErrHandshakeBadKey, status: 400},
		{name: "key of 17 bytes", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[4], "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="),
			err: ErrHandshakeBadKey, status: 400},
		{name: "key not base64", in: req("GET / HTTP/1.1", upgradeLines[0], upgradeLines[1], upgradeLines[2], upgradeLines[4], "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="),
			err: ErrHandshakeBadKey, status: 400},
		{name: "two key lines", in: upgradeReq("GET / HTTP/1.1", "Sec-WebSocket-Key: "+rfcKey), err: ErrHandshakeBadKey, status: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := r.Parse([]byte(tc.in), 0)
			if err == nil {
				if n != len(tc.in) {
					t.Fatalf("Parse n = %d; want %d", n, len(tc.in))
				}
				err = r.CheckUpgrade()
			} else if n != 0 {
				t.Fatalf("Parse failed with n = %d", n)
			}
			if !errors.Is(err, tc.err) || HandshakeStatus(err) != tc.status {
				t.Fatalf("err = %v (status %d); want %v (status %d)", err, HandshakeStatus(err), tc.err, tc.status)
			}
			// A failed Parse stays failed.
			if _, again := r.Parse([]byte(tc.in), 0); n == 0 && again != err {
				t.Fatalf("Parse after failure = %v; want %v again", again, err)
			}
		})
	}
}

// TestCheckUpgradeOrder starts from a request that breaks every rule and
// fixes one rule at a time: each step must report the next rule in the
// documented order.
func TestCheckUpgradeOrder(t *testing.T) {
	lines := []string{"POST / HTTP/1.1"}
	steps := []struct {
		fix  func()
		want error
	}{
		{fix: func() {}, want: ErrHandshakeBadMethod},
		{fix: func() { lines[0] = "GET / HTTP/1.1" }, want: ErrHandshakeMissingHost},
		{fix: func() { lines = append(lines, "Host: h") }, want: ErrHandshakeBadUpgrade},
		{fix: func() { lines = append(lines, "Upgrade: websocket") }, want: ErrHandshakeBadConnection},
		{fix: func() { lines = append(lines, "Connection: Upgrade") }, want: ErrHandshakeBadVersion},
		{fix: func() { lines = append(lines, "Sec-WebSocket-Version: 13") }, want: ErrHandshakeBadKey},
		{fix: func() { lines = append(lines, "Sec-WebSocket-Key: "+rfcKey) }, want: nil},
	}
	for i, s := range steps {
		s.fix()
		var r Request
		if n, err := r.Parse([]byte(req(lines...)), 0); n == 0 || err != nil {
			t.Fatalf("step %d: Parse = %d, %v", i, n, err)
		}
		if err := r.CheckUpgrade(); err != s.want {
			t.Fatalf("step %d: CheckUpgrade = %v; want %v", i, err, s.want)
		}
	}
	var r Request
	if err := r.CheckUpgrade(); err != ErrHandshakeMalformed {
		t.Fatalf("CheckUpgrade before Parse = %v", err)
	}
}
