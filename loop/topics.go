package loop

import (
	"errors"
	"sync"
)

// Topics. The topicRegistry knows, per topic, how many subscribers each loop
// has; each loop keeps the set of its own connections subscribed to a
// topic, loop-owned and lock-free. Publish encodes the frame once into a
// shared read-only buffer and hands it to each loop that has subscribers,
// one command per loop, and each loop writes it to its subscribers. So a
// publish to 100,000 subscribers costs one frame of memory and one inbox
// entry per loop.
//
// Lock order: topicRegistry.mu, then a loop's inbox mu. A loop never holds its
// inbox lock while it takes the topicRegistry's.

// ErrBadTopic is returned for an empty topic name.
var ErrBadTopic = errors.New("loop: empty topic name")

// ErrBadCursor is returned by List for a cursor it did not make.
var ErrBadCursor = errors.New("loop: bad list cursor")

type topicRegistry struct {
	mu       sync.RWMutex
	topics   map[string]*topic
	observer Observer // nil without a cluster; set before Start (observer.go)
}

// topic is a registry entry, guarded by topicRegistry.mu. loops routes
// publishes: Subscribe counts there at once, so that a Publish that starts
// after Subscribe returns reaches the connection's loop. subs counts the
// subscriptions the loops have actually made (duplicates and connections
// gone meanwhile are not).
type topic struct {
	name   string
	loops  []int32 // routed subscriptions per loop, by eventLoop.idx
	routes int     // sum of loops
	subs   int
}

// loopTopic is one loop's subscribers to a topic.
type loopTopic struct {
	t    *topic
	subs map[*Conn]struct{}
}

// acquire counts a subscription of a connection on loop idx to name,
// creating the topic if needed, and returns it.
func (r *topicRegistry) acquire(name string, idx int) *topic {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.topics[name]
	if t == nil {
		if r.topics == nil {
			r.topics = make(map[string]*topic)
		}
		t = &topic{name: name}
		r.topics[name] = t
		if r.observer != nil {
			r.observer.TopicInterest(name, true)
		}
	}
	for len(t.loops) <= idx {
		t.loops = append(t.loops, 0)
	}
	t.loops[idx]++
	t.routes++
	return t
}

// counted records that a loop made an acquired subscription.
func (r *topicRegistry) counted(t *topic) {
	r.mu.Lock()
	t.subs++
	r.mu.Unlock()
}

// release undoes one acquire, and one counted if made is set.
func (r *topicRegistry) release(t *topic, idx int, made bool) {
	r.mu.Lock()
	t.loops[idx]--
	t.routes--
	if made {
		t.subs--
	}
	if t.routes == 0 && r.topics[t.name] == t {
		delete(r.topics, t.name)
		if r.observer != nil {
			r.observer.TopicInterest(t.name, false)
		}
	}
	r.mu.Unlock()
}

// Subscribe adds the connection to topic name. It takes effect in order
// with the connection's other commands: a Publish that starts after
// Subscribe returns reaches it.
func (c *Conn) Subscribe(name string) error {
	if name == "" {
		return ErrBadTopic
	}
	if c.flags.has(fClosing) && !keptAnchor(c) { // a session lives on (session.go)
		return ErrClosed
	}
	s := c.loop.srv
	t := s.topics.acquire(name, c.loop.idx)
	if !c.loop.enqueue(command{kind: cmdSubscribe, c: c, topic: t}) {
		s.topics.release(t, c.loop.idx, false)
		return ErrServerClosed
	}
	return nil
}

// Unsubscribe removes the connection from topic name; it is a no-op if
// the connection is not subscribed.
func (c *Conn) Unsubscribe(name string) error {
	if c.flags.has(fClosing) && !keptAnchor(c) {
		return ErrClosed
	}
	if !c.loop.enqueue(command{kind: cmdUnsubscribe, c: c, name: name}) {
		return ErrServerClosed
	}
	return nil
}

// subscribe runs on the loop for cmdSubscribe.
func (l *eventLoop) subscribe(c *Conn, t *topic) {
	lt := l.topics[t]
	if (c.state != stateOpen && c.state != stateDeferred && !keptAnchor(c)) || (lt != nil && hasSub(lt, c)) {
		l.srv.topics.release(t, l.idx, false) // closed meanwhile, or a duplicate
		return
	}
	l.srv.topics.counted(t)
	if lt == nil {
		if l.topics == nil {
			l.topics = make(map[*topic]*loopTopic)
		}
		lt = &loopTopic{t: t, subs: make(map[*Conn]struct{})}
		l.topics[t] = lt
	}
	lt.subs[c] = struct{}{}
	e := c.x()
	e.subs = append(e.subs, lt)
}

func hasSub(lt *loopTopic, c *Conn) bool {
	_, ok := lt.subs[c]
	return ok
}

// unsubscribe runs on the loop for cmdUnsubscribe, and for every topic of
// a closing connection with name "".
func (l *eventLoop) unsubscribe(c *Conn, name string) {
	e := c.ext.Load()
	if e == nil {
		return
	}
	for i := 0; i < len(e.subs); i++ {
		lt := e.subs[i]
		if name != "" && lt.t.name != name {
			continue
		}
		delete(lt.subs, c)
		if len(lt.subs) == 0 {
			delete(l.topics, lt.t)
		}
		l.srv.topics.release(lt.t, l.idx, true)
		e.subs[i] = e.subs[len(e.subs)-1]
		e.subs[len(e.subs)-1] = nil
		e.subs = e.subs[:len(e.subs)-1]
		i--
		if name != "" {
			return
		}
	}
}

// Topics returns the names of the topics c is subscribed to. It must run
// on the loop; Conn.Topics asks the loop for it.
func (c *Conn) topicNames() []string {
	e := c.ext.Load()
	if e == nil {
		return nil
	}
	names := make([]string, len(e.subs))
	for i, lt := range e.subs {
		names[i] = lt.t.name
	}
	return names
}
