package cluster

import (
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Gathers: a call that needs every node's answer. Core NATS does not say
// how many subscribers a message reached, so the asking node waits for
// the nodes of its registry: each answers on the gather's reply subjects,
//
//	wsgate.<c>.r.<node>.g.<id>.p   counts from the nodes that had the push
//	wsgate.<c>.r.<node>.g.<id>.f   one ack (or answer) from every node
//
// A node sends the counts of a push before its ack of the barrier that
// followed it (it handles both in order, on one connection), and NATS
// keeps the order of one connection's messages to one subscription, so
// when the last node of the registry has acked, every count is in. A
// NATS "no responders" status on .f means nobody else listens at all: the
// gather ends at once.

type gather struct {
	id   uint64
	done chan struct{}

	mu       sync.Mutex
	waiting  map[string]struct{} // registry nodes yet to ack
	answered map[string]struct{} // nodes that acked or answered
	total    Delivery
	answers  []Answer
	finished bool
}

// subject returns the gather's reply subject of the given suffix.
func (g *gather) subject(n *Node, suffix byte) string {
	return n.subj.replies + ".g." + strconv.FormatUint(g.id, 10) + "." + string(suffix)
}

func (g *gather) finish() {
	if !g.finished {
		g.finished = true
		close(g.done)
	}
}

type gathers struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*gather
}

func (gs *gathers) init() { gs.m = make(map[uint64]*gather) }

// start registers a gather that waits for the nodes named.
func (gs *gathers) start(nodes []string) *gather {
	g := &gather{done: make(chan struct{}), waiting: make(map[string]struct{}, len(nodes)), answered: make(map[string]struct{})}
	for _, name := range nodes {
		g.waiting[name] = struct{}{}
	}
	if len(nodes) == 0 {
		g.finish()
	}
	gs.mu.Lock()
	gs.next++
	g.id = gs.next
	gs.m[g.id] = g
	gs.mu.Unlock()
	return g
}

func (gs *gathers) end(g *gather) {
	gs.mu.Lock()
	delete(gs.m, g.id)
	gs.mu.Unlock()
}

func (gs *gathers) closeAll() {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	for _, g := range gs.m {
		g.mu.Lock()
		g.finish()
		g.mu.Unlock()
	}
}

// onReply handles a message on the node's gather subjects (a NATS
// subscription of its own, so its messages keep their order).
func (gs *gathers) onReply(m *nats.Msg) {
	// ...g.<id>.<suffix>
	rest, suffix, ok := cutLast(m.Subject)
	if !ok || (suffix != "p" && suffix != "f") {
		return
	}
	id, err := strconv.ParseUint(lastToken(rest), 10, 64)
	if err != nil {
		return
	}
	gs.mu.Lock()
	g := gs.m[id]
	gs.mu.Unlock()
	if g == nil {
		return // late: the gather is over
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		if suffix == "f" {
			// Nobody else listens to the barrier: the nodes the
			// registry still waits for are gone.
			g.finish()
		}
		return
	}
	kind, err := kindOf(m.Data)
	if err != nil {
		return
	}
	from, body, err := parseFrom(m.Data)
	if err != nil {
		return
	}
	switch kind {
	case kindDelivered:
		d, err := parseCounts(body)
		if err != nil {
			return
		}
		g.total.add(d)
		return // the ack follows
	case kindAnswer:
		status, reply, err := parseAnswer(body)
		if err != nil {
			return
		}
		g.answers = append(g.answers, Answer{Node: from, Status: status, Body: reply})
	case kindAck:
	default:
		return
	}
	g.answered[from] = struct{}{}
	delete(g.waiting, from)
	if len(g.waiting) == 0 {
		g.finish()
	}
}

func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
