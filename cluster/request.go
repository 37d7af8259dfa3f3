package cluster

import (
	"bytes"
	"context"
	"errors"

	"github.com/nats-io/nats.go"
)

// Requests to one node, and to all of them. A request names a verb; the
// gateway registers a Route per verb (push to a connection, close it,
// subscribe it, describe it, list connections) and a later feature adds
// its own by adding a Route: the wire format (envelope.go) does not
// change. Answers carry an HTTP status and a body, so that the admin API
// can pass the owning node's answer through as it is.

// Route serves one verb of requests.
type Route struct {
	Verb byte   // the verb's code on the wire; one Route per code
	Name string // for logs and errors
	// Blocking routes may wait (for an event loop's answer, say): they run
	// on a goroutine of their own, at most 256 at once (more are answered
	// 503). Others run in order with the node's other messages and must
	// return at once.
	Blocking bool
	// Serve answers body with an HTTP status and a body. ctx ends at the
	// node's Timeout.
	Serve func(ctx context.Context, body []byte) (status int, reply []byte)
}

// Answer is one node's answer to a request.
type Answer struct {
	Node   string
	Status int
	Body   []byte
}

// errBody is the JSON error body of answers the node makes itself.
func errBody(msg string) []byte { return []byte(`{"error":"` + msg + `"}` + "\n") }

// busyBody is the body of the 503 a node answers when it serves
// maxBlocking blocking requests already.
var busyBody = errBody("node busy: too many requests in flight")

// Busy reports whether the node asked refused the request because it was
// serving as many blocking requests as it takes (Stats.Busy there): the
// request did nothing, and may be sent again shortly.
func (a Answer) Busy() bool { return a.Status == 503 && bytes.Equal(a.Body, busyBody) }

// serve runs the route of request m and answers it.
func (n *Node) serve(m *nats.Msg) {
	if len(m.Data) < 3 {
		n.undecodable(m, errShort)
		return
	}
	r := n.routes[m.Data[2]]
	body := m.Data[3:]
	answer := func(status int, reply []byte) {
		if m.Reply != "" {
			n.reply(m.Reply, appendAnswer(n.buf(), n.name, status, reply))
		}
	}
	switch {
	case r == nil:
		answer(501, errBody("this node does not know the request's verb (an older version?)"))
	case !r.Blocking:
		ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
		answer(r.Serve(ctx, body))
		cancel()
	default:
		select {
		case n.blocking <- struct{}{}:
		default:
			n.ctr.busy.Add(1)
			answer(503, busyBody)
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-n.blocking }()
			ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
			defer cancel()
			answer(r.Serve(ctx, body))
		}()
	}
}

// serveLocal runs a route for a request to the node itself.
func (n *Node) serveLocal(ctx context.Context, verb byte, body []byte) Answer {
	r := n.routes[verb]
	if r == nil {
		return Answer{Node: n.name, Status: 501, Body: errBody("no route for the verb")}
	}
	status, reply := r.Serve(ctx, body)
	return Answer{Node: n.name, Status: status, Body: reply}
}

func (n *Node) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.timeout)
}

