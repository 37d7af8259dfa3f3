package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/loop"
)

// The gateway's member of a cluster (Config.NATS; docs/cluster.md): the
// cluster.Local that delivers what other nodes send, and the routes that
// serve their requests about this node's connections with the same
// operations, and the same answers, as the admin API's.

// Errors of cluster calls, for errors.Is.
var (
	// ErrClusterUnavailable: NATS is unreachable, so the call reached this
	// node's connections only (Publish, Broadcast, SendUser) or nothing
	// (SendTo a connection of another node).
	ErrClusterUnavailable = cluster.ErrUnavailable
	// ErrClusterTimeout: the node asked did not answer within
	// Config.ClusterTimeout.
	ErrClusterTimeout = cluster.ErrTimeout
	// ErrNoSuchNode: the node a connection ID names is not in the
	// cluster (it is gone, and its connections with it).
	ErrNoSuchNode = cluster.ErrNoNode
	// ErrClusterTooLarge: the message is over the NATS servers'
	// max_payload; it reached this node's connections only.
	ErrClusterTooLarge = cluster.ErrTooLarge
)

// NodeInfo describes a node of the cluster (Server.Nodes).
type NodeInfo = cluster.NodeInfo

// ClusterStats is a snapshot of the cluster counters (Server.ClusterStats).
type ClusterStats = cluster.Stats

// Verbs of the requests a node serves for the others (cluster.Route). A
// later feature adds its own; the numbers are the wire's and never change
// meaning.
const (
	verbSend        byte = 1 // [op][id: 8 bytes BE][payload] → 202 pushResult
	verbClose       byte = 2 // JSON closeRequest → 202
	verbSubscribe   byte = 3 // [id: 8 bytes][topic] → 204
	verbUnsubscribe byte = 4 // [id: 8 bytes][topic] → 204
	verbInfo        byte = 5 // [id: 8 bytes] → 200 connJSON
	verbList        byte = 6 // JSON listRequest → 200 listPage (scatter)
	// verbSession (7) is resume_cluster.go's.
)

type gatewayCluster struct {
	s    *Server
	node *cluster.Node
	mv   moves // sessions that move (moves.go)
	// started is node for onState, which NATS's client may call before
	// startCluster has set node.
	started atomic.Pointer[cluster.Node]
}

// startCluster joins the cluster if Config.NATS is set. It runs before the
// event loops start, so that every connection has its cluster ID and
// every interest change reaches the node.
func (s *Server) startCluster() error {
	if len(s.cfg.NATS) == 0 {
		return nil
	}
	id := s.cfg.NodeID
	if id == "" {
		id = cluster.DefaultNodeID()
	}
	g := &gatewayCluster{s: s}
	g.mv.init(s.srv.SessionMoveDropped)
	g.onState(false)
	node, err := cluster.Start(cluster.Config{
		URLs:        s.cfg.NATS,
		Name:        s.cfg.ClusterName,
		NodeID:      id,
		Options:     natsOptions(&s.cfg),
		Timeout:     s.cfg.ClusterTimeout,
		Heartbeat:   s.cfg.ClusterHeartbeat,
		Local:       g,
		Routes:      g.routes(),
		OnConnected: g.onState,
		Logger:      s.gate.log,
	})
	if err != nil {
		return fmt.Errorf("gateway: cluster: %w", err)
	}
	g.node = node
	g.started.Store(node)
	if node.Connected() {
		g.checkPayload(node)
	}
	s.srv.SetObserver(node)
	s.srv.SetIDPrefix(node.Name() + "-")
	s.srv.SetSessionPrefix(node.Name() + "-") // resume_cluster.go
	s.cluster = g
	return nil
}

// stopCluster leaves the cluster, once the connections are gone.
func (s *Server) stopCluster(ctx context.Context) {
	if s.cluster != nil {
		_ = s.cluster.node.Close(ctx)
	}
}

// onState sets /readyz by the NATS connection's state.
func (g *gatewayCluster) onState(connected bool) {
	if connected {
		g.s.setReadiness(true, "")
		g.checkPayload(g.started.Load())
		return
	}
	if g.s.cfg.ClusterReadyCheck {
		g.s.setReadiness(false, "cluster: NATS unreachable")
	} else {
		g.s.setReadiness(true, "ready; cluster: NATS unreachable, pushes to other nodes fail")
	}
}

// checkPayload warns when NATS cannot carry the largest message.
func (g *gatewayCluster) checkPayload(n *cluster.Node) {
	if n != nil && n.MaxPayload() > 0 && n.MaxPayload() < int64(g.s.cfg.MaxMessageSize)+1024 {
		g.s.gate.log.Warn("cluster: the NATS server's max_payload is under max_message: larger pushes reach this node only",
			"max_payload", n.MaxPayload(), "max_message", g.s.cfg.MaxMessageSize)
	}
}

