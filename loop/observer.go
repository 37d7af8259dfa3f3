package loop

import (
	"strconv"
)

// Hooks for a cluster of gateways (package cluster, wired by gateway).
// Nothing here runs per message: the observer hears of a topic or a user
// only when this process's interest in it begins or ends, and the
// readiness note is read by /readyz alone.

// Observer hears when this process's interest in a topic or a user begins
// and ends: TopicInterest(name, true) when the first subscription to name
// is routed (Conn.Subscribe, Accept.Topics) and (name, false) when the last
// is gone; UserInterest likewise for the first open connection of a user
// and the last closed one.
//
// The calls are made under the locks that order those changes (the topic
// registry's, a user shard's), on event loops and on the goroutines that
// call Subscribe: an Observer must return at once, take no lock but its
// own leaf locks, and never call back into the Server. It learns which
// names changed, not the order: it should read the current state back
// (HasTopic, HasUser) before acting, so that a burst of changes to one
// name ends in the right state whatever the order it sees them in.
type Observer interface {
	TopicInterest(name string, on bool)
	UserInterest(user string, on bool)
}

// clusterHooks is the Server's cluster state, set before Start.
type clusterHooks struct {
	idPrefix string // prepended to IDString
}

// SetObserver installs o. It must be called before Start.
func (s *Server) SetObserver(o Observer) {
	s.topics.observer = o
	s.users.observer = o
}

// SetIDPrefix sets what IDString puts before a connection's decimal ID
// (a cluster node's name and a separator). It must be called before
// Start; IDs themselves (Conn.ID) do not change.
func (s *Server) SetIDPrefix(p string) { s.cluster.idPrefix = p }

// FormatID returns id as IDString writes it.
func (s *Server) FormatID(id uint64) string {
	return s.cluster.idPrefix + strconv.FormatUint(id, 10)
}

// IDString returns the ID the connection will have, as Conn.IDString
// will write it.
func (p *PendingUpgrade) IDString() string { return p.c.loop.srv.FormatID(p.c.id) }

// HasTopic reports whether a subscription to name is routed to this
// process (see Observer).
func (s *Server) HasTopic(name string) bool {
	s.topics.mu.RLock()
	defer s.topics.mu.RUnlock()
	return s.topics.topics[name] != nil
}

// HasUser reports whether user has an open connection on this process.
func (s *Server) HasUser(user string) bool {
	sh := &s.users.shards[s.users.shard(user)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.users[user]) > 0
}

// CursorAfter returns the List cursor that resumes right after the
// connection with the given ID, as List's own next cursor would.
func CursorAfter(id uint64) string { return strconv.FormatUint(orderKey(id)+1, 10) }
