package gateway

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/origin"
)

// The gateway's admission policy, in the order it runs:
//
//  1. Origin (Config.AllowedOrigins), on the event loop: a byte compare.
//  2. The token (Config.JWTSecret, JWTKeyFile). HS256 alone costs a few
//     microseconds and, when no backend call follows, is checked on the
//     loop; a public-key signature (30-100 µs) or a backend call is not.
//  3. The backend's connect hook (Config.Backend), which sees the user the
//     token named.
//
// Steps 2 and 3 off the loop go through Request.Defer to the handshake
// pool, which never blocks the loop: a full pool answers 503 with
// Retry-After. The handshake timeout still applies meanwhile.

// Handshake refusals the policy counts (wsgate_handshake_refusals_total).
const (
	refuseOrigin = iota
	refuseTokenMissing
	refuseTokenInvalid
	refuseBackend   // the connect hook said no (401, 403, other 4xx)
	refuseBackendUp // the connect hook failed (timeout, network, 5xx)
	refuseOverload  // the handshake pool was full
	numRefusals
)

var refusalNames = [numRefusals]string{"origin", "token_missing", "token_invalid", "backend_refused", "backend_error", "overload"}

// The policy's refusals; RFC 6750 §3: a 401 says how to authenticate, and
// why the token failed; RFC 9110 §10.2.3: a 503 says when to retry.
var (
	errOrigin        = &HandshakeError{Status: 403, Reason: "origin not allowed"}
	errTokenMissing  = &HandshakeError{Status: 401, Reason: "missing token", Header: authMissing}
	errTokenInvalid  = &HandshakeError{Status: 401, Reason: "invalid token", Header: authInvalid}
	errBackendFailed = &HandshakeError{Status: 503, Reason: "backend unavailable", Header: retryAfter1}
	errOverloaded    = &HandshakeError{Status: 503, Reason: "overloaded", Header: retryAfter1}
)

// gate wraps the application's Handler. It logs and counts each
// connection's open and close; gateHook adds the admission policy.
type gate struct {
	app Handler
	log *slog.Logger

	closeCodes [numCloseCodes]atomic.Int64
}

// gateHook is gate with the admission policy as its HandshakeHook; NewServer
// uses it only when there is a policy to apply.
type gateHook struct {
	*gate
	appHook  HandshakeHook // the application's own, when there is no deferred step
	origins  *origin.Matcher
	jwt      *jwtVerifier
	backend  *backend
	pool     *ants.PoolWithFuncGeneric[*handshakeJob]
	refusals [numRefusals]atomic.Int64
	s        *Server // for the cluster's session fetch (resume_cluster.go)
}

// handshakeJob is an upgrade waiting for the handshake pool.
type handshakeJob struct {
	p     *PendingUpgrade
	token string
	src   uint8 // where the token was (tokenHeader, ...)
}

// OnHandshake implements HandshakeHook. It runs on the event loop.
func (g *gateHook) OnHandshake(r *Request) error {
	if !g.origins.Allow(r.Origin()) {
		g.refusals[refuseOrigin].Add(1)
		return errOrigin
	}
	// A session of another node is fetched off the loop
	// (resume_cluster.go).
	remote := g.s.cluster != nil && r.RemoteSession()
	if g.jwt == nil && g.backend == nil && !remote {
		if g.appHook != nil {
			return g.appHook.OnHandshake(r)
		}
		return nil
	}
	var token string
	var src uint8
	if g.jwt != nil {
		if token, src = requestToken(r); src == tokenNone {
			g.refusals[refuseTokenMissing].Add(1)
			return errTokenMissing
		}
		if g.jwt.cheap && g.backend == nil && !remote {
			user, err := g.jwt.verify(token)
			if err != nil || !validUser(user) {
				g.refusals[refuseTokenInvalid].Add(1)
				return errTokenInvalid
			}
			r.SetUser(user)
			if src == tokenProtocol {
				r.SelectProtocol(otherProtocol(r.Protocols()))
			}
			return nil
		}
	}
	job := &handshakeJob{p: r.Defer(), token: token, src: src}
	if err := g.pool.Invoke(job); err != nil {
		g.refusals[refuseOverload].Add(1)
		_ = job.p.Reject(errOverloaded)
	}
	return nil
}

// otherProtocol returns the first offered subprotocol that is not a
// token: a browser fails an upgrade that offered protocols and got none
// back, and the token entry must never be echoed.
func otherProtocol(protos [][]byte) string {
	for _, p := range protos {
		if !isTokenProtocol(string(p)) {
			return string(p)
		}
	}
	return ""
}

