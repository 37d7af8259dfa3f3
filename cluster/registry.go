package cluster

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
)

// The registry: the nodes this one has heard from. Every node publishes a
// heartbeat on wsgate.<c>.hb every Config.Heartbeat (and at once when it
// connects); a node not heard from for three of its own intervals is
// forgotten, and one that says goodbye (Close) at once. A node that hears
// a newcomer announces itself at once, so joining takes one round trip,
// not a heartbeat interval. Gathers wait for the nodes of the registry.

// heartbeat is the JSON of a heartbeat message.
type heartbeat struct {
	Node        string    `json:"node"`
	NodeID      string    `json:"node_id"`
	Connections int64     `json:"connections"`
	Draining    bool      `json:"draining"`
	Started     time.Time `json:"started"`
	IntervalMS  int64     `json:"interval_ms"`
	Bye         bool      `json:"bye,omitempty"`
}

// NodeInfo describes a node of the cluster.
type NodeInfo struct {
	Name        string    `json:"node"`    // its name: ID and boot token
	ID          string    `json:"node_id"` // its --node-id
	Connections int64     `json:"connections"`
	Draining    bool      `json:"draining"`
	Started     time.Time `json:"started"`
	LastHeard   time.Time `json:"last_heard"`
	Self        bool      `json:"self,omitempty"`
}

type registry struct {
	n     *Node
	mu    sync.Mutex
	nodes map[string]*peer
}

type peer struct {
	info    NodeInfo
	expires time.Time
}

func (r *registry) init(n *Node) {
	r.n = n
	r.nodes = make(map[string]*peer)
}

// heard records a heartbeat (the JSON after the envelope's kind).
func (r *registry) heard(b []byte) {
	var hb heartbeat
	if err := json.Unmarshal(b, &hb); err != nil || hb.Node == "" || hb.Node == r.n.name {
		r.n.ctr.undecodable.Add(1)
		return
	}
	now := r.n.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if hb.Bye {
		delete(r.nodes, hb.Node)
		return
	}
	p := r.nodes[hb.Node]
	if p == nil {
		p = &peer{}
		r.nodes[hb.Node] = p
		r.n.log.Info("cluster: node joined", "node", hb.Node)
		// Tell the newcomer about this node now rather than at the next
		// heartbeat: a node learns the whole cluster within one round trip.
		select {
		case r.n.kick <- struct{}{}:
		default:
		}
	}
	interval := time.Duration(hb.IntervalMS) * time.Millisecond
	if interval <= 0 || interval > time.Minute {
		interval = r.n.beat
	}
	p.info = NodeInfo{Name: hb.Node, ID: hb.NodeID, Connections: hb.Connections, Draining: hb.Draining, Started: hb.Started, LastHeard: now}
	p.expires = now.Add(expiryBeats * interval)
}

// live returns the nodes heard from recently, pruning the others.
func (r *registry) live() []NodeInfo {
	now := r.n.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]NodeInfo, 0, len(r.nodes))
	for name, p := range r.nodes {
		if now.After(p.expires) {
			delete(r.nodes, name)
			r.n.log.Info("cluster: node gone (no heartbeat)", "node", name)
			continue
		}
		out = append(out, p.info)
	}
	return out
}

// others returns the names of the live nodes but this one.
func (r *registry) others() []string {
	live := r.live()
	names := make([]string, len(live))
	for i := range live {
		names[i] = live[i].Name
	}
	return names
}

// Nodes returns the live nodes, this one included, sorted by name.
func (n *Node) Nodes() []NodeInfo {
	st := n.local.Status()
	out := append(n.registry.live(), NodeInfo{
		Name: n.name, ID: n.id, Connections: st.Connections, Draining: st.Draining,
		Started: n.started, LastHeard: n.now(), Self: true,
	})
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// heartbeats announces the node every interval, and at once on a kick
// (a connect), until the node closes.
func (n *Node) heartbeats() {
	defer n.wg.Done()
	t := time.NewTicker(n.beat)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-t.C:
		case <-n.kick:
		}
		if n.Connected() {
			n.sendHeartbeat(false)
		}
		n.registry.live() // prune, and log who left
		n.interest.retry()
	}
}

func (n *Node) sendHeartbeat(bye bool) {
	st := n.local.Status()
	b, _ := json.Marshal(heartbeat{
		Node: n.name, NodeID: n.id, Connections: st.Connections, Draining: st.Draining,
		Started: n.started, IntervalMS: n.beat.Milliseconds(), Bye: bye,
	})
	_ = n.publish(n.subj.hb, "", append(append(n.buf(), wireVersion, kindHeartbeat), b...))
}
