package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
)

// Three gateways in one process on an embedded NATS server: every push,
// publish and admin call on any node reaches the connections of all.

// clusterApp is queryUser with topics: ?user=ann&topic=news subscribes
// the connection before it tells the client its ID.
type clusterApp struct{ queryUser }

func (clusterApp) OnOpen(c *gateway.Conn) {
	if v, ok := c.Value().(string); ok && v != "" {
		c.Subscribe(v)
	}
	c.Send(gateway.OpText, []byte("id="+c.IDString()))
}

func (clusterApp) OnHandshake(r *gateway.Request) error {
	for kv := range strings.SplitSeq(string(r.Query()), "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			r.SetUser(v)
		case "topic":
			r.Conn().SetValue(v)
		}
	}
	return nil
}

type clusterNode struct {
	srv   *gateway.Server
	admin *adminClient
}

// startCluster runs n gateways on nats, with short heartbeats.
func startCluster(t *testing.T, nats *natstest.Server, n int, tweak func(*gateway.Config)) []clusterNode {
	t.Helper()
	var nodes []clusterNode
	for i := range n {
		cfg := gateway.Config{
			Admin: "127.0.0.1:0", NATS: []string{nats.URL()}, NodeID: fmt.Sprintf("gw%c", 'a'+i),
			ClusterName: "test", ClusterHeartbeat: 100 * time.Millisecond, PingInterval: -1,
		}
		if tweak != nil {
			tweak(&cfg)
		}
		srv := startServer(t, cfg, &clusterApp{})
		nodes = append(nodes, clusterNode{srv, newAdminClient(t, srv, "")})
	}
	for _, nd := range nodes {
		waitFor(t, func() bool { return len(nd.srv.Nodes()) == n })
	}
	return nodes
}

// settle waits until every node's NATS server has its interest.
func settle(t *testing.T, nodes []clusterNode) {
	t.Helper()
	for _, nd := range nodes {
		waitFor(t, func() bool { st := nd.srv.ClusterStats(); return st.Pending == 0 && st.Connected })
	}
}

// dialNode connects to a node with a query and returns the client and
// its connection ID.
func dialNode(t *testing.T, nd clusterNode, query string) (*gorilla.Conn, string) {
	t.Helper()
	c := mustDial(t, wsURL(nd.srv)+"?"+query, nil)
	_, msg := readMsg(t, c)
	id, ok := strings.CutPrefix(msg, "id=")
	if !ok {
		t.Fatalf("first message %q", msg)
	}
	return c, id
}

// expectOnce reads want from each client, then the marker that was
// pushed after it: a duplicate of want would come first.
func expectOnce(t *testing.T, clients []*gorilla.Conn, want, marker string) {
	t.Helper()
	for i, c := range clients {
		if _, msg := readMsg(t, c); msg != want {
			t.Fatalf("client %d: got %q, want %q", i, msg, want)
		}
		if _, msg := readMsg(t, c); msg != marker {
			t.Fatalf("client %d: got %q after %q, want the marker %q (a duplicate?)", i, msg, want, marker)
		}
	}
}

func num(t *testing.T, v map[string]any, key string) int {
	t.Helper()
	f, ok := v[key].(float64)
	if !ok && v[key] != nil {
		t.Fatalf("%s: %v", key, v[key])
	}
	return int(f)
}

func TestClusterPushToUser(t *testing.T) {
	nodes := startCluster(t, natstest.Start(t), 3, nil)
	var clients []*gorilla.Conn
	for i, nd := range nodes {
		for range i + 1 { // 1 on A, 2 on B, 3 on C
			c, _ := dialNode(t, nd, "user=ann")
			clients = append(clients, c)
		}
	}
	bob, _ := dialNode(t, nodes[0], "user=bob")
	settle(t, nodes)
	for i, msg := range []string{"hello ann", "marker"} {
		v := nodes[i].admin.json("POST", "/v1/users/ann/messages", "text/plain", []byte(msg), 202)
		if num(t, v, "connections") != 6 || num(t, v, "sent") != 6 || num(t, v, "nodes") != 3 {
			t.Fatalf("push %d: %v", i, v)
		}
	}
	expectOnce(t, clients, "hello ann", "marker")
	// Library: SendUser from C, and bob on A is untouched by all this.
	if n, err := nodes[2].srv.SendUser("bob", gateway.OpText, []byte("hi bob")); err != nil || n != 0 {
		t.Fatalf("SendUser: %d %v", n, err)
	}
	if _, msg := readMsg(t, bob); msg != "hi bob" {
		t.Fatalf("bob got %q", msg)
	}
	// A user nobody has: every node answers, none has connections.
	v := nodes[1].admin.json("POST", "/v1/users/nobody/messages", "text/plain", []byte("x"), 202)
	if num(t, v, "connections") != 0 || num(t, v, "nodes") != 3 {
		t.Fatalf("push to nobody: %v", v)
	}
}

