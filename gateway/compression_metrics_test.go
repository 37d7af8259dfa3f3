package gateway_test

import (
	"bytes"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// TestCompressionMetrics: after compressed traffic, /metrics and /v1/stats
// count it: upgrades, plain and wire bytes both ways, compressions, a
// corrupt message; a push through the admin API reaches a compressed
// client as plain text (the API sees plain payloads, the wire carries them
// compressed).
func TestCompressionMetrics(t *testing.T) {
	srv := startServer(t, gateway.Config{Admin: "127.0.0.1:0", PingInterval: -1}, gateway.Echo{})
	a := newAdminClient(t, srv, "")
	d := gorilla.Dialer{EnableCompression: true, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := jsonish(4096)
	for range 3 {
		if err := c.WriteMessage(gorilla.TextMessage, p); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	}
	bad := dialDeflate(t, srv, &codec.DeflateParams{})
	bad.sendFrames(opBinary, []byte{0xff, 0xff, 0xff}, 0, 4)
	bad.expectFail(1007)

	page := a.json("GET", "/v1/connections", "", nil, 200)["connections"].([]any)
	if len(page) != 1 {
		t.Fatalf("%d connections listed", len(page))
	}
	id := page[0].(map[string]any)["id"].(string)
	push := jsonish(2000)
	a.json("POST", "/v1/connections/"+id+"/messages", "text/plain", push, 202)
	if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, push) {
		t.Fatalf("push: %d bytes, %v", len(got), err)
	}

	var m map[string]float64
	waitFor(t, func() bool {
		m = scrape(t, a)
		return m[`wsgate_inflate_errors_total{reason="corrupt"}`] == 1
	})
	for series, want := range map[string]float64{
		`wsgate_compression_upgrades_total`:                            2,
		`wsgate_compression_connections`:                               1,
		`wsgate_compression_bytes_total{direction="in",form="plain"}`:  3 * 4096,
		`wsgate_compression_bytes_total{direction="out",form="plain"}`: 3*4096 + 2000,
		`wsgate_compressions_total`:                                    4,
		`wsgate_inflate_errors_total{reason="too_big"}`:                0,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	for _, dir := range []string{"in", "out"} {
		plain := m[`wsgate_compression_bytes_total{direction="`+dir+`",form="plain"}`]
		wire := m[`wsgate_compression_bytes_total{direction="`+dir+`",form="wire"}`]
		if wire <= 0 || wire*3 > plain {
			t.Errorf("%s: %v plain bytes as %v on the wire: want a third or less", dir, plain, wire)
		}
	}
	st := a.json("GET", "/v1/stats", "", nil, 200)
	if st["compression_in_plain"] != float64(3*4096) || st["inflate_errors"].(map[string]any)["corrupt"] != float64(1) {
		t.Fatalf("/v1/stats: compression_in_plain %v, inflate_errors %v", st["compression_in_plain"], st["inflate_errors"])
	}
}
