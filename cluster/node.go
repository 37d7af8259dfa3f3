package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Errors of cluster calls.
var (
	// ErrUnavailable is returned when a call needs NATS and the node is
	// not connected to it. Nothing was sent to another node.
	ErrUnavailable = errors.New("cluster: not connected to NATS")
	// ErrTimeout is returned when the node asked did not answer in time.
	ErrTimeout = errors.New("cluster: the node did not answer in time")
	// ErrNoNode is returned for a request to a node that is not in the
	// cluster (gone, or never was): NATS had nobody listening.
	ErrNoNode = errors.New("cluster: no such node")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("cluster: node closed")
	// ErrTooLarge is returned for a message over the NATS servers'
	// max_payload (set it above the gateway's largest message).
	ErrTooLarge = errors.New("cluster: message over the NATS server's max_payload")
)

// Defaults of Config.
const (
	DefaultName          = "default"
	DefaultTimeout       = 2 * time.Second
	DefaultHeartbeat     = time.Second
	DefaultReconnectWait = 500 * time.Millisecond
	DefaultQueueLen      = 1 << 16
	// DefaultPingInterval and DefaultMaxPingsOut: a NATS server that is
	// up but answers no PING for about two minutes is given up on. A
	// busy one is not: at a million connections a starved nats-server
	// took 20-60 s to read a node's batch of subscriptions, and each
	// reconnect sends every subscription again.
	DefaultPingInterval = 20 * time.Second
	DefaultMaxPingsOut  = 5
	// DefaultDeadPeer: a NATS server that vanished (no reset, no ACK) is
	// noticed by TCP itself after about this long: keepalive probes a
	// third of it apart, and TCP_USER_TIMEOUT for bytes sent and not
	// acknowledged.
	DefaultDeadPeer = 15 * time.Second
	// maxBlocking bounds the blocking requests a node serves at once.
	maxBlocking = 256
	// expiryBeats is how many heartbeats a node may miss before the others
	// forget it.
	expiryBeats = 3
)

// Delivery counts what a node did with a push to a user or a topic.
type Delivery struct {
	Connections int // connections (subscribers, for a topic) it was for
	Sent        int // handed to their outbound queues
	Slow        int // refused by a full outbound queue
	Closed      int // closed meanwhile
}

func (d *Delivery) add(o Delivery) {
	d.Connections += o.Connections
	d.Sent += o.Sent
	d.Slow += o.Slow
	d.Closed += o.Closed
}

// Status is what a node's heartbeats tell the others about it.
type Status struct {
	Connections int64
	Draining    bool
}

// Local is the node's own gateway: it delivers what other nodes send and
// answers what the interest reconciler asks. The Deliver methods are
// called from one goroutine, in the order messages arrived (so in Seq
// order for each origin), and must not block (they hand frames to event
// loops). id is the message's number.
type Local interface {
	DeliverTopic(id MsgID, topic string, op byte, payload []byte) Delivery
	DeliverUser(id MsgID, user string, op byte, payload []byte) Delivery
	DeliverAll(id MsgID, op byte, payload []byte) Delivery
	HasTopic(topic string) bool
	HasUser(user string) bool
	Status() Status
}

// Config configures a Node. URLs, Local and NodeID are required.
type Config struct {
	URLs    []string      // NATS servers
	Name    string        // the cluster's name; DefaultName if empty
	NodeID  string        // this node's ID (see name.go); its name adds a boot token
	Options []nats.Option // credentials, TLS: applied after the node's own
	// Timeout bounds a request to another node and a gather. If zero,
	// DefaultTimeout.
	Timeout time.Duration
	// Heartbeat is how often the node announces itself; others forget a
	// node they have not heard from for three. If zero, DefaultHeartbeat.
	Heartbeat time.Duration
	// ReconnectWait is the pause between attempts to reach NATS. If zero,
	// DefaultReconnectWait.
	ReconnectWait time.Duration
	// PingInterval and MaxPingsOut: NATS's client PINGs the server every
	// PingInterval and gives the connection up (and reconnects) when
	// more than MaxPingsOut go unanswered. If zero, DefaultPingInterval
	// and DefaultMaxPingsOut.
	PingInterval time.Duration
	MaxPingsOut  int
	// DeadPeer bounds how long a vanished NATS server goes unnoticed:
	// TCP keepalive and TCP_USER_TIMEOUT on the connection (Linux). If
	// zero, DefaultDeadPeer; negative leaves the system's settings.
	DeadPeer time.Duration
	// QueueLen bounds the messages received and not yet handled; over it
	// NATS's client drops them (counted in Stats.SlowConsumer). If zero,
	// DefaultQueueLen.
	QueueLen int
	Local    Local
	Routes   []Route
	// OnConnected, if set, hears of each change of the NATS connection's
	// state, on a goroutine of NATS's client.
	OnConnected func(connected bool)
	Logger      *slog.Logger
	Now         func() time.Time // the clock; time.Now if nil
}

