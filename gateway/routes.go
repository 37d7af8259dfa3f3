package gateway

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"sync/atomic"

	clientjs "github.com/wsgate/wsgate/client/js"
	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/loop"
)

// The plain HTTP routes of the WebSocket port, which the event loops
// answer from responses built here: /healthz, /readyz and, with
// Config.DemoPage, the demo page at /. The engine knows them only as a
// table (loop.Route).

//go:embed demo.html
var demoPage []byte

// Plain answers, built once. /wsgate.js is the JavaScript client
// (client/js, docs/resume.md), embedded at build time.
var (
	clientJSResp = codec.AppendHTTPResponse(nil, 200, "text/javascript; charset=utf-8", nil, clientjs.Source, true)
	healthResp   = textResponse(200, nil, "ok")
	readyResp    = textResponse(200, nil, "ready")
	drainingResp = textResponse(503, retryAfter5, "draining")
)

// textResponse builds a text/plain answer with extra headers; the body is
// text and a newline.
func textResponse(status int, h http.Header, text string) []byte {
	return codec.AppendHTTPResponse(nil, status, "text/plain; charset=utf-8", appendHeader(nil, h), []byte(text+"\n"), true)
}

// routes is the table the engine answers plain GETs from.
func (s *Server) routes() []loop.Route {
	rs := []loop.Route{
		{Path: "/healthz", Respond: func() []byte { return healthResp }},
		{Path: "/readyz", Respond: s.readyResponse},
		{Path: "/wsgate.js", Respond: func() []byte { return clientJSResp }},
	}
	if s.cfg.DemoPage {
		demo := codec.AppendHTTPResponse(nil, 200, "text/html; charset=utf-8", nil, renderDemo(s.cfg.Path), true)
		rs = append(rs, loop.Route{Path: "/", Respond: func() []byte { return demo }})
	}
	return rs
}

// renderDemo returns the demo page talking to path. json.Marshal escapes
// <, > and &, so the path cannot end the script element.
func renderDemo(path string) []byte {
	js, _ := json.Marshal(path)
	return bytes.Replace(demoPage, []byte("{{WS_PATH}}"), js, 1)
}

// readiness is what /readyz answers while the server is not draining: nil
// is the plain 200 "ready"; the cluster sets a note (cluster.go).
type readiness struct {
	note atomic.Pointer[[]byte]
}

// readyResponse is /readyz's answer, on an event loop.
func (s *Server) readyResponse() []byte {
	if s.srv.Draining() {
		return drainingResp
	}
	if p := s.ready.note.Load(); p != nil {
		return *p
	}
	return readyResp
}

// setReadiness sets what /readyz answers while the server is not
// draining: ready with note "" is the plain 200 "ready"; ready with a note
// is 200 with the note; not ready is 503 with the note. Meant for rare
// changes (the response is built here).
func (s *Server) setReadiness(ready bool, note string) {
	if ready && note == "" {
		s.ready.note.Store(nil)
		return
	}
	resp := textResponse(200, nil, note)
	if !ready {
		resp = textResponse(503, retryAfter5, note)
	}
	s.ready.note.Store(&resp)
}
