package gateway

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/loop"
)

// Resumable sessions across the cluster (docs/resume.md §5,
// docs/cluster.md): a client that resumes on another node presents a
// token that names the node that made it; this node asks that one for the
// session with verbSession, and the owner hands it over and forgets it.
// The upgrade waits on the handshake pool meanwhile, never on a loop.

// verbSession asks the owning node for a session: JSON sessionRequest →
// 200 loop.SessionImport (with the backend meta), 404 unknown, 403 another
// user's.
const verbSession byte = 7

type sessionRequest struct {
	Token string `json:"token"`
	User  string `json:"user,omitempty"`
}

// sessionReply is loop.SessionImport with the gateway's part of the
// anchor's value: the backend's meta.
type sessionReply struct {
	loop.SessionImport
	Meta json.RawMessage `json:"meta,omitempty"`
}

// sessionRoute serves verbSession on the owning node.
func (g *gatewayCluster) sessionRoute() cluster.Route {
	return cluster.Route{Verb: verbSession, Name: "session", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
		var req sessionRequest
		if err := json.Unmarshal(body, &req); err != nil || req.Token == "" {
			return jsonAnswer(errAnswer(400, "bad request"))
		}
		imp, err := g.s.srv.TakeSession(ctx, req.Token, req.User)
		switch {
		case errors.Is(err, loop.ErrNoSession):
			return jsonAnswer(errAnswer(404, "no such session"))
		case errors.Is(err, loop.ErrSessionUser):
			return jsonAnswer(errAnswer(403, "another user's session"))
		case err != nil:
			return jsonAnswer(errAnswer(503, err.Error()))
		}
		rep := sessionReply{SessionImport: *imp}
		if m, ok := imp.Value.(*connMeta); ok && len(m.meta) > 0 {
			rep.Meta = m.meta
		}
		return jsonAnswer(200, &rep)
	}}
}

// fetchSession asks the node that holds the session p presents for it,
// on the handshake pool, and gives the upgrade what it answered. It
// reports whether the session came: the upgrade is then a resume, and
// runs no connect hook.
func (g *gatewayCluster) fetchSession(p *PendingUpgrade, user string) bool {
	node := p.SessionNode()
	if node == "" {
		return false
	}
	body, _ := json.Marshal(sessionRequest{Token: p.SessionToken(), User: user})
	ans, err := g.node.Request(context.Background(), node, verbSession, body)
	if err != nil || ans.Status >= 500 {
		// The node is gone or did not answer: the client is told it
		// missed messages (reason gone).
		p.ImportSession(nil, true)
		return false
	}
	if ans.Status != 200 {
		return false // unknown, or another user's: a new session
	}
	var rep sessionReply
	if err := json.Unmarshal(ans.Body, &rep); err != nil {
		p.ImportSession(nil, true)
		return false
	}
	imp := rep.SessionImport
	if len(rep.Meta) > 0 {
		imp.Value = &connMeta{meta: rep.Meta}
	}
	p.ImportSession(&imp, false)
	return true
}
