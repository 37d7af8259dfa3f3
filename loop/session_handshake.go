package loop

import (
	"bytes"
	"strconv"

	"github.com/wsgate/wsgate/codec"
)

// The handshake side of resumable sessions (docs/resume.md §1, §3.2, §5).

// Subprotocol entries of the envelope.
const (
	protoResume     = "wsgate.resume.v1"
	protoResumePlus = "wsgate.resume.v1+"
	protoSession    = "wsgate.session."
	protoReserved   = "wsgate."
)

// resumeOffer is what a request offered of the envelope.
type resumeOffer struct {
	bare    bool     // wsgate.resume.v1
	apps    []string // P of each wsgate.resume.v1+P
	token   string   // of wsgate.session.TOKEN.SEQ
	seq     int64
	resume  bool // a session entry was offered
	invalid bool // it was malformed
	// Set off the loop before a deferred upgrade is accepted
	// (session_cluster.go): the session another node handed over, or
	// that node did not answer.
	imported *SessionImport
	gone     bool
}

// isReservedProtocol reports whether p is one of the envelope's entries,
// which neither the application nor the backend sees as offered.
func isReservedProtocol(p []byte) bool {
	return len(p) >= len(protoReserved) && string(p[:len(protoReserved)]) == protoReserved
}

// visibleProtocols returns the offered subprotocols without the
// envelope's entries.
func visibleProtocols(all [][]byte) [][]byte {
	out := all[:0]
	for _, p := range all {
		if !isReservedProtocol(p) {
			out = append(out, p)
		}
	}
	return out
}

// noteOffer records, before the upgrade, what r offered of the envelope.
// A request that offered nothing of it costs a header scan.
func (l *eventLoop) noteOffer(c *Conn, r *codec.Request) {
	if !bytes.Contains(r.Header("Sec-WebSocket-Protocol"), []byte(protoReserved)) {
		return
	}
	var o resumeOffer
	found := false
	for _, p := range r.Protocols(nil) {
		switch {
		case string(p) == protoResume:
			o.bare, found = true, true
		case bytes.HasPrefix(p, []byte(protoResumePlus)) && len(p) > len(protoResumePlus):
			o.apps = append(o.apps, string(p[len(protoResumePlus):]))
			found = true
		case bytes.HasPrefix(p, []byte(protoSession)) && !o.resume:
			o.resume = true
			rest := p[len(protoSession):]
			dot := bytes.LastIndexByte(rest, '.')
			if dot <= 0 || !validToken(rest[:dot]) {
				o.invalid = true
				break
			}
			n, err := strconv.ParseInt(string(rest[dot+1:]), 10, 64)
			if err != nil || n < 0 || n > 1<<53-1 {
				o.invalid = true
				break
			}
			o.token, o.seq = string(rest[:dot]), n
		}
	}
	if found {
		c.x().offer = &o
	}
}

// envelopeAnswer returns the entry to answer for an offer, given the
// application's choice p, or "" if the connection stays plain.
func envelopeAnswer(o *resumeOffer, p string) string {
	if p == "" {
		if o.bare {
			return protoResume
		}
		return ""
	}
	for _, a := range o.apps {
		if a == p {
			return protoResumePlus + p
		}
	}
	return ""
}

// helloInfo is what HELLO says.
type helloInfo struct {
	status string // new, resumed, missed
	reason string
	seq    int64
	in     int64
	replay int64
}

// sessionUpgrade makes c an envelope connection: a new session, or the
// resumed one. It runs on c's loop just before the 101 is written and
// returns HELLO's content. Takeover and the end of a session that could
// not be resumed happen here too.
func (l *eventLoop) sessionUpgrade(c *Conn, o *resumeOffer) helloInfo {
	s := l.srv
	reg := &s.sessions
	if s.cfg.ResumeWindow > 0 && o.resume {
		why := missedUnknown
		var old *session
		switch {
		case o.invalid:
			why = missedInvalid
		default:
			var expired bool
			old, expired = reg.get(o.token)
			if old == nil && o.imported != nil {
				// Another node handed it over (session_cluster.go).
				h, ok, reason := l.importSession(c, o.imported, o.seq)
				if ok {
					return h
				}
				why = reason
			} else if old == nil && o.gone {
				why = missedGone
			}
			if old == nil && expired {
				why = missedExpired
			}
		}
		if old != nil {
			h, ok, reason := l.resume(c, old, o.seq)
			if ok {
				return h
			}
			why = reason
		}
		reg.stats.missed[why].Add(1)
		h := l.newSession(c)
		h.status, h.reason = "missed", missedNames[why]
		return h
	}
	return l.newSession(c)
}