// Request asks node (a node's name) to serve verb with body and returns
// its answer. A request to this node is served here, without NATS. It
// fails with ErrNoNode when no node of that name listens, ErrTimeout when
// it does not answer in time (ctx's deadline, or the node's Timeout), and
// ErrUnavailable without NATS.
func (n *Node) Request(ctx context.Context, node string, verb byte, body []byte) (Answer, error) {
	if node == n.name {
		ctx, cancel := n.withTimeout(ctx)
		defer cancel()
		return n.serveLocal(ctx, verb, body), nil
	}
	if !n.nc.IsConnected() {
		n.ctr.unavailable.Add(1)
		return Answer{}, ErrUnavailable
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	msg := append(append(make([]byte, 0, 3+len(body)), wireVersion, kindRequest, verb), body...)
	resp, err := n.nc.RequestWithContext(ctx, n.subj.node(node), msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Answer{}, ErrNoNode
	case errors.Is(err, nats.ErrMaxPayload):
		return Answer{}, ErrTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		n.ctr.timeouts.Add(1)
		return Answer{}, ErrTimeout
	case err != nil:
		if !n.nc.IsConnected() {
			n.ctr.unavailable.Add(1)
			return Answer{}, ErrUnavailable
		}
		return Answer{}, errors.New("cluster: request to " + node + ": " + err.Error())
	}
	n.ctr.published.Add(1)
	n.ctr.received.Add(1)
	if kind, err := kindOf(resp.Data); err != nil || kind != kindAnswer {
		n.undecodable(resp, errVersion)
		return Answer{}, errVersion
	}
	from, rest, err := parseFrom(resp.Data)
	if err != nil {
		n.undecodable(resp, err)
		return Answer{}, err
	}
	status, reply, err := parseAnswer(rest)
	if err != nil {
		n.undecodable(resp, err)
		return Answer{}, err
	}
	return Answer{Node: from, Status: status, Body: reply}, nil
}

// Reach says how many nodes a cluster-wide call reached.
type Reach struct {
	Nodes   int // nodes that answered, this one included
	Missing int // nodes in the registry that did not answer in time
}

// Scatter asks every node, this one included, to serve verb with body
// and returns their answers (this node's first), once every node in the
// registry has answered or the deadline has passed. Without NATS it
// returns this node's answer and ErrUnavailable.
func (n *Node) Scatter(ctx context.Context, verb byte, body []byte) ([]Answer, Reach, error) {
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	self := n.serveLocal(ctx, verb, body)
	others := n.registry.others()
	if !n.nc.IsConnected() {
		n.ctr.unavailable.Add(1)
		return []Answer{self}, Reach{Nodes: 1, Missing: len(others)}, ErrUnavailable
	}
	g := n.gathers.start(others)
	defer n.gathers.end(g)
	msg := append(append(n.buf(), wireVersion, kindRequest, verb), body...)
	if err := n.publish(n.subj.all, g.subject(n, 'f'), msg); err != nil {
		return []Answer{self}, Reach{Nodes: 1, Missing: len(others)}, err
	}
	n.wait(ctx, g)
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Answer{self}, g.answers...), Reach{Nodes: 1 + len(g.answered), Missing: len(g.waiting)}, nil
}

// GatherTopic delivers a message, numbered id (NextID), to the
// subscribers of topic on the other nodes and returns what they did, added
// to local, what this node's own delivery did (the caller's, with the same
// id): the nodes send their counts back, and a barrier after the message
// tells when every node in the registry has answered (gather.go). Without
// NATS the error is ErrUnavailable.
func (n *Node) GatherTopic(ctx context.Context, id MsgID, topic string, op byte, payload []byte, local Delivery) (Delivery, Reach, error) {
	return n.gatherData(ctx, id, kindTopic, topic, op, payload, local)
}

// GatherUser is GatherTopic for the connections of user.
func (n *Node) GatherUser(ctx context.Context, id MsgID, user string, op byte, payload []byte, local Delivery) (Delivery, Reach, error) {
	return n.gatherData(ctx, id, kindUser, user, op, payload, local)
}

func (n *Node) gatherData(ctx context.Context, id MsgID, kind byte, name string, op byte, payload []byte, total Delivery) (Delivery, Reach, error) {
	if len(name) > MaxNameBytes {
		return Delivery{}, Reach{}, ErrNameTooLong
	}
	others := n.registry.others()
	if !n.nc.IsConnected() {
		n.ctr.unavailable.Add(1)
		return total, Reach{Nodes: 1, Missing: len(others)}, ErrUnavailable
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	g := n.gathers.start(others)
	defer n.gathers.end(g)
	subject := n.subj.topic(name)
	if kind == kindUser {
		subject = n.subj.user(name)
	}
	if err := n.publish(subject, g.subject(n, 'p'), appendData(n.buf(), kind, op, id, name, payload)); err != nil {
		return total, Reach{Nodes: 1, Missing: len(others)}, err
	}
	// A node answers the barrier after the message (one connection to
	// NATS each way, one ordered queue on the node), so once every node
	// has answered it, every count is in.
	if err := n.publish(n.subj.all, g.subject(n, 'f'), append(n.buf(), wireVersion, kindBarrier)); err != nil {
		return total, Reach{Nodes: 1, Missing: len(others)}, err
	}
	n.wait(ctx, g)
	g.mu.Lock()
	defer g.mu.Unlock()
	total.add(g.total)
	return total, Reach{Nodes: 1 + len(g.answered), Missing: len(g.waiting)}, nil
}

// wait waits for g to complete or ctx to end.
func (n *Node) wait(ctx context.Context, g *gather) {
	select {
	case <-g.done:
	case <-ctx.Done():
		n.ctr.timeouts.Add(1)
	}
}
