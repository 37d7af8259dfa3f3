package gateway

import (
	"errors"
	"net/http"

	"github.com/wsgate/wsgate/loop"
)

// Pushes through the admin API: to a connection, to a user, to a topic;
// in a cluster to every node's.

// pushResult is the answer to a push. Nodes and NodesMissing are set in a
// cluster: the nodes that answered (this one included) and those of the
// registry that did not in time.
type pushResult struct {
	Connections  int    `json:"connections"`      // targeted
	Sent         int    `json:"sent"`             // queued for their clients
	Slow         int    `json:"slow,omitempty"`   // refused by a full outbound queue
	Closed       int    `json:"closed,omitempty"` // closed meanwhile
	Subscribers  int    `json:"subscribers,omitempty"`
	Nodes        int    `json:"nodes,omitempty"`
	NodesMissing int    `json:"nodes_missing,omitempty"`
	Partial      bool   `json:"partial,omitempty"` // NATS unreachable: this node's only
	Error        string `json:"error,omitempty"`
}

// opSend pushes to a connection of this node.
func (s *Server) opSend(c *Conn, op OpCode, data []byte) (int, any) {
	if err := c.Send(op, data); err != nil {
		return sendError(err)
	}
	return http.StatusAccepted, pushResult{Connections: 1, Sent: 1}
}

// POST /v1/connections/{id}/messages: 202, 404, 413, 429; in a cluster
// the connection's node answers.
func (a *admin) pushConn(w http.ResponseWriter, r *http.Request) {
	t, ok := a.target(w, r)
	if !ok {
		return
	}
	op, data, ok := a.message(w, r)
	if !ok {
		return
	}
	if t.c != nil {
		reply(w)(a.s.opSend(t.c, op, data))
		return
	}
	if err := checkPayload(op, data); err != nil {
		reply(w)(sendError(err))
		return
	}
	a.remote(w, r, t.node, verbSend, appendSend(op, t.local, data))
}

// POST /v1/users/{user}/messages: 202 with counts; 400 for a text body
// that is not UTF-8. In a cluster, every node's connections of the user
// count, and nodes says how many nodes answered; without NATS, 503 with
// the counts of this node (partial).
func (a *admin) pushUser(w http.ResponseWriter, r *http.Request) {
	op, data, ok := a.message(w, r)
	if !ok {
		return
	}
	if err := checkPayload(op, data); err != nil {
		reply(w)(sendError(err))
		return
	}
	user := r.PathValue("user")
	if a.s.cluster == nil {
		d, err := a.s.sendLocalUser(loop.MsgID{}, user, op, data)
		if err != nil {
			reply(w)(sendError(err))
			return
		}
		writeJSON(w, http.StatusAccepted, pushResult{Connections: d.Connections, Sent: d.Sent, Slow: d.Slow, Closed: d.Closed})
		return
	}
	id, local, err := a.s.cluster.own(kindUser, user, op, data)
	if err != nil {
		reply(w)(sendError(err))
		return
	}
	d, reach, err := a.s.cluster.node.GatherUser(r.Context(), id, user, byte(op), data, local)
	a.s.cluster.sent(id) // published before the gather's wait: a move waits for that too
	res := pushResult{Connections: d.Connections, Sent: d.Sent, Slow: d.Slow, Closed: d.Closed, Nodes: reach.Nodes, NodesMissing: reach.Missing}
	a.writePush(w, res, err)
}

// writePush answers a cluster-wide push: 202, or 503 with what this node
// delivered when NATS is unreachable.
func (a *admin) writePush(w http.ResponseWriter, res pushResult, err error) {
	if err != nil {
		status, _ := clusterError(err, "")
		res.Partial = true // this node's connections got it
		res.Error = "cluster unavailable: not connected to NATS; delivered to this node's connections only"
		if !errors.Is(err, ErrClusterUnavailable) {
			res.Error = err.Error() + "; delivered to this node's connections only"
		}
		writeJSON(w, status, res)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

// POST /v1/topics/{topic}/messages: 202 with the subscriber count (of
// every node in a cluster, as for users).
func (a *admin) pushTopic(w http.ResponseWriter, r *http.Request) {
	op, data, ok := a.message(w, r)
	if !ok {
		return
	}
	if a.s.cluster == nil {
		n, err := a.s.srv.Publish(r.PathValue("topic"), op, data)
		if err != nil {
			reply(w)(sendError(err))
			return
		}
		writeJSON(w, http.StatusAccepted, pushResult{Subscribers: n})
		return
	}
	if err := checkPayload(op, data); err != nil {
		reply(w)(sendError(err))
		return
	}
	topic := r.PathValue("topic")
	id, local, err := a.s.cluster.own(kindTopic, topic, op, data)
	if err != nil {
		reply(w)(sendError(err))
		return
	}
	d, reach, err := a.s.cluster.node.GatherTopic(r.Context(), id, topic, byte(op), data, local)
	a.s.cluster.sent(id)
	a.writePush(w, pushResult{Subscribers: d.Connections, Nodes: reach.Nodes, NodesMissing: reach.Missing}, err)
}