func TestClusterPublishToTopic(t *testing.T) {
	nodes := startCluster(t, natstest.Start(t), 3, nil)
	a1, _ := dialNode(t, nodes[0], "topic=room.1")
	a2, _ := dialNode(t, nodes[0], "topic=room.1")
	b1, _ := dialNode(t, nodes[1], "topic=room.1")
	other, _ := dialNode(t, nodes[1], "topic=room.2")
	settle(t, nodes)
	clients := []*gorilla.Conn{a1, a2, b1}
	for _, msg := range []string{"news", "marker"} {
		v := nodes[2].admin.json("POST", "/v1/topics/room.1/messages", "text/plain", []byte(msg), 202)
		if num(t, v, "subscribers") != 3 || num(t, v, "nodes") != 3 {
			t.Fatalf("publish: %v", v)
		}
	}
	expectOnce(t, clients, "news", "marker")
	// The library's Publish on C: 200 messages in the publisher's order.
	for i := range 200 {
		if _, err := nodes[2].srv.Publish("room.1", gateway.OpText, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		for i := range 200 {
			if _, msg := readMsg(t, c); msg != fmt.Sprintf("m%d", i) {
				t.Fatalf("got %q, want m%d", msg, i)
			}
		}
	}
	// The publisher's own subscribers get it once too (directly, not
	// through NATS).
	c1, _ := dialNode(t, nodes[2], "topic=room.1")
	settle(t, nodes)
	nodes[2].srv.Publish("room.1", gateway.OpText, []byte("own"))
	nodes[2].srv.Publish("room.1", gateway.OpText, []byte("marker2"))
	expectOnce(t, append(clients, c1), "own", "marker2")
	// Broadcast from B reaches every client of every node once.
	nodes[1].srv.Broadcast(gateway.OpText, []byte("all"))
	nodes[1].srv.Broadcast(gateway.OpText, []byte("marker3"))
	expectOnce(t, append(clients, c1, other), "all", "marker3")
}

func TestClusterConnectionOps(t *testing.T) {
	nodes := startCluster(t, natstest.Start(t), 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	conn, id := dialNode(t, a, "user=ann")
	if !strings.HasPrefix(id, a.srv.NodeName()+"-") {
		t.Fatalf("id %q does not name node %q", id, a.srv.NodeName())
	}
	// Push to a connection on A through B's admin API.
	v := b.admin.json("POST", "/v1/connections/"+id+"/messages", "text/plain", []byte("via b"), 202)
	if num(t, v, "sent") != 1 {
		t.Fatalf("push: %v", v)
	}
	if _, msg := readMsg(t, conn); msg != "via b" {
		t.Fatalf("got %q", msg)
	}
	// A's answers come through: 404 for an ID A does not know, 400 for a
	// text that is not UTF-8 (checked before it travels).
	unknown := a.srv.NodeName() + "-12345"
	if v := b.admin.json("POST", "/v1/connections/"+unknown+"/messages", "text/plain", []byte("x"), 404); !strings.Contains(fmt.Sprint(v["error"]), "no such connection") {
		t.Fatalf("unknown id: %v", v)
	}
	b.admin.json("POST", "/v1/connections/"+id+"/messages", "text/plain", []byte{0xff}, 400)
	// A node that is not in the cluster.
	if v := b.admin.json("GET", "/v1/connections/gone-aaaaaaaa-1", "", nil, 404); !strings.Contains(fmt.Sprint(v["error"]), "not in the cluster") {
		t.Fatalf("gone node: %v", v)
	}
	// Subscribe it to a topic through C, publish through B.
	if status, body := c.admin.do("PUT", "/v1/connections/"+id+"/topics/late", "", nil); status != 204 {
		t.Fatalf("subscribe: %d %s", status, body)
	}
	info := c.admin.json("GET", "/v1/connections/"+id, "", nil, 200)
	if info["id"] != id || info["user"] != "ann" || fmt.Sprint(info["topics"]) != "[late]" {
		t.Fatalf("info through C: %v", info)
	}
	settle(t, nodes)
	b.admin.json("POST", "/v1/topics/late/messages", "text/plain", []byte("late news"), 202)
	if _, msg := readMsg(t, conn); msg != "late news" {
		t.Fatalf("got %q", msg)
	}
	if status, _ := b.admin.do("DELETE", "/v1/connections/"+id+"/topics/late", "", nil); status != 204 {
		t.Fatalf("unsubscribe: %d", status)
	}
	// Close it through C.
	if v := c.admin.json("DELETE", "/v1/connections/"+id+"?code=4000&reason=bye", "", nil, 202); v["id"] != id {
		t.Fatalf("close: %v", v)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := conn.ReadMessage()
	if ce, ok := err.(*gorilla.CloseError); !ok || ce.Code != 4000 || ce.Text != "bye" {
		t.Fatalf("close: %v", err)
	}
	// Library: SendTo by cluster ID.
	conn2, id2 := dialNode(t, c, "")
	if err := a.srv.SendTo(t.Context(), id2, gateway.OpText, []byte("to c")); err != nil {
		t.Fatal(err)
	}
	if _, msg := readMsg(t, conn2); msg != "to c" {
		t.Fatalf("got %q", msg)
	}
	if err := a.srv.SendTo(t.Context(), c.srv.NodeName()+"-999", gateway.OpText, nil); !errors.Is(err, gateway.ErrClosed) {
		t.Fatalf("SendTo unknown: %v", err)
	}
}

func TestClusterListing(t *testing.T) {
	nodes := startCluster(t, natstest.Start(t), 3, nil)
	want := map[string]bool{}
	for i, nd := range nodes {
		for range 2 + i {
			_, id := dialNode(t, nd, "user=u"+fmt.Sprint(i))
			want[id] = true
		}
	}
	for _, limit := range []int{1, 2, 4, 100} {
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			v := nodes[1].admin.json("GET", fmt.Sprintf("/v1/connections?limit=%d&cursor=%s", limit, cursor), "", nil, 200)
			if num(t, v, "nodes") != 3 {
				t.Fatalf("nodes: %v", v)
			}
			list := v["connections"].([]any)
			if len(list) > limit {
				t.Fatalf("page of %d over limit %d", len(list), limit)
			}
			for _, item := range list {
				id := item.(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("limit %d: %s twice", limit, id)
				}
				seen[id] = true
			}
			cursor, _ = v["next_cursor"].(string)
			if cursor == "" {
				break
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("limit %d: listed %d of %d", limit, len(seen), len(want))
		}
		for id := range want {
			if !seen[id] {
				t.Fatalf("limit %d: %s missing", limit, id)
			}
		}
	}
	// By user, across the cluster; and this node only.
	v := nodes[0].admin.json("GET", "/v1/connections?user=u2", "", nil, 200)
	if n := len(v["connections"].([]any)); n != 4 {
		t.Fatalf("user u2: %d connections", n)
	}
	v = nodes[0].admin.json("GET", "/v1/connections?scope=local", "", nil, 200)
	if n := len(v["connections"].([]any)); n != 2 {
		t.Fatalf("scope=local: %d connections", n)
	}
	nodes[0].admin.json("GET", "/v1/connections?scope=everywhere", "", nil, 400)
	nodes[0].admin.json("GET", "/v1/connections?cursor=bad.node:1", "", nil, 400)
}

// NATS goes away: local echo and local pushes go on, pushes that need
// another node get 503, /readyz and the metrics say so; NATS comes back:
// the gateways reconnect by themselves and pushes to other nodes work.
func TestClusterNATSDown(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 2, func(c *gateway.Config) { c.ClusterReadyCheck = c.NodeID == "gwb" })
	a, b := nodes[0], nodes[1]
	local, localID := dialNode(t, a, "user=ann")
	remote, remoteID := dialNode(t, b, "user=ann")
	settle(t, nodes)
	nats.Stop()
	waitFor(t, func() bool { return !a.srv.ClusterStats().Connected && !b.srv.ClusterStats().Connected })

	local.WriteMessage(gorilla.TextMessage, []byte("echo"))
	if _, msg := readMsg(t, local); msg != "echo" {
		t.Fatalf("echo: %q", msg)
	}
	a.admin.json("POST", "/v1/connections/"+localID+"/messages", "text/plain", []byte("local push"), 202)
	if _, msg := readMsg(t, local); msg != "local push" {
		t.Fatalf("local push: %q", msg)
	}
	if v := a.admin.json("POST", "/v1/connections/"+remoteID+"/messages", "text/plain", []byte("x"), 503); !strings.Contains(fmt.Sprint(v["error"]), "NATS") {
		t.Fatalf("remote push: %v", v)
	}
	v := a.admin.json("POST", "/v1/users/ann/messages", "text/plain", []byte("partial"), 503)
	if v["partial"] != true || num(t, v, "connections") != 1 {
		t.Fatalf("user push: %v", v)
	}
	if _, msg := readMsg(t, local); msg != "partial" {
		t.Fatalf("partial push: %q", msg)
	}
	if _, err := a.srv.Publish("x", gateway.OpText, nil); !errors.Is(err, gateway.ErrClusterUnavailable) {
		t.Fatalf("Publish: %v", err)
	}
	// /readyz: a stays in service with a note, b (cluster_ready_check) is out.
	for _, tc := range []struct {
		nd     clusterNode
		status int
	}{{a, 200}, {b, 503}} {
		resp, err := http.Get("http://" + tc.nd.srv.Addr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("/readyz: %d, want %d", resp.StatusCode, tc.status)
		}
	}
	m := scrape(t, a.admin)
	if m["wsgate_cluster_connected"] != 0 || m[`wsgate_cluster_errors_total{reason="unavailable"}`] < 3 {
		t.Fatalf("metrics: connected %v, unavailable %v", m["wsgate_cluster_connected"], m[`wsgate_cluster_errors_total{reason="unavailable"}`])
	}

	nats.Restart()
	waitFor(t, func() bool { return a.srv.ClusterStats().Connected && b.srv.ClusterStats().Connected })
	// b's subscriptions went to the new server before b reported the
	// reconnect; a publishes after its own reconnect, on the same server.
	waitFor(t, func() bool { return len(a.srv.Nodes()) == 2 })
	a.admin.json("POST", "/v1/connections/"+remoteID+"/messages", "text/plain", []byte("back"), 202)
	if _, msg := readMsg(t, remote); msg != "back" {
		t.Fatalf("after the reconnect: %q", msg)
	}
	v = a.admin.json("POST", "/v1/users/ann/messages", "text/plain", []byte("both"), 202)
	if num(t, v, "connections") != 2 {
		t.Fatalf("user push after the reconnect: %v", v)
	}
	resp, err := http.Get("http://" + b.srv.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz after the reconnect: %d", resp.StatusCode)
	}
	if m := scrape(t, a.admin); m["wsgate_cluster_connected"] != 1 || m["wsgate_cluster_nodes"] != 2 {
		t.Fatalf("metrics after the reconnect: %v %v", m["wsgate_cluster_connected"], m["wsgate_cluster_nodes"])
	}
}

// GET /v1/cluster lists the nodes; one that shuts down leaves it.
func TestClusterNodes(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 2, nil)
	c, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", NATS: []string{nats.URL()}, NodeID: "gwc",
		ClusterName: "test", ClusterHeartbeat: 100 * time.Millisecond}, gateway.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	dialNode(t, nodes[1], "")
	waitFor(t, func() bool {
		var out struct {
			Nodes []gateway.NodeInfo `json:"nodes"`
		}
		_, body := nodes[0].admin.do("GET", "/v1/cluster", "", nil)
		json.Unmarshal(body, &out)
		return len(out.Nodes) == 3 && out.Nodes[1].Connections == 1 && out.Nodes[1].ID == "gwb"
	})
	v := nodes[0].admin.json("GET", "/v1/cluster", "", nil, 200)
	if v["cluster"] != "test" || v["connected"] != true || v["node"] != nodes[0].srv.NodeName() {
		t.Fatalf("/v1/cluster: %v", v)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(nodes[0].srv.Nodes()) == 2 })
}