// cluster.Local: what other nodes send, from the cluster's dispatch
// goroutine, numbered (moves.go).

func (g *gatewayCluster) DeliverTopic(id cluster.MsgID, topic string, op byte, payload []byte) cluster.Delivery {
	return g.remote(kindTopic, id, topic, op, payload)
}

func (g *gatewayCluster) DeliverUser(id cluster.MsgID, user string, op byte, payload []byte) cluster.Delivery {
	return g.remote(kindUser, id, user, op, payload)
}

func (g *gatewayCluster) DeliverAll(id cluster.MsgID, op byte, payload []byte) cluster.Delivery {
	return g.remote(kindAll, id, "", op, payload)
}

// HasTopic and HasUser ask moves first: a session that moved here leaves
// moves and enters the user index in one step (attach, under moves.mu),
// so asked in this order the answer cannot miss it in between.

func (g *gatewayCluster) HasTopic(topic string) bool {
	return g.mv.wants(kindTopic, topic) || g.s.srv.HasTopic(topic)
}

func (g *gatewayCluster) HasUser(user string) bool {
	return g.mv.wants(kindUser, user) || g.s.srv.HasUser(user)
}

// remote delivers a message of another node to this node's connections.
func (g *gatewayCluster) remote(kind byte, id cluster.MsgID, name string, op byte, payload []byte) cluster.Delivery {
	g.mv.mu.RLock()
	defer g.mv.mu.RUnlock()
	g.mv.saw(id)
	d, _ := g.deliver(kind, id, name, OpCode(op), payload)
	return d
}

// own delivers a message of this node's own to its connections and
// returns the number it goes to the other nodes with. Unless it fails,
// the caller hands the message to NATS and then calls sent(id) (a
// session moving here waits for it: moves.go).
func (g *gatewayCluster) own(kind byte, name string, op OpCode, data []byte) (cluster.MsgID, cluster.Delivery, error) {
	g.mv.mu.RLock()
	id := g.node.NextID()
	d, err := g.deliver(kind, id, name, op, data)
	if err == nil {
		g.mv.numbered(id.Seq)
	}
	g.mv.mu.RUnlock()
	if h := testHookOwnDelivered.Load(); h != nil && err == nil {
		(*h)()
	}
	return id, d, err
}

// sent records that the own message id went to NATS (or failed to).
func (g *gatewayCluster) sent(id cluster.MsgID) { g.mv.sent(id.Seq) }

// testHookOwnDelivered, set by tests only, runs between the delivery of
// an own message here and its publish (it widens the window a move to
// this node must cover).
var testHookOwnDelivered atomic.Pointer[func()]

// deliver hands a numbered message to this node's connections: kind
// kindUser the user's, kindTopic the topic's subscribers, kindAll every
// one; and holds it for the sessions on their way here. The caller holds
// g.mv.mu.RLock.
func (g *gatewayCluster) deliver(kind byte, id cluster.MsgID, name string, op OpCode, data []byte) (cluster.Delivery, error) {
	var d cluster.Delivery
	var err error
	switch kind {
	case kindUser:
		d, err = g.s.sendLocalUser(loop.MsgID(id), name, op, data)
	case kindTopic:
		var n int
		n, err = g.s.srv.PublishID(loop.MsgID(id), name, op, data)
		d = cluster.Delivery{Connections: n, Sent: n}
	default:
		var n int
		n, err = g.s.srv.BroadcastID(loop.MsgID(id), op, data)
		d = cluster.Delivery{Connections: n, Sent: n}
	}
	if err != nil {
		return cluster.Delivery{}, err
	}
	g.mv.hold(kind, name, id, op, data)
	return d, nil
}

func (g *gatewayCluster) Status() cluster.Status {
	return cluster.Status{Connections: g.s.srv.WSConns(), Draining: g.s.srv.Draining()}
}

// sendLocalUser sends to every connection of user on this node; id is
// the message's cluster number, zero without a cluster.
func (s *Server) sendLocalUser(id loop.MsgID, user string, op OpCode, data []byte) (cluster.Delivery, error) {
	conns := s.srv.UserConns(user, nil)
	d := cluster.Delivery{Connections: len(conns)}
	for _, c := range conns {
		switch err := c.SendID(id, op, data); {
		case err == nil:
			d.Sent++
		case errors.Is(err, ErrSlowConsumer):
			d.Slow++
		case errors.Is(err, ErrClosed):
			d.Closed++
		default:
			return d, err
		}
	}
	return d, nil
}

