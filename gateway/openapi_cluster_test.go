package gateway_test

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
)

// The admin API of a cluster against the spec: the answers that only a
// cluster gives (node-named IDs, nodes counts, GET /v1/cluster with its
// peers, scope, 404 for an unknown node, 503 while NATS is unreachable,
// with the partial answer of a user push) validate too.
func TestOpenAPIContractCluster(t *testing.T) {
	const token = "s3cret"
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 2, func(c *gateway.Config) { c.AdminToken = token })
	a, b := nodes[0], nodes[1]
	base := "http://" + a.srv.AdminAddr().String()
	_, router := loadSpec(t, base)
	c := &specClient{t: t, base: base, token: token, router: router, seen: map[string]map[int]bool{}}

	ann, annID := dialNode(t, b, "user=ann&topic=news")
	_, localID := dialNode(t, a, "user=bob")
	if !strings.Contains(annID, "-") {
		t.Fatalf("a cluster ID names its node: %q", annID)
	}
	settle(t, nodes)

	c.do(call{method: "GET", path: "/v1/cluster", want: 200})
	c.do(call{method: "GET", path: "/v1/connections", want: 200})
	c.do(call{method: "GET", path: "/v1/connections?scope=local", want: 200})
	c.do(call{method: "GET", path: "/v1/connections?scope=all", want: 400, specRejects: true})
	c.do(call{method: "GET", path: "/v1/connections/" + annID, want: 200})
	c.do(call{method: "POST", path: "/v1/connections/" + annID + "/messages", ctype: "text/plain", body: []byte("to b"), want: 202})
	if _, msg := readMsg(t, ann); msg != "to b" {
		t.Fatalf("ann got %q", msg)
	}
	c.do(call{method: "POST", path: "/v1/users/ann/messages", ctype: "text/plain", body: []byte("to ann"), want: 202})
	if _, msg := readMsg(t, ann); msg != "to ann" {
		t.Fatalf("ann got %q", msg)
	}
	c.do(call{method: "POST", path: "/v1/topics/news/messages", ctype: "text/plain", body: []byte("news"), want: 202})
	if _, msg := readMsg(t, ann); msg != "news" {
		t.Fatalf("ann got %q", msg)
	}
	c.do(call{method: "PUT", path: "/v1/connections/" + annID + "/topics/more", want: 204})
	c.do(call{method: "DELETE", path: "/v1/connections/" + annID + "/topics/more", want: 204})
	// An ID of a node the cluster does not know, and one of a known node
	// that has no such connection: 404 either way.
	c.do(call{method: "GET", path: "/v1/connections/nobody-aaaaaaaa-1", want: 404})
	prefix := annID[:strings.LastIndexByte(annID, '-')+1]
	c.do(call{method: "GET", path: "/v1/connections/" + prefix + "12345", want: 404})

	// Without NATS: another node's connection is out of reach (503), a
	// user push reaches this node's connections and says it is partial,
	// and the local listing still works.
	nats.Stop()
	waitFor(t, func() bool { return !a.srv.ClusterStats().Connected })
	c.do(call{method: "POST", path: "/v1/connections/" + annID + "/messages", ctype: "text/plain", body: []byte("x"), want: 503})
	c.do(call{method: "POST", path: "/v1/users/bob/messages", ctype: "text/plain", body: []byte("x"), want: 503})
	c.do(call{method: "GET", path: "/v1/connections", want: 503})
	c.do(call{method: "GET", path: "/v1/connections?scope=local", want: 200})
	c.do(call{method: "GET", path: "/v1/connections/" + localID, want: 200})
	c.do(call{method: "GET", path: "/v1/cluster", want: 200})
}
