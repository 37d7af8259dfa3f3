package codec

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// RFC 6455 §1.3.
	if got := AcceptKey([]byte(rfcKey)); string(got[:]) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey(%q) = %q", rfcKey, got)
	}
	// Keys longer than the stack buffer take the other path.
	for _, key := range []string{"", strings.Repeat("k", 64), strings.Repeat("k", 65), strings.Repeat("k", 500)} {
		sum := sha1.Sum([]byte(key + acceptGUID))
		want := base64.StdEncoding.EncodeToString(sum[:])
		if got := AcceptKey([]byte(key)); string(got[:]) != want {
			t.Errorf("AcceptKey(%d bytes) = %q; want %q", len(key), got, want)
		}
	}
}

func TestAppendUpgradeResponse(t *testing.T) {
	got := AppendUpgradeResponse([]byte("x"), []byte(rfcKey), []byte("chat"), []byte("X-Served-By: a\r\n"))
	want := "xHTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n" +
		"X-Served-By: a\r\n" +
		"\r\n"
	if string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = AppendUpgradeResponse(nil, []byte(rfcKey), nil, nil)
	if strings.Contains(string(got), "Sec-WebSocket-Protocol") || !strings.HasSuffix(string(got), "xOo=\r\n\r\n") {
		t.Fatalf("without subprotocol: %q", got)
	}
}

func TestAppendHTTPResponse(t *testing.T) {
	got := AppendHTTPResponse(nil, 200, "text/html", []byte("Cache-Control: no-store\r\n"), []byte("<p>hi</p>"), true)
	want := "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/html\r\n" +
		"Content-Length: 9\r\n" +
		"Connection: close\r\n" +
		"Cache-Control: no-store\r\n" +
		"\r\n" +
		"<p>hi</p>"
	if string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	got = AppendHTTPResponse(nil, 299, "", nil, nil, false)
	if string(got) != "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n" {
		t.Fatalf("unknown status, no body: %q", got)
	}
}

// TestAppendHandshakeError reads each refusal back with net/http as an
// independent parser.
func TestAppendHandshakeError(t *testing.T) {
	cases := []struct {
		err     error
		extra   string
		headers map[string]string
	}{
		{err: ErrHandshakeMalformed},
		{err: ErrHandshakeBadMethod, headers: map[string]string{"Allow": "GET"}},
		{err: ErrHandshakeBadUpgrade, headers: map[string]string{"Upgrade": "websocket", "Sec-Websocket-Version": "13"}},
		{err: ErrHandshakeBadVersion, headers: map[string]string{"Sec-Websocket-Version": "13", "Upgrade": "websocket"}},
		{err: ErrHeaderTooLarge},
		{err: ErrHandshakeUnavailable, extra: "Retry-After: 5\r\n", headers: map[string]string{"Retry-After": "5"}},
		{err: io.EOF}, // not a HandshakeError: a plain 400
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			raw := AppendHandshakeError(nil, tc.err, []byte(tc.extra))
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				t.Fatalf("net/http cannot read %q: %v", raw, err)
			}
			body, _ := io.ReadAll(resp.Body)
			status := HandshakeStatus(tc.err)
			reason := StatusText(400)
			if he, ok := tc.err.(*HandshakeError); ok {
				reason = he.Reason
			}
			if resp.StatusCode != status || string(body) != reason+"\n" || !resp.Close ||
				resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("got status %d, body %q, close %v in %q", resp.StatusCode, body, resp.Close, raw)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q; want %q", k, got, v)
				}
			}
			// net/http consumes "Connection: close" into resp.Close; a 426
			// must also list Upgrade there (RFC 9110 §7.8).
			if status == 426 && !strings.Contains(string(raw), "\r\nConnection: Upgrade, close\r\n") {
				t.Errorf("426 without Connection: Upgrade, close: %q", raw)
			}
			if status != 426 && resp.Header.Get("Sec-WebSocket-Version") != "" {
				t.Error("Sec-WebSocket-Version outside a 426")
			}
		})
	}
}