// Without a cluster the API is as it was: decimal IDs, one node.
func TestSingleNodeUnchanged(t *testing.T) {
	srv, a := adminServer(t, gateway.Config{})
	_, id := dialUser(t, srv, "ann")
	for _, ch := range id {
		if ch < '0' || ch > '9' {
			t.Fatalf("single-node id %q is not decimal", id)
		}
	}
	v := a.json("GET", "/v1/cluster", "", nil, 200)
	if v["connected"] != false || len(v["nodes"].([]any)) != 1 {
		t.Fatalf("/v1/cluster: %v", v)
	}
	v = a.json("POST", "/v1/users/ann/messages", "text/plain", []byte("x"), 202)
	if _, ok := v["nodes"]; ok {
		t.Fatalf("single node push answers nodes: %v", v)
	}
	if srv.NodeName() != "" || srv.ClusterStats() != (gateway.ClusterStats{}) {
		t.Fatal("a cluster without NATS")
	}
}

// The backend's hooks see a connection's cluster ID, the one the admin API
// of any node takes.
func TestClusterBackendSeesClusterIDs(t *testing.T) {
	nats := natstest.Start(t)
	b := newFakeBackend(t)
	var headerID atomic.Value
	b.set(func(b *fakeBackend) {
		b.message = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			headerID.Store(r.Header.Get("X-Wsgate-Connection-Id"))
			w.WriteHeader(http.StatusNoContent)
		}
	})
	srv := startServer(t, gateway.Config{NATS: []string{nats.URL()}, NodeID: "be", Backend: b.URL,
		ClusterHeartbeat: 100 * time.Millisecond, PingInterval: -1}, nil)
	c := mustDial(t, wsURL(srv), nil)
	id, _ := b.lastConnect()["id"].(string)
	if !strings.HasPrefix(id, srv.NodeName()+"-") {
		t.Fatalf("connect hook id %q, node %q", id, srv.NodeName())
	}
	c.WriteMessage(gorilla.TextMessage, []byte("hi"))
	waitFor(t, func() bool { v, _ := headerID.Load().(string); return v != "" })
	if got := headerID.Load().(string); got != id {
		t.Fatalf("message hook id %q, connect hook id %q", got, id)
	}
	if err := srv.SendTo(t.Context(), id, gateway.OpText, []byte("by id")); err != nil {
		t.Fatal(err)
	}
	if _, msg := readMsg(t, c); msg != "by id" {
		t.Fatalf("got %q", msg)
	}
}

