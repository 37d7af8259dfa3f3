package client

import (
	"strconv"
	"strings"
)

// The resume envelope, docs/resume.md.
const (
	// ResumeProtocol is the subprotocol entry that opts in (§1).
	ResumeProtocol = "wsgate.resume.v1"
	// SessionProtocol prefixes the entry that presents a session (§5.1).
	SessionProtocol = "wsgate.session."
)

// Type bytes (§2).
const (
	typeData  = 'D'
	typeHello = 'H'
	typeBeat  = 'B'
	typeAck   = 'A'
)

// dataPrefix is written before every DATA payload; read-only.
var dataPrefix = []byte{typeData}

// offerProtocols is the Sec-WebSocket-Protocol offer of §1 and §5.1.
func offerProtocols(app []string, resume bool, session string, seq uint64) []string {
	out := make([]string, 0, 2*len(app)+2)
	if resume {
		for _, p := range app {
			if !isBearer(p) {
				out = append(out, ResumeProtocol+"+"+p)
			}
		}
		out = append(out, ResumeProtocol)
	}
	out = append(out, app...)
	if resume && session != "" {
		out = append(out, SessionProtocol+session+"."+strconv.FormatUint(seq, 10))
	}
	return out
}

func isBearer(p string) bool { return len(p) > 7 && strings.EqualFold(p[:7], "bearer.") }

// parseSelected splits the server's subprotocol into its envelope and
// application parts.
func parseSelected(sel string) (envelope bool, app string) {
	if sel == ResumeProtocol {
		return true, ""
	}
	if rest, ok := strings.CutPrefix(sel, ResumeProtocol+"+"); ok {
		return true, rest
	}
	return false, sel
}

// field returns the value of name in a control message body
// ("a=1&b=2"); the first occurrence wins (§2).
func field(body, name string) (string, bool) {
	for body != "" {
		var kv string
		kv, body, _ = strings.Cut(body, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// countField reads a decimal count; absent gives dflt, malformed ok=false.
// Counts are at most 2^53-1 so that JavaScript holds them exactly.
func countField(body, name string, dflt uint64) (uint64, bool) {
	v, present := field(body, name)
	if !present {
		return dflt, true
	}
	if v == "" || len(v) > 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > 1<<53-1 {
		return 0, false
	}
	return n, true
}

// validToken reports whether s is a session token: [A-Za-z0-9_-]{0,128}.
func validToken(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// hello is a parsed HELLO (§3.2).
type hello struct {
	status, reason, session string
	seq, in, replay         uint64
	window, buffer          uint64
	beat, timeout           uint64
}

func parseHello(body string) (hello, bool) {
	var h hello
	h.status, _ = field(body, "status")
	h.reason, _ = field(body, "reason")
	h.session, _ = field(body, "session")
	ok := true
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{"seq", &h.seq}, {"in", &h.in}, {"replay", &h.replay}, {"window", &h.window}, {"buffer", &h.buffer}, {"beat", &h.beat}, {"timeout", &h.timeout}} {
		v, good := countField(body, f.name, 0)
		*f.dst = v
		ok = ok && good
	}
	_, hasSeq := field(body, "seq")
	_, hasIn := field(body, "in")
	switch h.status {
	case "new", "missed", "resumed":
	default:
		ok = false
	}
	return h, ok && hasSeq && hasIn && validToken(h.session)
}

// appendAck appends an ACK of seq (§7).
func appendAck(dst []byte, seq uint64) []byte {
	dst = append(dst, typeAck, 's', 'e', 'q', '=')
	return strconv.AppendUint(dst, seq, 10)
}
