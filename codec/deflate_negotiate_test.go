package codec

import (
	"fmt"
	"strings"
	"testing"
)

// Offers as real clients send them. Chromium 156, python3-websockets 10.4 and
// node ws 8.23 were captured from the wire (TestDeflatePeers checks the last
// two on every run); the others are read from the clients' sources.
const (
	offerChromium  = "permessage-deflate; client_max_window_bits" // also node ws, python websockets
	offerFirefox   = "permessage-deflate"                         // also Safari
	offerGorilla   = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	offerAutobahn  = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
	offerOldSafari = "x-webkit-deflate-frame"
)

// Answers.
const (
	answerNoContext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	answerCtx12     = "permessage-deflate; client_max_window_bits=12"
	answerCtxClient = "permessage-deflate; client_no_context_takeover"
)

// autobahnOffer is the offer Autobahn's fuzzingclient sends in the 13.x
// cases (PerMessageDeflateOffer.get_extension_string: the accept flags,
// then the requests).
func autobahnOffer(serverNoContext bool, bits int) string {
	s := offerAutobahn
	if serverNoContext {
		s += "; server_no_context_takeover"
	}
	if bits != 0 {
		s += fmt.Sprintf("; server_max_window_bits=%d", bits)
	}
	return s
}

type negotiateCase struct {
	name  string
	lines []string // Sec-WebSocket-Extensions values, one header line each
	want  string   // answer with the default DeflateConfig, "" to decline
	ctx   string   // answer with ContextTakeover and 12-bit windows
}

var ctxConfig = DeflateConfig{ContextTakeover: true, WindowBits: 12}