// The broadcast app in a cluster: a message one client sends reaches
// every client of every node, the sender included, once and in order.
func TestClusterBroadcastApp(t *testing.T) {
	nats := natstest.Start(t)
	var srvs []*gateway.Server
	for i := range 3 {
		app := &gateway.Broadcast{}
		srv, err := gateway.NewServer(gateway.Config{
			Addr: "127.0.0.1:0", Loops: 2, NATS: []string{nats.URL()}, NodeID: fmt.Sprintf("gw%c", 'a'+i),
			ClusterName: "bcast", ClusterHeartbeat: 100 * time.Millisecond,
		}, app)
		if err != nil {
			t.Fatal(err)
		}
		app.Server = srv
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		srvs = append(srvs, srv)
	}
	var clients []*gorilla.Conn
	for _, s := range srvs {
		waitFor(t, func() bool { return len(s.Nodes()) == 3 })
		for range 2 {
			clients = append(clients, mustDial(t, wsURL(s), nil))
		}
	}
	for _, s := range srvs {
		waitFor(t, func() bool {
			st := s.ClusterStats()
			return st.Pending == 0 && st.Connected && s.Stats().ConnsOpen == 2
		})
	}
	const n = 20
	for i := range n {
		if err := clients[1].WriteMessage(gorilla.TextMessage, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for ci, c := range clients {
		for i := range n {
			if _, m := readMsg(t, c); m != fmt.Sprintf("m%d", i) {
				t.Fatalf("client %d (node %d): message %d is %q", ci, ci/2, i, m)
			}
		}
	}
	// Nothing more: each came once.
	if err := clients[0].WriteMessage(gorilla.TextMessage, []byte("end")); err != nil {
		t.Fatal(err)
	}
	for ci, c := range clients {
		if _, m := readMsg(t, c); m != "end" {
			t.Fatalf("client %d: %q after the %d messages, want the marker", ci, m, n)
		}
	}
}
