package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/loop"
)

// Resumable sessions across the cluster (docs/resume.md §5,
// docs/cluster.md "Sessions that move"): a client that resumes on another
// node presents a token that names the node that made it. This node
// (B) asks that one (A) for the session's state with verbSession; starts
// holding what arrives here for the session (moves.go) and subscribes
// to its user and topics; once NATS has those subscriptions, asks A with
// verbRelease for the frames A buffered since, and A forgets it. The
// upgrade waits on the handshake pool meanwhile, never on a loop.

// Verbs of a session's move.
const (
	// verbSession asks the owning node for a session's state: JSON
	// sessionRequest → 200 loop.SessionImport (with the backend meta),
	// 404 unknown, 403 another user's. The owner keeps the session.
	verbSession byte = 7
	// verbRelease asks the owning node to let the session go: JSON
	// sessionRequest with After (the snapshot's Seq) → 200 releaseReply,
	// 404 unknown, 403 another user's, 409 resumed there meanwhile, 410
	// its buffer no longer holds every frame since the snapshot.
	verbRelease byte = 8
)

type sessionRequest struct {
	Token string `json:"token"`
	User  string `json:"user,omitempty"`
	After int64  `json:"after,omitempty"` // verbRelease: the snapshot's Seq
	To    string `json:"to,omitempty"`    // verbRelease: the node it moves to
}

// movedAnswer is verbSession's 301: the session moved on to Node.
type movedAnswer struct {
	Node string `json:"node"`
}

// maxMoveHops bounds the 301s a fetch follows (a session that moved on
// from each node it was asked at).
const maxMoveHops = 4

// sessionReply is loop.SessionImport with the gateway's part of the
// anchor's value: the backend's meta.
type sessionReply struct {
	loop.SessionImport
	Meta json.RawMessage `json:"meta,omitempty"`
}

// releaseReply is what the owning node buffered for the session after
// the snapshot, and its floor: by origin, the highest message number it
// had handed to its connections (loop/session_move.go).
type releaseReply struct {
	Frames []loop.SessionFrame `json:"frames,omitempty"`
	Floor  [][2]uint64         `json:"floor"`
}

// sessionRoute serves verbSession on the owning node.
func (g *gatewayCluster) sessionRoute() cluster.Route {
	return cluster.Route{Verb: verbSession, Name: "session", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
		var req sessionRequest
		if err := json.Unmarshal(body, &req); err != nil || req.Token == "" {
			return jsonAnswer(errAnswer(400, "bad request"))
		}
		imp, err := g.s.srv.SnapshotSession(ctx, req.Token, req.User)
		if m, ok := errors.AsType[*loop.SessionMovedError](err); ok {
			return jsonAnswer(301, &movedAnswer{Node: m.Node})
		}
		if err != nil {
			return jsonAnswer(sessionError(err))
		}
		rep := sessionReply{SessionImport: *imp}
		if m, ok := imp.Value.(*connMeta); ok && len(m.meta) > 0 {
			rep.Meta = m.meta
		}
		return jsonAnswer(200, &rep)
	}}
}

// releaseRoute serves verbRelease on the owning node: the session is
// released under the write lock of moves, so the floor is exact.
func (g *gatewayCluster) releaseRoute() cluster.Route {
	return cluster.Route{Verb: verbRelease, Name: "release", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
		var req sessionRequest
		if err := json.Unmarshal(body, &req); err != nil || req.Token == "" {
			return jsonAnswer(errAnswer(400, "bad request"))
		}
		g.mv.mu.Lock()
		floor := g.mv.floorLocked(g.node.LastID())
		wait, err := g.s.srv.ReleaseSession(req.Token, req.User, req.To, req.After)
		g.mv.mu.Unlock()
		if err != nil {
			return jsonAnswer(sessionError(err))
		}
		frames, err := wait(ctx)
		if err != nil {
			return jsonAnswer(sessionError(err))
		}
		rep := releaseReply{Frames: frames, Floor: make([][2]uint64, 0, len(floor))}
		for o, s := range floor {
			rep.Floor = append(rep.Floor, [2]uint64{o, s})
		}
		return jsonAnswer(200, &rep)
	}}
}

func sessionError(err error) (int, any) {
	switch {
	case errors.Is(err, loop.ErrNoSession):
		return errAnswer(404, "no such session")
	case errors.Is(err, loop.ErrSessionUser):
		return errAnswer(403, "another user's session")
	case errors.Is(err, loop.ErrSessionBusy):
		return errAnswer(409, err.Error())
	case errors.Is(err, loop.ErrSessionGap):
		return errAnswer(410, err.Error())
	}
	return errAnswer(503, err.Error())
}

// moveHoldMin is the least a move holds for its session, whatever
// --resume-buffer says: the messages of a few round trips to NATS.
const moveHoldMin = 1 << 20