// validUser refuses users that would break a header, a log line or a URL.
func validUser(u string) bool {
	if u == "" || len(u) > 1024 {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] == 0x7f {
			return false
		}
	}
	return true
}

// decide runs a deferred upgrade on the handshake pool: the token's
// signature, then the backend's connect hook.
func (g *gateHook) decide(j *handshakeJob) {
	var acc Accept
	if g.jwt != nil {
		user, err := g.jwt.verify(j.token)
		if err != nil || !validUser(user) {
			g.refusals[refuseTokenInvalid].Add(1)
			_ = j.p.Reject(errTokenInvalid)
			return
		}
		acc.User = user
	}
	protos := offeredProtocols(j.p)
	if j.src == tokenProtocol && len(protos) > 0 {
		acc.Subprotocol = protos[0]
	}
	if c := g.s.cluster; c != nil && c.fetchSession(j.p, acc.User) {
		_ = j.p.Accept(acc) // a resume: no connect hook
		return
	}
	if g.backend != nil && j.p.Resumes(acc.User) {
		// A resume runs no connect hook (docs/resume.md §5): the
		// session keeps what the first one answered.
		_ = j.p.Accept(acc)
		return
	}
	if g.backend != nil {
		res, err := g.backend.connect(j.p, acc.User, protos)
		switch he, ok := errors.AsType[*HandshakeError](err); {
		case ok:
			g.refusals[refuseBackend].Add(1)
			_ = j.p.Reject(he)
			return
		case err != nil:
			g.backend.warn("connect hook failed", err)
			if !g.backend.failOpen {
				g.refusals[refuseBackendUp].Add(1)
				_ = j.p.Reject(errBackendFailed)
				return
			}
		default:
			res.apply(&acc)
		}
	}
	_ = j.p.Accept(acc)
}

// offeredProtocols returns the offered subprotocols, token entries left out.
func offeredProtocols(p *PendingUpgrade) []string {
	var out []string
	for _, s := range p.Protocols() {
		if !isTokenProtocol(s) {
			out = append(out, s)
		}
	}
	return out
}

// Close codes counted by OnClose: 1000-1015 each, then the ranges RFC 6455
// §7.4.2 leaves to libraries (3000-3999) and applications (4000-4999).
const (
	numCloseCodes = 16 + 3
	closeCode3xxx = 16
	closeCode4xxx = 17
	closeCodeElse = 18
)

func closeCodeIndex(code StatusCode) int {
	switch {
	case code >= 1000 && code <= 1015:
		return int(code - 1000)
	case code >= 3000 && code <= 3999:
		return closeCode3xxx
	case code >= 4000 && code <= 4999:
		return closeCode4xxx
	}
	return closeCodeElse
}

func closeCodeLabel(i int) string {
	switch i {
	case closeCode3xxx:
		return "3xxx"
	case closeCode4xxx:
		return "4xxx"
	case closeCodeElse:
		return "other"
	}
	return strconv.Itoa(1000 + i)
}

// OnOpen implements Handler.
func (g *gate) OnOpen(c *Conn) {
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("connect", "conn", c.ID(), "remote", c.RemoteAddr().String(), "user", c.User(),
			"subprotocol", c.Subprotocol())
	}
	g.app.OnOpen(c)
}

// OnMessage implements Handler.
func (g *gate) OnMessage(c *Conn, op OpCode, data []byte) { g.app.OnMessage(c, op, data) }

// LoopSafe implements LoopSafe: the gate adds nothing that blocks but its
// debug lines (a write to the log), so it runs on the loops when the
// application does and debug logging is off.
func (g *gate) LoopSafe() bool {
	ls, ok := g.app.(LoopSafe)
	return ok && ls.LoopSafe() && !g.log.Enabled(context.Background(), slog.LevelDebug)
}

// OnResume implements loop.ResumeHandler: the application's, if it has
// one.
func (g *gate) OnResume(c *Conn) {
	if h, ok := g.app.(ResumeHandler); ok {
		h.OnResume(c)
	}
}

// OnClose implements Handler.
func (g *gate) OnClose(c *Conn, err error) {
	code := codec.CloseCode(err)
	g.closeCodes[closeCodeIndex(code)].Add(1)
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		info, _ := c.FinalInfo()
		reason := ""
		if ce, ok := errors.AsType[*CloseError](err); ok {
			reason = ce.Reason
		}
		g.log.Debug("disconnect", "conn", c.ID(), "user", c.User(), "code", int(code), "reason", reason,
			"duration", time.Since(c.ConnectedAt()).Round(time.Millisecond),
			"messages_in", info.MessagesIn, "messages_out", info.MessagesOut)
	}
	g.app.OnClose(c, err)
}
