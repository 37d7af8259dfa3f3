package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/internal/stat"
	"github.com/wsgate/wsgate/loop"
)

// The admin API across a cluster: the cluster-wide listing and
// GET /v1/cluster.
//
// A cluster-wide page is a scatter-gather: every node answers with its
// own page after the cursor, and this node merges them in the order
// (node name, connection), so that pages follow each other without gaps
// or repeats among the nodes that answer. The cursor is "NODE:LOCAL":
// nodes before NODE are done, NODE resumes at its own cursor LOCAL ("" is
// its start), later nodes start from theirs.

// listRequest is the scatter of a cluster-wide page.
type listRequest struct {
	User   string `json:"user,omitempty"`
	Topic  string `json:"topic,omitempty"`
	Limit  int    `json:"limit"`
	Node   string `json:"node,omitempty"`   // the cursor's node
	Cursor string `json:"cursor,omitempty"` // its local cursor
}

// listForCluster is a node's part of a cluster-wide page.
func (s *Server) listForCluster(ctx context.Context, req *listRequest) (int, any) {
	self := s.cluster.node.Name()
	opts := ListOptions{User: req.User, Topic: req.Topic, Limit: min(max(req.Limit, 1), maxListLimit)}
	switch {
	case self < req.Node:
		return http.StatusOK, listPage{Connections: []connJSON{}}
	case self == req.Node:
		opts.Cursor = req.Cursor
	}
	return s.listLocal(ctx, opts)
}

// listCluster merges every node's page into one.
func (s *Server) listCluster(ctx context.Context, opts ListOptions) (int, any) {
	req := listRequest{User: opts.User, Topic: opts.Topic, Limit: opts.Limit}
	if opts.Cursor != "" {
		node, local, ok := strings.Cut(opts.Cursor, ":")
		if !ok || cluster.CheckName(node) != nil {
			return errAnswer(http.StatusBadRequest, "bad cursor")
		}
		req.Node, req.Cursor = node, local
	}
	body, _ := json.Marshal(&req)
	answers, reach, err := s.cluster.node.Scatter(ctx, verbList, body)
	if err != nil {
		status, _ := clusterError(err, "")
		return errAnswer(status, "cluster unavailable: not connected to NATS (scope=local lists this node's connections)")
	}
	type nodePage struct {
		node string
		page listPage
	}
	var pages []nodePage
	for _, ans := range answers {
		if ans.Status != http.StatusOK {
			if ans.Node == s.cluster.node.Name() {
				return ans.Status, json.RawMessage(ans.Body) // this node's bad cursor, say
			}
			reach.Nodes--
			reach.Missing++
			continue
		}
		var p listPage
		if json.Unmarshal(ans.Body, &p) != nil {
			reach.Nodes--
			reach.Missing++
			continue
		}
		pages = append(pages, nodePage{ans.Node, p})
	}
	slices.SortFunc(pages, func(a, b nodePage) int { return strings.Compare(a.node, b.node) })
	out := listPage{Connections: []connJSON{}, Nodes: reach.Nodes, NodesMissing: reach.Missing}
	for i, np := range pages {
		for j, c := range np.page.Connections {
			out.Connections = append(out.Connections, c)
			if len(out.Connections) < opts.Limit {
				continue
			}
			// The page is full: resume after c, within its node if it
			// has more, else at the next node that has any.
			if j < len(np.page.Connections)-1 || np.page.NextCursor != "" {
				_, local, _ := cluster.SplitConnID(c.ID)
				out.NextCursor = np.node + ":" + loop.CursorAfter(local)
			} else {
				for _, later := range pages[i+1:] {
					if len(later.page.Connections) > 0 {
						out.NextCursor = later.node + ":"
						break
					}
				}
			}
			return http.StatusOK, out
		}
	}
	return http.StatusOK, out
}

// clusterJSON is the answer of GET /v1/cluster.
type clusterJSON struct {
	Cluster   string         `json:"cluster,omitempty"`
	Node      string         `json:"node,omitempty"`
	Connected bool           `json:"connected"`
	NATS      string         `json:"nats,omitempty"` // the server in use
	Nodes     []nodeJSON     `json:"nodes"`
	Stats     map[string]any `json:"stats,omitempty"`
}

type nodeJSON struct {
	NodeInfo
	AgoMS int64 `json:"last_heard_ms_ago"`
}

// GET /v1/cluster: the nodes this one has heard from (itself included),
// their connection counts, drain state and last heartbeat.
func (a *admin) clusterInfo(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	out := clusterJSON{}
	for _, n := range a.s.Nodes() {
		j := nodeJSON{NodeInfo: n}
		if !n.LastHeard.IsZero() {
			j.AgoMS = max(now.Sub(n.LastHeard).Milliseconds(), 0)
		}
		out.Nodes = append(out.Nodes, j)
	}
	if c := a.s.cluster; c != nil {
		out.Cluster, out.Node = c.node.Cluster(), c.node.Name()
		out.Connected, out.NATS = c.node.Connected(), c.node.ConnectedURL()
		out.Stats = stat.JSON(c.node.Stats())
	}
	writeJSON(w, http.StatusOK, out)
}
