package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// End to end: Debian's nats-server and three gateway processes (the
// binary TestMain built), driven through their admin APIs with gorilla
// clients.

func threeNodes(t *testing.T, n *natsProc) (backend string, gws []*gatewayProc) {
	backend = queryBackend(t)
	for _, id := range []string{"gwa", "gwb", "gwc"} {
		gws = append(gws, start(t, clusterArgs(n.url(), backend, id)...))
	}
	waitCluster(t, 3, gws...)
	return backend, gws
}

func TestClusterEndToEnd(t *testing.T) {
	_, gws := threeNodes(t, startNATS(t))
	a, b, c := gws[0], gws[1], gws[2]

	// Push to a user with connections on all three nodes: each gets it once.
	var anns []*gorilla.Conn
	for _, gw := range gws {
		anns = append(anns, dialQuery(t, gw.addr, "user=ann"))
	}
	// Subscribers of a topic on A and B.
	subA := dialQuery(t, a.addr, "user=sa&topic=room.1")
	subB := dialQuery(t, b.addr, "user=sb&topic=room.1")
	waitCluster(t, 3, gws...)
	for _, msg := range []string{"hello ann", "after"} {
		v := mustAPI(t, a, "POST", "/v1/users/ann/messages", msg, 202)
		if count(v, "connections") != 3 || count(v, "sent") != 3 || count(v, "nodes") != 3 {
			t.Fatalf("user push: %v", v)
		}
	}
	for i, cl := range anns {
		if got, next := read(t, cl), read(t, cl); got != "hello ann" || next != "after" {
			t.Fatalf("ann on node %d: %q then %q, want each push once", i, got, next)
		}
	}

	// Publish via C to the topic's subscribers on A and B.
	for _, msg := range []string{"news", "after"} {
		v := mustAPI(t, c, "POST", "/v1/topics/room.1/messages", msg, 202)
		if count(v, "subscribers") != 2 || count(v, "nodes") != 3 {
			t.Fatalf("topic push: %v", v)
		}
	}
	for _, cl := range []*gorilla.Conn{subA, subB} {
		if got, next := read(t, cl), read(t, cl); got != "news" || next != "after" {
			t.Fatalf("subscriber: %q then %q", got, next)
		}
	}

	// Push to a connection on A through B's admin API.
	idA := idOf(t, a, "sa")
	if !strings.HasPrefix(idA, "gwa-") {
		t.Fatalf("connection on A has id %q", idA)
	}
	mustAPI(t, b, "POST", "/v1/connections/"+idA+"/messages", "to sa via b", 202)
	if got := read(t, subA); got != "to sa via b" {
		t.Fatalf("push via B: %q", got)
	}
	// 404 from A for an ID it does not know.
	nodeA := idA[:strings.LastIndexByte(idA, '-')]
	if st, v := api(t, b, "POST", "/v1/connections/"+nodeA+"-77/messages", "x"); st != 404 {
		t.Fatalf("unknown id on A: %d %v", st, v)
	}
	// Connection info of A through C.
	if v := mustAPI(t, c, "GET", "/v1/connections/"+idA, "", 200); v["user"] != "sa" || fmt.Sprint(v["topics"]) != "[room.1]" {
		t.Fatalf("info: %v", v)
	}

	// Cluster-wide listing with pagination: 3 anns, sa, sb.
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		v := mustAPI(t, b, "GET", "/v1/connections?limit=2&cursor="+cursor, "", 200)
		for _, it := range v["connections"].([]any) {
			id := it.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		if count(v, "nodes") != 3 {
			t.Fatalf("listing: %v", v)
		}
		if cursor, _ = v["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d connections, want 5: %v", len(seen), seen)
	}

	// DELETE a connection on A through C.
	mustAPI(t, c, "DELETE", "/v1/connections/"+idA+"?code=4001&reason=moved", "", 202)
	subA.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := subA.ReadMessage()
	if ce, ok := err.(*gorilla.CloseError); !ok || ce.Code != 4001 {
		t.Fatalf("closed through C: %v", err)
	}

	// A node killed without a goodbye is gone from the others' view once
	// its heartbeats stop.
	c.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	until(t, "C to leave the cluster", func() bool { return len(viewOf(t, a).Nodes) == 2 })
	t.Logf("a killed node left /v1/cluster after %v (heartbeat 200ms)", time.Since(killed).Round(10*time.Millisecond))
}

