package cluster

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// The subject layout. Every subject of a cluster starts with
// "wsgate.<cluster>." so that one NATS account can hold several clusters
// and permissions can be granted on "wsgate.<cluster>.>":
//
//	wsgate.<c>.t.<token>         a topic's messages: nodes with a subscriber listen
//	wsgate.<c>.u.<token>         a user's messages: nodes with a connection listen
//	wsgate.<c>.all               every node: broadcasts, barriers, scatter requests
//	wsgate.<c>.hb                every node: heartbeats
//	wsgate.<c>.n.<node>          one node: requests about its connections
//	wsgate.<c>.r.<node>.>        one node's replies (request inboxes, gathers)
//
// <token> is a topic or user name made safe for a subject token (Token).

// maxPlain bounds a name used as its own token; maxEncoded a name that is
// base64-encoded whole. Longer names are hashed.
const (
	maxPlain   = 64
	maxEncoded = 180
)

// Token returns the subject token of a topic or user name. NATS subject
// tokens may not contain '.', whitespace or be the wildcards '*' and '>',
// while names may hold any bytes and be long; so:
//
//   - a name of 1 to 64 bytes of A-Z a-z 0-9 '_' '-' is its own token
//     ("news", "user-42"), readable in `nats sub`;
//   - any other name of up to 180 bytes is "~b" and its base64url (RFC 4648
//     §5, no padding): "room.1" is "~bcm9vbS4x";
//   - a longer name is "~h" and the base64url of its SHA-256.
//
// Plain tokens never start with '~', and the second byte tells the other
// two forms apart, so distinct names of the first two forms have distinct
// tokens. Two long names share a token only if their SHA-256 collide, and
// even then nothing goes astray: every message carries its full name and
// is delivered by name (envelope.go).
func Token(name string) string {
	if len(name) >= 1 && len(name) <= maxPlain && plain(name) {
		return name
	}
	if len(name) <= maxEncoded {
		return "~b" + base64.RawURLEncoding.EncodeToString([]byte(name))
	}
	sum := sha256.Sum256([]byte(name))
	return "~h" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// plain reports whether s is made of the bytes of a plain token (and of
// a valid cluster or node name).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// subjects holds a cluster's fixed subjects, built once.
type subjects struct {
	prefix  string // "wsgate.<c>."
	all     string
	hb      string
	self    string // this node's request subject
	replies string // this node's reply prefix, without the trailing "."
}

func newSubjects(cluster, node string) subjects {
	p := "wsgate." + cluster + "."
	return subjects{
		prefix:  p,
		all:     p + "all",
		hb:      p + "hb",
		self:    p + "n." + node,
		replies: p + "r." + node,
	}
}

func (s *subjects) topic(name string) string { return s.prefix + "t." + Token(name) }
func (s *subjects) user(name string) string  { return s.prefix + "u." + Token(name) }
func (s *subjects) node(name string) string  { return s.prefix + "n." + name }

// lastToken returns what follows the last '.' of subject.
func lastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}