func negotiateCases() []negotiateCase {
	cases := []negotiateCase{
		{name: "chromium, node ws, python websockets", lines: []string{offerChromium}, want: answerNoContext, ctx: answerCtx12},
		{name: "firefox", lines: []string{offerFirefox}, want: answerNoContext, ctx: answerCtxClient},
		{name: "gorilla", lines: []string{offerGorilla}, want: answerNoContext, ctx: answerNoContext},
		{name: "autobahn default", lines: []string{offerAutobahn}, want: answerNoContext, ctx: answerCtxClient},
		{name: "old safari only", lines: []string{offerOldSafari}},
		{name: "no header"},
		{name: "empty value", lines: []string{""}},
		{name: "another extension first", lines: []string{"x-webkit-deflate-frame, " + offerChromium}, want: answerNoContext, ctx: answerCtx12},
		{name: "no space", lines: []string{"permessage-deflate;client_max_window_bits"}, want: answerNoContext, ctx: answerCtx12},
		{name: "extra whitespace", lines: []string{"  permessage-deflate \t; client_max_window_bits = 10 ;server_no_context_takeover  "},
			want: answerNoContext, ctx: "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"},
		{name: "client bits above ours", lines: []string{"permessage-deflate; client_max_window_bits=15"}, want: answerNoContext, ctx: answerCtx12},
		{name: "client bits below ours", lines: []string{"permessage-deflate; client_max_window_bits=9"}, want: answerNoContext,
			ctx: "permessage-deflate; client_max_window_bits=9"},
		{name: "quoted", lines: []string{`permessage-deflate; client_max_window_bits="10"; server_max_window_bits="11"`},
			want: answerNoContext + "; server_max_window_bits=11", ctx: "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10"},
		{name: "quoted with escapes", lines: []string{`permessage-deflate; server_max_window_bits="1\1"`},
			want: answerNoContext + "; server_max_window_bits=11", ctx: answerCtxClient + "; server_max_window_bits=11"},
		{name: "both flags offered", lines: []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
			want: answerNoContext, ctx: answerNoContext},
		{name: "autobahn 13.7: three offers", lines: []string{
			autobahnOffer(true, 9) + ", " + autobahnOffer(true, 0) + ", " + offerAutobahn},
			want: answerNoContext + "; server_max_window_bits=9", ctx: answerNoContext + "; server_max_window_bits=9"},
		{name: "offers on several lines", lines: []string{offerOldSafari, "permessage-deflate; server_max_window_bits=10", offerChromium},
			want: answerNoContext + "; server_max_window_bits=10", ctx: answerCtxClient + "; server_max_window_bits=10"},
		{name: "first offer malformed", lines: []string{"permessage-deflate; server_max_window_bits=16, " + offerChromium},
			want: answerNoContext, ctx: answerCtx12},
		{name: "malformed offer on the first line", lines: []string{"permessage-deflate; foo", offerFirefox},
			want: answerNoContext, ctx: answerCtxClient},
		{name: "comma inside quotes does not split", lines: []string{`permessage-deflate; client_max_window_bits="1,0", ` + offerFirefox},
			want: answerNoContext, ctx: answerCtxClient},
		{name: "six lines, the offer on the last", lines: []string{"a", "b", "c", "d", "e", offerChromium}, want: answerNoContext, ctx: answerCtx12},
		{name: "six lines, none ours", lines: []string{"a", "b", "c", "d", "e", "f"}},
	}
	// Autobahn 13.3 to 13.6 ask for every window size; 8 is valid too
	// (RFC 7692 §7.1.2.1), though zlib-based servers decline it.
	for bits := 8; bits <= 15; bits++ {
		for _, noCtx := range []bool{false, true} {
			suffix := fmt.Sprintf("; server_max_window_bits=%d", bits)
			c := negotiateCase{
				name:  fmt.Sprintf("autobahn server_max_window_bits=%d server_no_context_takeover=%v", bits, noCtx),
				lines: []string{autobahnOffer(noCtx, bits)},
				want:  answerNoContext + suffix,
				ctx:   answerCtxClient + suffix,
			}
			if noCtx {
				c.ctx = answerNoContext + suffix
			}
			cases = append(cases, c)
		}
	}
	// Malformed offers: declined (RFC 7692 §7), and the handshake goes on
	// uncompressed.
	for _, bad := range []string{
		"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; client_max_window_bits; client_max_window_bits=10",
		"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
		"permessage-deflate; foo",
		"permessage-deflate; foo=1",
		"permessage-deflate; Server_No_Context_Takeover",
		"permessage-deflate; server_no_context_takeover=true",
		`permessage-deflate; client_no_context_takeover=""`,
		"permessage-deflate; server_max_window_bits",
		"permessage-deflate; server_max_window_bits=",
		"permessage-deflate; server_max_window_bits=7",
		"permessage-deflate; server_max_window_bits=16",
		"permessage-deflate; server_max_window_bits=0",
		"permessage-deflate; server_max_window_bits=08",
		"permessage-deflate; server_max_window_bits=+9",
		"permessage-deflate; server_max_window_bits=9.0",
		"permessage-deflate; server_max_window_bits=x",
		"permessage-deflate; server_max_window_bits=100000000000000000000",
		`permessage-deflate; server_max_window_bits=""`,
		`permessage-deflate; server_max_window_bits="015"`,
		"permessage-deflate; client_max_window_bits=7",
		"permessage-deflate; client_max_window_bits=16",
		"permessage-deflate;",
		"permessage-deflate; ; client_max_window_bits",
		"permessage-deflate; =10",
		"permessage-deflate; client_max_window_bits 10",
	} {
		cases = append(cases,
			negotiateCase{name: "malformed: " + bad, lines: []string{bad}},
			negotiateCase{name: "malformed, then good: " + bad, lines: []string{bad + ", " + offerChromium}, want: answerNoContext, ctx: answerCtx12})
	}
	// An unclosed quote runs to the end of the line (RFC 9110 §5.6.4), so
	// the offers after it are part of the bad one.
	cases = append(cases, negotiateCase{name: "unclosed quote swallows the rest of the line",
		lines: []string{`permessage-deflate; server_max_window_bits="10, ` + offerChromium}})
	return cases
}

func TestNegotiateDeflate(t *testing.T) {
	for _, tc := range negotiateCases() {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			for _, l := range tc.lines {
				extra = append(extra, "Sec-WebSocket-Extensions: "+l)
			}
			buf := []byte(upgradeReq("GET /ws HTTP/1.1", extra...))
			for _, cfg := range []struct {
				c    DeflateConfig
				want string
			}{{DeflateConfig{}, tc.want}, {ctxConfig, tc.ctx}} {
				var r Request
				if n, err := r.Parse(buf, 0); n == 0 || err != nil {
					t.Fatalf("Parse: %d, %v", n, err)
				}
				if err := r.CheckUpgrade(); err != nil {
					t.Fatalf("CheckUpgrade: %v (extension offers must never refuse a request)", err)
				}
				p, ok := r.NegotiateDeflate(cfg.c)
				got := ""
				if ok {
					got = string(p.AppendResponse(nil))
				}
				if got != cfg.want {
					t.Errorf("%+v: answer %q; want %q", cfg.c, got, cfg.want)
				}
				if !ok {
					continue
				}
				// A client that sent this offer accepts the answer.
				resp := respFor(rfcKey, "Sec-WebSocket-Extensions: "+got)
				var rr Response
				if _, err := rr.Parse([]byte(resp), 0); err != nil {
					t.Fatal(err)
				}
				offer := firstOffer(t, tc.lines)
				agreed, ok, err := rr.Deflate(&offer)
				if err != nil || !ok {
					t.Errorf("the client that offered %q refuses %q: %v", offer.AppendOffer(nil), got, err)
				}
				if agreed.ServerNoContextTakeover != p.ServerNoContextTakeover || agreed.ServerMaxWindowBits != p.ServerMaxWindowBits {
					t.Errorf("client reads %+v, server answered %+v", agreed, p)
				}
			}
		})
	}
}