// Four --reuse-port gateways on one port; 400 connections of one user,
// spread by the kernel: one POST to any admin API reaches all 400.
func TestClusterReusePort(t *testing.T) {
	n := startNATS(t)
	backend := queryBackend(t)
	addr := freePort(t)
	var gws []*gatewayProc
	for i := range 4 {
		gws = append(gws, startAt(t, addr, append(clusterArgs(n.url(), backend, fmt.Sprintf("rp%d", i)), "--reuse-port")...))
	}
	waitCluster(t, 4, gws...)
	const conns = 400
	clients := make([]*gorilla.Conn, conns)
	for i := range clients {
		clients[i] = dialQuery(t, addr, "user=many")
	}
	waitCluster(t, 4, gws...)
	for _, nd := range viewOf(t, gws[0]).Nodes {
		if nd.Connections == 0 {
			t.Fatalf("the kernel gave node %s no connection: %+v", nd.Node, viewOf(t, gws[0]).Nodes)
		}
	}
	v := mustAPI(t, gws[3], "POST", "/v1/users/many/messages", "to all 400", 202)
	if count(v, "connections") != conns || count(v, "sent") != conns || count(v, "nodes") != 4 {
		t.Fatalf("push: %v", v)
	}
	var wg sync.WaitGroup
	errs := make(chan string, conns)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "to all 400" {
				errs <- fmt.Sprintf("%q %v", msg, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// Kill nats-server: local echo and local pushes go on, pushes to other
// nodes get 503; start it again: they work again without restarting any
// gateway.
func TestClusterNATSKilled(t *testing.T) {
	n := startNATS(t)
	_, gws := threeNodes(t, n)
	a, b := gws[0], gws[1]
	onA := dialQuery(t, a.addr, "user=local")
	onB := dialQuery(t, b.addr, "user=remote")
	waitCluster(t, 3, gws...)
	idA, idB := idOf(t, a, "local"), idOf(t, b, "remote")

	n.kill()
	until(t, "the gateways to notice", func() bool { return !viewOf(t, a).Connected })
	onA.WriteMessage(gorilla.TextMessage, []byte("echo"))
	if got := read(t, onA); got != "echo" {
		t.Fatalf("echo: %q", got)
	}
	mustAPI(t, a, "POST", "/v1/connections/"+idA+"/messages", "local push", 202)
	if got := read(t, onA); got != "local push" {
		t.Fatalf("local push: %q", got)
	}
	if v := mustAPI(t, a, "POST", "/v1/connections/"+idB+"/messages", "x", 503); !strings.Contains(fmt.Sprint(v["error"]), "NATS") {
		t.Fatalf("remote push: %v", v)
	}
	if v := mustAPI(t, a, "POST", "/v1/users/remote/messages", "x", 503); v["partial"] != true {
		t.Fatalf("user push: %v", v)
	}
	resp, err := http.Get("http://" + a.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz without --cluster-ready-check: %d", resp.StatusCode)
	}

	n.start()
	restarted := time.Now()
	until(t, "remote pushes to work again", func() bool {
		st, _ := api(t, a, "POST", "/v1/connections/"+idB+"/messages", "back")
		return st == 202
	})
	t.Logf("remote pushes worked again %v after nats-server restarted", time.Since(restarted).Round(10*time.Millisecond))
	if got := read(t, onB); got != "back" {
		t.Fatalf("after the restart: %q", got)
	}
}

// Drain one node with SIGTERM while a loadtest storm (--storm server)
// holds connections of one user on three --reuse-port gateways: the
// drained node's clients come back on the others, and pushes to their
// user reach every one of them.
func TestClusterDrainMovesClients(t *testing.T) {
	n := startNATS(t)
	backend := queryBackend(t)
	addr := freePort(t)
	var gws []*gatewayProc
	for i := range 3 {
		gws = append(gws, startAt(t, addr, append(clusterArgs(n.url(), backend, fmt.Sprintf("dr%d", i)),
			"--reuse-port", "--drain-window", "1s", "--drain-grace", "1s")...))
	}
	waitCluster(t, 3, gws...)
	loadtest := filepath.Join(t.TempDir(), "loadtest")
	if out, err := exec.Command("go", "build", "-o", loadtest, "../../loadtest").CombinedOutput(); err != nil {
		t.Fatalf("building loadtest: %v\n%s", err, out)
	}
	const conns = 60
	dir := t.TempDir()
	ready, report := filepath.Join(dir, "ready"), filepath.Join(dir, "report.json")
	lt := exec.Command(loadtest, "storm", "--storm", "server", "--url", "ws://"+addr+"/ws?user=storm",
		"--conns", fmt.Sprint(conns), "--ramp", "300", "--backoff", "100ms", "--backoff-max", "400ms",
		"--duration", "8s", "--ready-file", ready, "--json", report, "--quiet")
	var logs syncLog
	lt.Stdout, lt.Stderr = &logs, &logs
	if err := lt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lt.Process.Kill(); lt.Wait() })
	until(t, "the ramp", func() bool { _, err := os.Stat(ready); return err == nil })
	waitCluster(t, 3, gws...)
	var drained int64
	for _, nd := range viewOf(t, gws[0]).Nodes {
		if nd.NodeID == "dr0" {
			drained = nd.Connections
		}
	}
	if drained == 0 {
		t.Fatal("the kernel gave the node to drain no connection")
	}
	gws[0].cmd.Process.Signal(syscall.SIGTERM)
	until(t, "dr0 to drain and leave", func() bool { return len(viewOf(t, gws[1]).Nodes) == 2 })
	// Its clients reconnect to dr1 and dr2, with backoff; the pushes find
	// them there.
	var last map[string]any
	until(t, "every client to be back and reached", func() bool {
		waitCluster(t, 2, gws[1:]...)
		last = mustAPI(t, gws[1], "POST", "/v1/users/storm/messages", "still here", 202)
		return count(last, "connections") == conns
	})
	if count(last, "sent") != conns || count(last, "nodes") != 2 {
		t.Fatalf("push after the drain: %v", last)
	}
	if err := lt.Wait(); err != nil {
		t.Fatalf("loadtest: %v\n%s", err, logs.String())
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Received   int64            `json:"messages_received"`
		CloseCodes map[string]int64 `json:"close_codes"`
		Storm      struct {
			Dropped   int64 `json:"dropped"`
			Recovered int64 `json:"recovered"`
		} `json:"storm"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Storm.Dropped != drained || rep.Storm.Recovered != drained || rep.CloseCodes["1001"] != drained {
		t.Fatalf("storm: dropped %d, recovered %d, 1001 %d; the drained node had %d", rep.Storm.Dropped, rep.Storm.Recovered, rep.CloseCodes["1001"], drained)
	}
	if rep.Received < conns {
		t.Fatalf("the clients received %d pushes, want at least %d", rep.Received, conns)
	}
}
