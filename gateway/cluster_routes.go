package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"

	"github.com/wsgate/wsgate/cluster"
)

// The routes this node serves for the other nodes of its cluster, and
// their request bodies (the member itself is cluster.go).

// Request bodies.

func appendSend(op OpCode, id uint64, data []byte) []byte {
	b := make([]byte, 9, 9+len(data))
	b[0] = byte(op)
	binary.BigEndian.PutUint64(b[1:], id)
	return append(b, data...)
}

func appendID(id uint64, tail string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(tail)), id)
	return append(b, tail...)
}

type closeRequest struct {
	ID     uint64 `json:"id"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// routes are the requests this node serves for the others.
func (g *gatewayCluster) routes() []cluster.Route {
	s := g.s
	byID := func(body []byte, min int) (*Conn, []byte, bool) {
		if len(body) < min {
			return nil, nil, false
		}
		off := min - 8
		return s.srv.Lookup(binary.BigEndian.Uint64(body[off:])), body[min:], true
	}
	return []cluster.Route{
		g.sessionRoute(),
		g.releaseRoute(),
		{Verb: verbSend, Name: "send", Serve: func(_ context.Context, body []byte) (int, []byte) {
			c, payload, ok := byID(body, 9)
			if !ok {
				return jsonAnswer(errAnswer(400, "bad request"))
			}
			if c == nil {
				return jsonAnswer(errAnswer(404, "no such connection"))
			}
			return jsonAnswer(s.opSend(c, OpCode(body[0]), payload))
		}},
		{Verb: verbClose, Name: "close", Serve: func(_ context.Context, body []byte) (int, []byte) {
			var req closeRequest
			if err := json.Unmarshal(body, &req); err != nil || req.Code < 1000 || req.Code > 4999 || len(req.Reason) > 123 {
				return jsonAnswer(errAnswer(400, "bad request"))
			}
			c := s.srv.Lookup(req.ID)
			if c == nil {
				return jsonAnswer(errAnswer(404, "no such connection"))
			}
			return jsonAnswer(s.opClose(c, req.Code, req.Reason))
		}},
		{Verb: verbSubscribe, Name: "subscribe", Serve: g.topicRoute(byID, (*Conn).Subscribe)},
		{Verb: verbUnsubscribe, Name: "unsubscribe", Serve: g.topicRoute(byID, (*Conn).Unsubscribe)},
		{Verb: verbInfo, Name: "info", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
			c, _, ok := byID(body, 8)
			if !ok {
				return jsonAnswer(errAnswer(400, "bad request"))
			}
			if c == nil {
				return jsonAnswer(errAnswer(404, "no such connection"))
			}
			return jsonAnswer(s.opInfo(ctx, c))
		}},
		{Verb: verbList, Name: "list", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
			var req listRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return jsonAnswer(errAnswer(400, "bad request"))
			}
			return jsonAnswer(s.listForCluster(ctx, &req))
		}},
	}
}

func (g *gatewayCluster) topicRoute(byID func([]byte, int) (*Conn, []byte, bool), op func(*Conn, string) error) func(context.Context, []byte) (int, []byte) {
	return func(_ context.Context, body []byte) (int, []byte) {
		c, topic, ok := byID(body, 8)
		if !ok {
			return jsonAnswer(errAnswer(400, "bad request"))
		}
		if c == nil {
			return jsonAnswer(errAnswer(404, "no such connection"))
		}
		return jsonAnswer(opTopic(c, string(topic), op))
	}
}

// jsonAnswer encodes an operation's answer for the wire.
func jsonAnswer(status int, v any) (int, []byte) {
	if v == nil {
		return status, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 500, []byte(`{"error":"encoding the answer"}`)
	}
	return status, append(b, '\n')
}
