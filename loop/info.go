package loop

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// ConnInfo describes a connection for operators (the admin API).
type ConnInfo struct {
	ID          uint64
	Remote      netip.AddrPort
	User        string
	Subprotocol string
	ConnectedAt time.Time
	// Filled by Conn.Info only (they need a round trip to the loop):
	Topics      []string
	MessagesIn  int64
	MessagesOut int64
	BytesIn     int64 // message payload bytes received
	BytesOut    int64 // frame bytes written
}

func (c *Conn) basicInfo() ConnInfo {
	return ConnInfo{ID: c.id, Remote: c.remoteAddr(), User: c.User(), Subprotocol: c.Subprotocol(), ConnectedAt: c.ConnectedAt()}
}

// runOnLoop runs fn on c's loop and waits for it, or for ctx. When ctx
// ends first, fn may still run later: the caller must not read what fn
// writes unless runOnLoop returned nil.
func (l *eventLoop) runOnLoop(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	if !l.enqueue(command{kind: cmdFunc, fn: func() { fn(); close(done) }}) {
		return ErrServerClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Info returns the connection's details, its topics and traffic counts.
func (c *Conn) Info(ctx context.Context) (ConnInfo, error) {
	// The loop fills r, which this goroutine reads only once the loop is
	// done with it: if ctx ends first, the loop still holds the call.
	r := new(struct {
		info ConnInfo
		open bool
	})
	err := c.loop.runOnLoop(ctx, func() {
		if c.state != stateOpen {
			return
		}
		r.open = true
		r.info = c.basicInfo()
		r.info.Topics = c.topicNames()
		r.info.MessagesIn, r.info.MessagesOut, r.info.BytesIn, r.info.BytesOut = c.counts()
	})
	if err != nil {
		return ConnInfo{}, err
	}
	if !r.open {
		return ConnInfo{}, ErrClosed
	}
	return r.info, nil
}

// FinalInfo returns the connection's details and final traffic counts
// once it is gone, and false before. The handler's OnClose always sees
// them final (the loop stops counting before it delivers the close), so a
// disconnect hook can report them even while the server shuts down and
// Info can no longer ask the loop. Topics is empty: they went with the
// connection.
func (c *Conn) FinalInfo() (ConnInfo, bool) {
	if !c.flags.has(fGone) {
		return ConnInfo{}, false
	}
	info := c.basicInfo()
	info.MessagesIn, info.MessagesOut, info.BytesIn, info.BytesOut = c.counts()
	return info, true
}

// ListOptions selects connections for List.
type ListOptions struct {
	User   string // only this user's connections, if set
	Topic  string // only subscribers of this topic, if set
	Limit  int    // at most this many; 0 means 100
	Cursor string // from a previous List's next cursor; "" starts over
}

// orderKey orders connections for pagination: loop, then slot.
func orderKey(id uint64) uint64 { return id & (1<<(slotBits+loopBits) - 1) }

// List returns a page of open connections (ID, address, user, subprotocol,
// connection time) in a stable order, and the cursor of the next page, ""
// at the end. Connections that come or go meanwhile may or may not appear.
func (s *Server) List(ctx context.Context, o ListOptions) ([]ConnInfo, string, error) {
	limit := o.Limit
	if limit <= 0 {
		limit = 100
	}
	var from uint64
	if o.Cursor != "" {
		v, err := strconv.ParseUint(o.Cursor, 10, 64)
		if err != nil {
			return nil, "", ErrBadCursor
		}
		from = v
	}
	var conns []*Conn
	switch {
	case o.User != "":
		conns = s.UserConns(o.User, nil)
	case o.Topic != "":
		for _, l := range s.eventLoops() {
			err := l.runOnLoop(ctx, func() {
				t := s.topicOf(o.Topic)
				if lt := l.topics[t]; t != nil && lt != nil {
					for c := range lt.subs {
						conns = append(conns, c)
					}
				}
			})
			if err != nil {
				return nil, "", err
			}
		}
	default:
		// Walk the tables from the cursor: (loop, slot).
		for idx := int(from >> slotBits); idx < len(s.eventLoops()) && len(conns) <= limit; idx++ {
			start := uint32(0)
			if idx == int(from>>slotBits) {
				start = uint32(from)
			}
			s.forEachConn(idx, start, func(c *Conn) bool {
				conns = append(conns, c)
				return len(conns) <= limit
			})
		}
	}
	conns = slices.DeleteFunc(conns, func(c *Conn) bool {
		if o.User != "" && o.Topic != "" && !slices.Contains(c.topicsSnapshot(ctx), o.Topic) {
			return true
		}
		// A session is listed once, by its anchor, also while it is
		// suspended; its later transports are not (session.go).
		if c.logical() != c {
			return true
		}
		return orderKey(c.id) < from || c.flags.has(fClosing) && !keptAnchor(c)
	})
	slices.SortFunc(conns, func(a, b *Conn) int {
		return cmpUint(orderKey(a.id), orderKey(b.id))
	})
	next := ""
	if len(conns) > limit {
		conns = conns[:limit]
		next = strconv.FormatUint(orderKey(conns[limit-1].id)+1, 10)
	}
	out := make([]ConnInfo, len(conns))
	for i, c := range conns {
		out[i] = c.basicInfo()
	}
	return out, next, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// topicsSnapshot returns c's topics, asking its loop.
func (c *Conn) topicsSnapshot(ctx context.Context) []string {
	info, _ := c.Info(ctx)
	return info.Topics
}

// topicOf returns the registry entry of name, or nil.
func (s *Server) topicOf(name string) *topic {
	s.topics.mu.RLock()
	defer s.topics.mu.RUnlock()
	return s.topics.topics[name]
}