// Node is this process's member of the cluster. Its methods are safe from
// any goroutine.
type Node struct {
	name     string
	id       string
	origin   uint64        // MsgID.Origin of this node's messages
	seq      atomic.Uint64 // the last MsgID.Seq given (NextID)
	cluster  string
	subj     subjects
	local    Local
	log      *slog.Logger
	now      func() time.Time
	timeout  time.Duration
	beat     time.Duration
	started  time.Time
	onState  func(bool)
	routes   [256]*Route
	blocking chan struct{} // semaphore of blocking requests

	nc       *nats.Conn
	in       chan *nats.Msg // every subscription but the replies' delivers here
	fixed    []*nats.Subscription
	interest interest
	registry registry
	gathers  gathers
	slow     slowSubs
	ctr      counters
	bufs     sync.Pool // *[]byte envelopes

	kick     chan struct{} // send a heartbeat now
	quit     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	isClosed bool
}

// Start connects to NATS and joins the cluster. It returns once the
// connection is set up, not necessarily made: a NATS that is unreachable
// is retried for ever in the background (Connected tells), while local
// delivery goes on. It fails for a bad configuration.
func Start(cfg Config) (*Node, error) {
	if len(cfg.URLs) == 0 || cfg.Local == nil {
		return nil, errors.New("cluster: Config.URLs and Local are required")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if err := CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if err := CheckName(cfg.NodeID); err != nil {
		return nil, err
	}
	n := &Node{
		name:    nodeName(cfg.NodeID),
		id:      cfg.NodeID,
		cluster: cfg.Name,
		local:   cfg.Local,
		log:     cfg.Logger,
		now:     cfg.Now,
		timeout: orDefault(cfg.Timeout, DefaultTimeout),
		beat:    orDefault(cfg.Heartbeat, DefaultHeartbeat),
		onState: cfg.OnConnected,
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	if n.log == nil {
		n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.started = n.now()
	n.origin = newOrigin()
	n.subj = newSubjects(cfg.Name, n.name)
	n.blocking = make(chan struct{}, maxBlocking)
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if n.routes[r.Verb] != nil {
			return nil, errors.New("cluster: two routes for verb " + r.Name)
		}
		n.routes[r.Verb] = r
	}
	queue := cfg.QueueLen
	if queue <= 0 {
		queue = DefaultQueueLen
	}
	n.in = make(chan *nats.Msg, queue)
	n.interest.init(n)
	n.registry.init(n)
	n.gathers.init()

	opts := []nats.Option{
		nats.Name("wsgate " + n.name),
		// A node's own messages are delivered by the node itself, never
		// through NATS: exactly once, and locally even without NATS.
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(orDefault(cfg.ReconnectWait, DefaultReconnectWait)),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// No buffering while disconnected: a publish then fails, and the
		// caller hears 503, rather than succeeding now and being delivered
		// (or not) after a reconnect.
		nats.ReconnectBufSize(-1),
		// A NATS server that vanished without a reset is noticed by TCP
		// (DeadPeer); the PINGs catch one that is up and stuck, and are
		// patient with a busy one (DefaultPingInterval).
		nats.PingInterval(orDefault(cfg.PingInterval, DefaultPingInterval)),
		nats.MaxPingsOutstanding(orDefault(cfg.MaxPingsOut, DefaultMaxPingsOut)),
		nats.Timeout(n.timeout),
		nats.SetCustomDialer(newDialer(n.timeout, deadPeer(cfg.DeadPeer))),
		nats.CustomInboxPrefix(n.subj.replies),
		nats.ConnectHandler(func(c *nats.Conn) { n.connected(c, "connected") }),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.ctr.reconnects.Add(1)
			n.connected(c, "reconnected")
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.ctr.disconnects.Add(1)
			n.log.Warn("cluster: disconnected from NATS; pushes to other nodes fail until it is back", "err", err)
			if n.onState != nil {
				n.onState(false)
			}
		}),
		nats.ClosedHandler(func(c *nats.Conn) {
			if !n.closing() {
				n.log.Error("cluster: NATS connection closed for good", "err", c.LastError())
			}
		}),
		nats.ErrorHandler(n.asyncError),
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), append(opts, cfg.Options...)...)
	if err != nil {
		return nil, errors.New("cluster: NATS: " + err.Error())
	}
	n.nc = nc
	for _, s := range []string{n.subj.self, n.subj.all, n.subj.hb} {
		sub, err := nc.ChanSubscribe(s, n.in)
		if err != nil {
			nc.Close()
			return nil, errors.New("cluster: subscribing to " + s + ": " + err.Error())
		}
		n.fixed = append(n.fixed, sub)
	}
	if _, err := nc.Subscribe(n.subj.replies+".g.>", n.gathers.onReply); err != nil {
		nc.Close()
		return nil, errors.New("cluster: subscribing to replies: " + err.Error())
	}
	n.wg.Add(3)
	go n.dispatch()
	go n.interest.run()
	go n.heartbeats()
	if !nc.IsConnected() {
		n.log.Warn("cluster: NATS unreachable; retrying, and delivering to this node's connections meanwhile", "urls", strings.Join(cfg.URLs, ","))
		if n.onState != nil {
			n.onState(false)
		}
	}
	return n, nil
}

