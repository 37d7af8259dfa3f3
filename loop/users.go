package loop

import (
	"hash/maphash"
	"sync"
)

// The user index maps a user (set at the handshake) to its connections,
// for pushes to a user. It is sharded so that opens and closes on many
// loops rarely meet on a lock.

const userShards = 64

type userIndex struct {
	seed     maphash.Seed
	observer Observer // nil without a cluster; set before Start (observer.go)
	shards   [userShards]struct {
		mu    sync.Mutex
		users map[string][]*Conn
		_     [40]byte
	}
}

func (u *userIndex) shard(user string) int {
	return int(maphash.String(u.seed, user) % userShards)
}

func (u *userIndex) add(c *Conn) {
	user := c.User()
	sh := &u.shards[u.shard(user)]
	sh.mu.Lock()
	if sh.users == nil {
		sh.users = make(map[string][]*Conn)
	}
	list := sh.users[user]
	if len(list) == 0 && u.observer != nil {
		u.observer.UserInterest(user, true)
	}
	sh.users[user] = append(list, c)
	sh.mu.Unlock()
}

func (u *userIndex) del(c *Conn) {
	user := c.User()
	sh := &u.shards[u.shard(user)]
	sh.mu.Lock()
	list := sh.users[user]
	for i, x := range list {
		if x == c {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(sh.users, user)
		if u.observer != nil {
			u.observer.UserInterest(user, false)
		}
	} else {
		sh.users[user] = list
	}
	sh.mu.Unlock()
}

// UserConns appends the open connections of user to dst, and the
// anchors of the user's suspended sessions (a Send to one is buffered for
// its resume: session.go).
func (s *Server) UserConns(user string, dst []*Conn) []*Conn {
	sh := &s.users.shards[s.users.shard(user)]
	sh.mu.Lock()
	for _, c := range sh.users[user] {
		if !c.flags.has(fClosing) || keptAnchor(c) {
			dst = append(dst, c)
		}
	}
	sh.mu.Unlock()
	return dst
}
