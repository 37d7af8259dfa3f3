// Package origin matches a browser's Origin header (RFC 6454) against the
// patterns of Config.AllowedOrigins: the parser that validates them
// (package config) and the matcher that checks each upgrade (package
// gateway) are this one.
//
// The match runs on the event loop for every upgrade, so it compares bytes
// against patterns parsed once and never allocates.
package origin

import (
	"bytes"
	"errors"
	"strings"
)

// pattern is one entry of Config.AllowedOrigins.
type pattern struct {
	scheme string // "" matches any
	host   string // lower case; for a wildcard, the suffix with its dot
	port   string // "" matches any
	any    bool   // "*"
	suffix bool   // "*.example.com"
}

func parsePattern(s string) (pattern, error) {
	if s == "*" {
		return pattern{any: true}, nil
	}
	var p pattern
	rest := strings.ToLower(strings.TrimSpace(s))
	if i := strings.Index(rest, "://"); i >= 0 {
		p.scheme, rest = rest[:i], rest[i+3:]
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.HasPrefix(rest, "*.") {
		p.suffix = true
		rest = rest[1:] // keep the dot
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "]") {
		p.port, rest = rest[i+1:], rest[:i]
	}
	p.host = rest
	if p.host == "" || p.host == "." || strings.ContainsAny(p.host, "/*?# ") || (p.scheme == "" && strings.Contains(s, "://")) {
		return p, errors.New("bad origin pattern " + s)
	}
	return p, nil
}

// Matcher holds the parsed Config.AllowedOrigins.
type Matcher struct{ patterns []pattern }

// NewMatcher parses list; an empty list is nil, which allows every origin.
// The error names the first entry that is not a pattern.
func NewMatcher(list []string) (*Matcher, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := &Matcher{}
	for _, s := range list {
		p, err := parsePattern(s)
		if err != nil {
			return nil, err
		}
		m.patterns = append(m.patterns, p)
	}
	return m, nil
}

// Allow reports whether origin (the Origin header; nil if absent) may
// connect. A request without Origin is not from a browser and is let
// through; "null" (sandboxed frames, file:// pages) matches only "*". A
// nil Matcher allows everything.
func (m *Matcher) Allow(origin []byte) bool {
	if m == nil || len(origin) == 0 {
		return true
	}
	scheme, host, port, ok := splitOrigin(origin)
	for i := range m.patterns {
		p := &m.patterns[i]
		switch {
		case p.any:
			return true
		case !ok:
			continue
		case p.scheme != "" && !asciiEqualFold(scheme, p.scheme):
			continue
		case p.port != "" && string(port) != p.port:
			continue
		case p.suffix:
			if len(host) > len(p.host) && asciiEqualFold(host[len(host)-len(p.host):], p.host) {
				return true
			}
		case asciiEqualFold(host, p.host):
			return true
		}
	}
	return false
}

// splitOrigin splits "scheme://host[:port]" (RFC 6454 §7).
func splitOrigin(o []byte) (scheme, host, port []byte, ok bool) {
	i := bytes.Index(o, []byte("://"))
	if i <= 0 {
		return nil, nil, nil, false
	}
	scheme, host = o[:i], o[i+3:]
	if j := bytes.LastIndexByte(host, ':'); j >= 0 && bytes.IndexByte(host[j:], ']') < 0 {
		host, port = host[:j], host[j+1:]
	}
	return scheme, host, port, len(host) > 0
}

// asciiEqualFold compares b with lower-case s, ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