// deadPeer is Config.DeadPeer with its default; negative stays negative.
func deadPeer(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultDeadPeer
	}
	return d
}

func orDefault[T int | time.Duration](d, def T) T {
	if d <= 0 {
		return def
	}
	return d
}

// Name returns the node's name: its ID and boot token.
func (n *Node) Name() string { return n.name }

// ID returns the node's ID.
func (n *Node) ID() string { return n.id }

// Cluster returns the cluster's name.
func (n *Node) Cluster() string { return n.cluster }

// Timeout returns the deadline of requests and gathers.
func (n *Node) Timeout() time.Duration { return n.timeout }

// Connected reports whether the NATS connection is up.
func (n *Node) Connected() bool { return n.nc.IsConnected() }

// MaxPayload returns the largest message the NATS server takes (0 before
// the first connection).
func (n *Node) MaxPayload() int64 { return n.nc.MaxPayload() }

// ConnectedURL returns the NATS server in use, or "".
func (n *Node) ConnectedURL() string { return n.nc.ConnectedUrlRedacted() }

// connected runs on NATS's callback goroutine once the connection is up.
func (n *Node) connected(c *nats.Conn, how string) {
	n.log.Info("cluster: "+how+" to NATS", "url", c.ConnectedUrlRedacted(), "node", n.name, "cluster", n.cluster)
	if n.onState != nil {
		n.onState(true)
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// asyncError hears what NATS's client reports off any call: slow
// consumers (our inbound queue was full) and permission violations.
func (n *Node) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
		n.slow.add(sub)
		n.log.Warn("cluster: inbound queue full, NATS messages dropped (counted)", "subject", sub.Subject)
		return
	}
	n.log.Warn("cluster: NATS error", "err", err)
}

func (n *Node) closing() bool {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	return n.isClosed
}

// Close says goodbye to the other nodes (they forget this one at once),
// stops the node's goroutines and closes the NATS connection. Blocking
// requests in flight are waited for until ctx ends.
func (n *Node) Close(ctx context.Context) error {
	n.closeMu.Lock()
	if n.isClosed {
		n.closeMu.Unlock()
		return ErrClosed
	}
	n.isClosed = true
	n.closeMu.Unlock()
	close(n.quit)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if n.Connected() {
		n.sendHeartbeat(true)
		_ = n.nc.FlushTimeout(n.timeout)
	}
	n.nc.Close()
	n.gathers.closeAll()
	return err
}

// dispatch handles every message of the node's subscriptions, in the
// order NATS delivered them: a push reaches the node's connections
// before the node answers a barrier sent after it (gather.go).
func (n *Node) dispatch() {
	defer n.wg.Done()
	for {
		select {
		case <-n.quit:
			return
		case m := <-n.in:
			n.handle(m)
		}
	}
}

func (n *Node) handle(m *nats.Msg) {
	n.ctr.received.Add(1)
	kind, err := kindOf(m.Data)
	if err != nil {
		n.undecodable(m, err)
		return
	}
	switch kind {
	case kindTopic, kindUser, kindAll:
		op, id, name, payload, err := parseData(m.Data)
		if err != nil {
			n.undecodable(m, err)
			return
		}
		var d Delivery
		switch kind {
		case kindTopic:
			d = n.local.DeliverTopic(id, string(name), op, payload)
		case kindUser:
			d = n.local.DeliverUser(id, string(name), op, payload)
		default:
			d = n.local.DeliverAll(id, op, payload)
		}
		if m.Reply != "" {
			n.reply(m.Reply, appendCounts(n.buf(), n.name, d))
		}
	case kindBarrier:
		if m.Reply != "" {
			n.reply(m.Reply, appendFrom(n.buf(), kindAck, n.name))
		}
	case kindRequest:
		n.serve(m)
	case kindHeartbeat:
		n.registry.heard(m.Data[2:])
	default:
		n.undecodable(m, errVersion)
	}
}

func (n *Node) undecodable(m *nats.Msg, err error) {
	if c := n.ctr.undecodable.Add(1); c&(c-1) == 0 { // the 1st, 2nd, 4th, 8th, ...
		n.log.Warn("cluster: undecodable message dropped (counted)", "subject", m.Subject, "err", err)
	}
}