// checkPayload refuses what Conn.Send would refuse, before anything is
// sent anywhere.
func checkPayload(op OpCode, data []byte) error {
	switch {
	case op != OpText && op != OpBinary:
		return loop.ErrBadOpCode
	case op == OpText && !utf8.Valid(data):
		return loop.ErrInvalidUTF8
	}
	return nil
}

// Library API.

// SendUser sends a message to every connection of user, on every node of
// the cluster, and returns how many this node's were. Without a cluster
// it is a loop over UserConns. With one, it returns
// ErrClusterUnavailable when NATS is unreachable: this node's connections
// got the message, the other nodes' did not.
func (s *Server) SendUser(user string, op OpCode, data []byte) (int, error) {
	if err := checkPayload(op, data); err != nil {
		return 0, err
	}
	if s.cluster == nil {
		d, err := s.sendLocalUser(loop.MsgID{}, user, op, data)
		return d.Sent, err
	}
	id, d, err := s.cluster.own(kindUser, user, op, data)
	if err != nil {
		return d.Sent, err
	}
	err = s.cluster.node.PublishUser(id, user, byte(op), data)
	s.cluster.sent(id)
	return d.Sent, err
}

// SendTo sends a message to the connection with the given ID (as
// Conn.IDString writes it), on whichever node of the cluster holds it. It
// returns ErrClosed if there is no such connection, ErrSlowConsumer if
// its outbound queue is full, ErrClusterUnavailable, ErrClusterTimeout or
// ErrNoSuchNode when the node that holds it cannot be asked.
func (s *Server) SendTo(ctx context.Context, id string, op OpCode, data []byte) error {
	node, local, ok := s.parseConnID(id)
	if !ok {
		return ErrClosed
	}
	if node == "" {
		c := s.srv.Lookup(local)
		if c == nil {
			return ErrClosed
		}
		return c.Send(op, data)
	}
	if err := checkPayload(op, data); err != nil {
		return err
	}
	ans, err := s.cluster.node.Request(ctx, node, verbSend, appendSend(op, local, data))
	if err != nil {
		return err
	}
	switch ans.Status {
	case 202:
		return nil
	case 404:
		return ErrClosed
	case 429:
		return ErrSlowConsumer
	}
	return errors.New("gateway: the connection's node answered " + strconv.Itoa(ans.Status) + ": " + string(ans.Body))
}

// Nodes returns the nodes of the cluster, this one included (alone
// without a cluster), sorted by name.
func (s *Server) Nodes() []NodeInfo {
	if s.cluster != nil {
		return s.cluster.node.Nodes()
	}
	return []NodeInfo{{Connections: s.srv.WSConns(), Draining: s.srv.Draining(), Self: true}}
}

// ClusterStats returns the cluster's counters; the zero Stats without a
// cluster.
func (s *Server) ClusterStats() ClusterStats {
	if s.cluster == nil {
		return ClusterStats{}
	}
	return s.cluster.node.Stats()
}

// NodeName returns this node's name in the cluster, "" without one.
func (s *Server) NodeName() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.node.Name()
}

// parseConnID reads a connection ID: a decimal ID of this node, or a
// cluster ID, whose node is "" when it is this one.
func (s *Server) parseConnID(id string) (node string, local uint64, ok bool) {
	if v, err := strconv.ParseUint(id, 10, 64); err == nil {
		return "", v, true
	}
	if s.cluster == nil {
		return "", 0, false
	}
	node, local, err := cluster.SplitConnID(id)
	if err != nil {
		return "", 0, false
	}
	if node == s.cluster.node.Name() {
		node = ""
	}
	return node, local, true
}

// Kinds of message (moves.go).
const (
	kindUser  byte = 'u'
	kindTopic byte = 't'
	kindAll   byte = 'a'
)

// publish sends a message to this node's subscribers of topic (kind
// kindTopic) or every connection (kindAll), and in a cluster to the
// other nodes' too. It returns this node's count and the local error, or
// ErrClusterUnavailable when NATS is unreachable: this node's subscribers
// got it, the other nodes' did not.
func (s *Server) publish(kind byte, topic string, op OpCode, data []byte) (int, error) {
	if s.cluster == nil {
		if kind == kindAll {
			return s.srv.Broadcast(op, data)
		}
		return s.srv.Publish(topic, op, data)
	}
	id, d, err := s.cluster.own(kind, topic, op, data)
	if err != nil {
		return d.Connections, err
	}
	if kind == kindAll {
		err = s.cluster.node.Broadcast(id, byte(op), data)
	} else {
		err = s.cluster.node.PublishTopic(id, topic, byte(op), data)
	}
	s.cluster.sent(id)
	return d.Connections, err
}