// fetchSession moves the session p presents from the node that holds it
// to this one, on the handshake pool, and gives the upgrade what it got.
// It reports whether the session came: the upgrade is then a resume, and
// runs no connect hook. When the session cannot come whole, the client is
// told it missed messages (reason gone), never a silent gap.
func (g *gatewayCluster) fetchSession(p *PendingUpgrade, user string) bool {
	node := p.SessionNode()
	if node == "" {
		return false
	}
	token := p.SessionToken()
	ctx, cancel := context.WithTimeout(context.Background(), 3*g.node.Timeout())
	defer cancel()
	body, _ := json.Marshal(sessionRequest{Token: token, User: user})
	ans, err := g.request(ctx, node, verbSession, body)
	for hop := 0; err == nil && ans.Status == 301 && hop < maxMoveHops; hop++ {
		// It moved on from there: ask where it went.
		var mv movedAnswer
		if json.Unmarshal(ans.Body, &mv) != nil || mv.Node == "" {
			break
		}
		if node = mv.Node; node == g.node.Name() {
			return false // back here: it is not, so it ended meanwhile
		}
		ans, err = g.request(ctx, node, verbSession, body)
	}
	if err != nil || ans.Status >= 500 || ans.Status == 301 {
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

	// Hold what arrives here for it, and subscribe, before the release.
	g.sweepMoves()
	m := g.mv.begin(token, imp.User, imp.Topics, max(4*int64(g.s.cfg.ResumeBuffer), moveHoldMin))
	g.markInterest(m)
	fail := func(why string, err error) bool {
		g.mv.abandon(m)
		g.markInterest(m)
		g.s.gate.log.Warn("cluster: a session could not move here whole; the client is told it missed messages",
			"node", node, "step", why, "err", err)
		p.ImportSession(nil, true)
		return false
	}
	upTo := g.node.LastID().Seq // every own message not held for m is numbered up to here
	if err := g.node.SyncInterest(ctx); err != nil {
		return fail("subscribe", err)
	}
	// This node's own messages numbered before m began are not held for
	// it: the release must reach the other node after them, so they must
	// be in NATS before it is asked.
	if err := g.mv.published(ctx, upTo); err != nil {
		return fail("publish", err)
	}
	body, _ = json.Marshal(sessionRequest{Token: token, User: user, After: imp.Seq, To: g.node.Name()})
	ans, err = g.request(ctx, node, verbRelease, body)
	if err == nil && ans.Status != 200 {
		err = errors.New(string(ans.Body))
	}
	if err != nil {
		return fail("release", err)
	}
	var rel releaseReply
	if err := json.Unmarshal(ans.Body, &rel); err != nil {
		return fail("release", err)
	}
	imp.Frames = append(imp.Frames, rel.Frames...)
	imp.Seq += int64(len(rel.Frames))
	imp.Floor = make(map[uint64]uint64, len(rel.Floor))
	for _, f := range rel.Floor {
		imp.Floor[f[0]] = f[1]
	}
	imp.Attach = func(register func([]loop.HeldMessage)) { g.attach(m, register) }
	p.ImportSession(&imp, false)
	return true
}

// sweepMoves drops the merges older than the resume window (at least a
// minute): an upgrade whose connection went before its loop took it
// never attaches. What they held is counted and logged. It runs at each
// move's start: moves are rare, and a merge left over holds at most its
// bound until then (no timer per session).
func (g *gatewayCluster) sweepMoves() {
	cutoff := time.Now().Add(-max(g.s.cfg.ResumeWindow, time.Minute))
	for _, m := range g.mv.older(cutoff) {
		if n := g.mv.abandon(m); n > 0 {
			g.s.gate.log.Warn("cluster: messages held for a session that never arrived dropped (counted)", "messages", n)
		}
		g.markInterest(m)
	}
}

// request is Node.Request, sent again (at most 5 times in all, 5 to 80
// ms apart, within ctx) while the node answers that it is busy: a mass
// of resumes at once (after a drain, a network switch) waits rather than
// tells clients they missed messages.
func (g *gatewayCluster) request(ctx context.Context, node string, verb byte, body []byte) (cluster.Answer, error) {
	ans, err := g.node.Request(ctx, node, verb, body)
	for wait := 5 * time.Millisecond; err == nil && ans.Busy() && wait <= 80*time.Millisecond; wait *= 2 {
		select {
		case <-ctx.Done():
			return ans, ctx.Err()
		case <-time.After(wait):
		}
		ans, err = g.node.Request(ctx, node, verb, body)
	}
	return ans, err
}

// attach runs on the loop at the 101 of a session that moved here
// (loop.SessionImport.Attach): with the write lock of moves held, no
// numbered message is on its way to a connection, so the session's
// place in the user index and what was held for it agree.
func (g *gatewayCluster) attach(m *merge, register func([]loop.HeldMessage)) {
	g.mv.mu.Lock()
	held, over := g.mv.stopLocked(m)
	if register != nil {
		register(held)
	}
	g.mv.mu.Unlock()
	if register != nil && over > 0 {
		g.mv.drop(over)
		g.s.gate.log.Warn("cluster: messages for a session on its way here dropped: over the bound of what a move holds (counted)",
			"messages", over, "bound", m.limit)
	}
	g.markInterest(m)
}

// markInterest has the reconciler look at the user and topics of m again.
func (g *gatewayCluster) markInterest(m *merge) {
	if m.user != "" {
		g.node.UserInterest(m.user, true)
	}
	for t := range m.topics {
		g.node.TopicInterest(t, true)
	}
}