// newSession starts a session anchored on c.
func (l *eventLoop) newSession(c *Conn) helloInfo {
	s := l.srv
	ss := &session{anchor: c, conn: c}
	if s.cfg.ResumeWindow > 0 {
		ss.token = newToken(s.sessionPrefix)
		s.sessions.add(ss)
	}
	ss.first = 1
	c.x().sess = ss
	return helloInfo{status: "new"}
}

// appendHello appends the HELLO frame for c's session to dst.
func (l *eventLoop) appendHello(dst []byte, ss *session, h helloInfo) []byte {
	cfg := &l.srv.cfg.Config
	var body [320]byte
	b := append(body[:0], 'H')
	b = append(b, "status="...)
	b = append(b, h.status...)
	if h.reason != "" {
		b = append(b, "&reason="...)
		b = append(b, h.reason...)
	}
	if ss.token != "" {
		b = append(b, "&session="...)
		b = append(b, ss.token...)
	}
	b = appendField(b, "seq", h.seq)
	b = appendField(b, "in", h.in)
	if h.status == "resumed" {
		b = appendField(b, "replay", h.replay)
	}
	b = appendField(b, "window", max(int64(cfg.ResumeWindow.Milliseconds()), 0))
	b = appendField(b, "buffer", int64(cfg.ResumeBuffer))
	b = appendField(b, "beat", max(int64(cfg.PingInterval.Milliseconds()), 0))
	b = appendField(b, "timeout", int64(cfg.PongTimeout.Milliseconds()))
	return codec.AppendFrame(dst, OpText, true, b)
}

func appendField(b []byte, name string, v int64) []byte {
	b = append(b, '&')
	b = append(b, name...)
	b = append(b, '=')
	return strconv.AppendInt(b, v, 10)
}

// Resumes reports whether the request presents a session this node holds
// for user, so that a policy may skip what a resume does not repeat (the
// backend's connect hook, docs/resume.md §5). A session another node
// holds (cluster) counts too. The upgrade makes the final decision: a
// session that ends meanwhile becomes a new one.
func (p *PendingUpgrade) Resumes(user string) bool {
	c := p.c
	s := c.loop.srv
	e := c.ext.Load()
	if e == nil || e.offer == nil || !e.offer.resume || e.offer.invalid || s.cfg.ResumeWindow <= 0 {
		return false
	}
	if ss, _ := s.sessions.get(e.offer.token); ss != nil {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.status != sessEnded && ss.anchor.User() == user
	}
	return p.SessionNode() != ""
}

// refuseEnvelope answers an admission refusal of a request that offered
// the envelope with 101 and at once a close 1013 "try again later;
// retry-after=N" (docs/resume.md §8, RFC 6455 §7.4.1): a browser's page
// sees a close code and reason, never a 503's status or its Retry-After.
// It reports false for a request that did not offer the envelope (it
// gets the 503). It costs one response and one frame, and no session.
func (l *eventLoop) refuseEnvelope(c *Conn, r *codec.Request, retryAfter []byte) bool {
	if !bytes.Contains(r.Header("Sec-WebSocket-Protocol"), []byte(protoResume)) {
		return false
	}
	var entry []byte
	for _, p := range r.Protocols(nil) {
		if string(p) == protoResume || bytes.HasPrefix(p, []byte(protoResumePlus)) && len(p) > len(protoResumePlus) {
			entry = p
			break
		}
	}
	if entry == nil {
		return false
	}
	secs := []byte("1")
	if v, ok := bytes.CutPrefix(retryAfter, []byte("Retry-After: ")); ok {
		secs = bytes.TrimRight(v, "\r\n")
	}
	l.stats.upgrades[upgradeIndex(503)].Add(1) // counted as the refusal it is
	l.scratch = codec.AppendUpgradeResponse(l.scratch[:0], r.Key(), entry, nil)
	l.scratch = codec.AppendClose(l.scratch, StatusTryAgainLater, "try again later; retry-after="+string(secs))
	l.write(c, l.scratch)
	return true
}