// firstOffer returns the offer NegotiateDeflate should have picked.
func firstOffer(t *testing.T, lines []string) DeflateParams {
	for _, l := range lines {
		for list := []byte(l); len(list) > 0; {
			var e []byte
			e, list = nextElem(list)
			if p, res := parseDeflate(e, true); res == deflateOK {
				return p
			}
		}
	}
	t.Fatal("no acceptable offer")
	return DeflateParams{}
}

func respFor(key string, extra ...string) string {
	accept := AcceptKey([]byte(key))
	lines := append([]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: " + string(accept[:])}, extra...)
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

func TestAppendUpgradeResponseDeflate(t *testing.T) {
	p := DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 10}
	got := string(AppendUpgradeResponseDeflate([]byte("x"), []byte(rfcKey), []byte("chat"), p, []byte("X-Served-By: a\r\n")))
	want := "x" + "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10\r\n" +
		"X-Served-By: a\r\n" +
		"\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	// Without compression the 101 is what it always was.
	plain := string(AppendUpgradeResponse(nil, []byte(rfcKey), nil, nil))
	if plain != "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" {
		t.Fatalf("plain 101 changed: %q", plain)
	}
}

func TestDeflateParamsText(t *testing.T) {
	cases := []struct {
		p             DeflateParams
		offer, answer string
	}{
		{DeflateParams{}, "permessage-deflate", "permessage-deflate"},
		{DeflateParams{ClientMaxWindowBits: 15}, offerChromium, "permessage-deflate; client_max_window_bits=15"},
		{DeflateParams{ClientMaxWindowBits: 9}, "permessage-deflate; client_max_window_bits=9", "permessage-deflate; client_max_window_bits=9"},
		{DeflateParams{true, true, 8, 12}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=12",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=12"},
	}
	for _, c := range cases {
		if got := string(c.p.AppendOffer(nil)); got != c.offer {
			t.Errorf("%+v offer %q; want %q", c.p, got, c.offer)
		}
		if got := string(c.p.AppendResponse(nil)); got != c.answer {
			t.Errorf("%+v answer %q; want %q", c.p, got, c.answer)
		}
		// What is written parses back to the same parameters.
		if p, res := parseDeflate([]byte(c.offer), true); res != deflateOK || p != c.p {
			t.Errorf("offer %q parses to %+v, %v", c.offer, p, res)
		}
		if p, res := parseDeflate([]byte(c.answer), false); res != deflateOK || p != c.p {
			t.Errorf("answer %q parses to %+v, %v", c.answer, p, res)
		}
	}
	if got := string(AppendDeflateOffer(nil, DeflateParams{ClientMaxWindowBits: 15})); got != "Sec-WebSocket-Extensions: "+offerChromium+"\r\n" {
		t.Errorf("AppendDeflateOffer = %q", got)
	}
}

func TestDeflateParamsSendReceive(t *testing.T) {
	p := DeflateParams{ServerNoContextTakeover: true, ClientMaxWindowBits: 10}
	check := func(what string, gotCtx bool, gotBits int, wantCtx bool, wantBits int) {
		t.Helper()
		if gotCtx != wantCtx || gotBits != wantBits {
			t.Errorf("%s = %v, %d; want %v, %d", what, gotCtx, gotBits, wantCtx, wantBits)
		}
	}
	ctx, bits := p.Send(RoleServer)
	check("server Send", ctx, bits, false, 15)
	ctx, bits = p.Receive(RoleServer)
	check("server Receive", ctx, bits, true, 10)
	ctx, bits = p.Send(RoleClient)
	check("client Send", ctx, bits, true, 10)
	ctx, bits = p.Receive(RoleClient)
	check("client Receive", ctx, bits, false, 15)
}

func TestResponseDeflate(t *testing.T) {
	chromium := DeflateParams{ClientMaxWindowBits: 15}
	strict := DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 10}
	cases := []struct {
		name   string
		offer  *DeflateParams
		lines  []string
		want   DeflateParams
		wantOK bool
		err    error
	}{
		{name: "declined", offer: &chromium},
		{name: "nothing offered, nothing answered"},
		{name: "accepted plain", offer: &chromium, lines: []string{"permessage-deflate"}, wantOK: true},
		{name: "default answer", offer: &chromium, lines: []string{answerNoContext}, wantOK: true,
			want: DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}},
		{name: "client window", offer: &chromium, lines: []string{"permessage-deflate; client_max_window_bits=9"}, wantOK: true,
			want: DeflateParams{ClientMaxWindowBits: 9}},
		{name: "server window not offered but smaller", offer: &chromium, lines: []string{"permessage-deflate; server_max_window_bits=12"}, wantOK: true,
			want: DeflateParams{ServerMaxWindowBits: 12}},
		{name: "strict offer accepted with a smaller window", offer: &strict, lines: []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=9"},
			wantOK: true, want: DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 9}},
		{name: "split over lines with whitespace", offer: &chromium, lines: []string{"", " permessage-deflate ;client_max_window_bits=10 "}, wantOK: true,
			want: DeflateParams{ClientMaxWindowBits: 10}},
		{name: "extension not offered", lines: []string{"permessage-deflate"}, err: ErrResponseExtension},
		{name: "another extension", offer: &chromium, lines: []string{"x-webkit-deflate-frame"}, err: ErrResponseExtension},
		{name: "two offers accepted", offer: &chromium, lines: []string{"permessage-deflate, permessage-deflate"}, err: ErrResponseDeflate},
		{name: "two offers accepted over two lines", offer: &chromium, lines: []string{"permessage-deflate", "permessage-deflate"}, err: ErrResponseDeflate},
		{name: "client window without value", offer: &chromium, lines: []string{"permessage-deflate; client_max_window_bits"}, err: ErrResponseDeflate},
		{name: "client window not offered", offer: &strict, lines: []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10"}, err: ErrResponseDeflate},
		{name: "server window missing", offer: &strict, lines: []string{"permessage-deflate; server_no_context_takeover"}, err: ErrResponseDeflate},
		{name: "server window larger", offer: &strict, lines: []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=11"}, err: ErrResponseDeflate},
		{name: "server context takeover refused", offer: &strict, lines: []string{"permessage-deflate; server_max_window_bits=10"}, err: ErrResponseDeflate},
		{name: "unknown parameter", offer: &chromium, lines: []string{"permessage-deflate; foo"}, err: ErrResponseDeflate},
		{name: "repeated parameter", offer: &chromium, lines: []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, err: ErrResponseDeflate},
		{name: "bad value", offer: &chromium, lines: []string{"permessage-deflate; server_max_window_bits=16"}, err: ErrResponseDeflate},
		{name: "client window above the offered one", offer: &DeflateParams{ClientMaxWindowBits: 10}, lines: []string{"permessage-deflate; client_max_window_bits=11"}, err: ErrResponseDeflate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var extra []string
			for _, l := range c.lines {
				extra = append(extra, "Sec-WebSocket-Extensions: "+l)
			}
			var r Response
			if n, err := r.Parse([]byte(respFor(rfcKey, extra...)), 0); n == 0 || err != nil {
				t.Fatal(n, err)
			}
			if err := r.Check([]byte(rfcKey)); err != nil {
				t.Fatal(err)
			}
			got, ok, err := r.Deflate(c.offer)
			if err != c.err || ok != c.wantOK || got != c.want {
				t.Fatalf("Deflate = %+v, %v, %v; want %+v, %v, %v", got, ok, err, c.want, c.wantOK, c.err)
			}
		})
	}
	// The client's own promise stays in the agreement.
	var r Response
	promise := DeflateParams{ClientNoContextTakeover: true}
	_, _ = r.Parse([]byte(respFor(rfcKey, "Sec-WebSocket-Extensions: permessage-deflate")), 0)
	if got, ok, err := r.Deflate(&promise); !ok || err != nil || !got.ClientNoContextTakeover {
		t.Fatalf("Deflate = %+v, %v, %v; the offered client_no_context_takeover is lost", got, ok, err)
	}
}
