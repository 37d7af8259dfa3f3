package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeLocal is a gateway of counters: which topics and users it has,
// and what it was handed.
type fakeLocal struct {
	mu     sync.Mutex
	topics map[string]int // subscribers
	users  map[string]int // connections
	got    []string       // "t:name:payload", "u:...", "a::..."
	conns  atomic.Int64
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{topics: map[string]int{}, users: map[string]int{}}
}

func (f *fakeLocal) record(kind, name string, payload []byte) {
	f.mu.Lock()
	f.got = append(f.got, kind+":"+name+":"+string(payload))
	f.mu.Unlock()
}

func (f *fakeLocal) DeliverTopic(_ MsgID, name string, _ byte, p []byte) Delivery {
	f.record("t", name, p)
	f.mu.Lock()
	defer f.mu.Unlock()
	return Delivery{Connections: f.topics[name], Sent: f.topics[name]}
}

func (f *fakeLocal) DeliverUser(_ MsgID, name string, _ byte, p []byte) Delivery {
	f.record("u", name, p)
	f.mu.Lock()
	defer f.mu.Unlock()
	return Delivery{Connections: f.users[name], Sent: f.users[name]}
}

func (f *fakeLocal) DeliverAll(_ MsgID, _ byte, p []byte) Delivery {
	f.record("a", "", p)
	return Delivery{}
}

func (f *fakeLocal) HasTopic(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.topics[name] > 0
}

func (f *fakeLocal) HasUser(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[name] > 0
}

func (f *fakeLocal) Status() Status { return Status{Connections: f.conns.Load()} }

func (f *fakeLocal) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// waitFor polls cond, bounded by a count of tries rather than asserting
// a duration.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 1000 {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testNode struct {
	*Node
	local *fakeLocal
}

func startNode(t *testing.T, url, id string, routes ...Route) testNode {
	t.Helper()
	l := newFakeLocal()
	n, err := Start(Config{URLs: []string{url}, Name: "test", NodeID: id, Local: l, Routes: routes,
		Heartbeat: 100 * time.Millisecond, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return testNode{n, l}
}

// subscribe gives n's gateway subscribers of topic and waits until the
// NATS server has the subscription.
func (n testNode) subscribe(t *testing.T, topic string, subs int) {
	n.local.mu.Lock()
	n.local.topics[topic] = subs
	n.local.mu.Unlock()
	n.TopicInterest(topic, subs > 0)
	waitFor(t, "interest applied", func() bool { return n.Stats().Pending == 0 })
}

func (n testNode) connectUser(t *testing.T, user string, conns int) {
	n.local.mu.Lock()
	n.local.users[user] = conns
	n.local.mu.Unlock()
	n.UserInterest(user, conns > 0)
	waitFor(t, "interest applied", func() bool { return n.Stats().Pending == 0 })
}

func waitNodes(t *testing.T, want int, nodes ...testNode) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, fmt.Sprintf("%s to see %d nodes", n.Name(), want), func() bool { return len(n.Nodes()) == want })
	}
}

func TestPublishReachesInterestedNodesOnce(t *testing.T) {
	srv := natstest.Start(t)
	a, b, c := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b"), startNode(t, srv.URL(), "c")
	waitNodes(t, 3, a, b, c)
	a.subscribe(t, "room.1", 2)
	b.subscribe(t, "room.1", 3)
	for i := range 50 {
		if err := c.PublishTopic(MsgID{}, "room.1", 1, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []testNode{a, b} {
		waitFor(t, "50 messages", func() bool { return len(n.local.received()) >= 50 })
		got := n.local.received()
		if len(got) != 50 {
			t.Fatalf("%s: %d messages", n.Name(), len(got))
		}
		for i, m := range got {
			if want := fmt.Sprintf("t:room.1:m%d", i); m != want {
				t.Fatalf("%s: message %d is %q, want %q (order)", n.Name(), i, m, want)
			}
		}
	}
	// The publisher's own connection never hears its messages back
	// (NoEcho), even when it has subscribers itself.
	c.subscribe(t, "room.1", 1)
	c.PublishTopic(MsgID{}, "room.1", 1, []byte("x"))
	waitFor(t, "51st", func() bool { return len(b.local.received()) == 51 })
	if got := c.local.received(); len(got) != 0 {
		t.Fatalf("publisher received its own messages: %q", got)
	}

	// Unsubscribed: the NATS subscription goes.
	a.subscribe(t, "room.1", 0)
	if st := a.Stats(); st.Subscriptions != 0 {
		t.Fatalf("a still holds %d subscriptions", st.Subscriptions)
	}
	c.PublishTopic(MsgID{}, "room.1", 1, []byte("y"))
	waitFor(t, "52nd", func() bool { return len(b.local.received()) == 52 })
	if got := len(a.local.received()); got != 51 {
		t.Fatalf("a got %d messages after unsubscribing", got)
	}
}

func TestGatherCountsEveryNode(t *testing.T) {
	srv := natstest.Start(t)
	a, b, c := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b"), startNode(t, srv.URL(), "c")
	waitNodes(t, 3, a, b, c)
	a.connectUser(t, "ann", 2)
	b.connectUser(t, "ann", 3)
	// The asking node delivers locally (its own count comes in) and
	// needs no subscription.
	d, reach, err := c.GatherUser(context.Background(), c.NextID(), "ann", 1, []byte("hi"), Delivery{Connections: 1, Sent: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Connections != 6 || d.Sent != 6 || reach.Nodes != 3 || reach.Missing != 0 {
		t.Fatalf("gather: %+v %+v", d, reach)
	}
	// A topic nobody else has: every node still acks the barrier.
	d, reach, err = a.GatherTopic(context.Background(), a.NextID(), "nobody", 1, []byte("x"), Delivery{})
	if err != nil || d.Connections != 0 || reach.Nodes != 3 {
		t.Fatalf("gather nobody: %+v %+v %v", d, reach, err)
	}
}

func TestRequestAndScatter(t *testing.T) {
	srv := natstest.Start(t)
	echo := func(name string) Route {
		return Route{Verb: 7, Name: "echo", Serve: func(_ context.Context, body []byte) (int, []byte) {
			return 200, append([]byte(name+":"), body...)
		}}
	}
	slow := Route{Verb: 8, Name: "slow", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
		<-ctx.Done()
		return 200, nil
	}}
	a, b := startNode(t, srv.URL(), "a", echo("a"), slow), startNode(t, srv.URL(), "b", echo("b"), slow)
	waitNodes(t, 2, a, b)
	ans, err := a.Request(context.Background(), b.Name(), 7, []byte("ping"))
	if err != nil || ans.Status != 200 || string(ans.Body) != "b:ping" || ans.Node != b.Name() {
		t.Fatalf("request: %+v %v", ans, err)
	}
	if ans, err := a.Request(context.Background(), a.Name(), 7, []byte("self")); err != nil || string(ans.Body) != "a:self" {
		t.Fatalf("self request: %+v %v", ans, err)
	}
	if ans, err := a.Request(context.Background(), b.Name(), 99, nil); err != nil || ans.Status != 501 {
		t.Fatalf("unknown verb: %+v %v", ans, err)
	}
	if _, err := a.Request(context.Background(), "gone-aaaaaaaa", 7, nil); !errors.Is(err, ErrNoNode) {
		t.Fatalf("no node: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.Request(ctx, b.Name(), 8, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow: %v", err)
	}
	answers, reach, err := a.Scatter(context.Background(), 7, []byte("all"))
	if err != nil || len(answers) != 2 || reach.Nodes != 2 {
		t.Fatalf("scatter: %+v %+v %v", answers, reach, err)
	}
	if string(answers[0].Body) != "a:all" || string(answers[1].Body) != "b:all" {
		t.Fatalf("scatter answers: %q %q", answers[0].Body, answers[1].Body)
	}
}

// A node that says goodbye leaves the registry at once; one that stops
// sending heartbeats leaves after three intervals, by its clock.
func TestRegistry(t *testing.T) {
	srv := natstest.Start(t)
	a, b, c := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b"), startNode(t, srv.URL(), "c")
	waitNodes(t, 3, a, b, c)
	b.local.conns.Store(7)
	waitFor(t, "b's count", func() bool {
		for _, ni := range a.Nodes() {
			if ni.Name == b.Name() && ni.Connections == 7 {
				return true
			}
		}
		return false
	})
	c.Close(context.Background())
	// The goodbye is the last message c sent: once a has it, c is gone.
	waitNodes(t, 2, a, b)

	// Expiry, with a made-up clock and heartbeats fed by hand.
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	r := &registry{}
	r.init(&Node{name: "self", beat: time.Second, now: func() time.Time { return time.Unix(0, now.Load()) }})
	r.n.log = a.log
	r.heard([]byte(`{"node":"x-1","interval_ms":1000}`))
	now.Add(int64(2900 * time.Millisecond))
	if len(r.live()) != 1 {
		t.Fatal("x forgotten before three intervals")
	}
	now.Add(int64(200 * time.Millisecond))
	if len(r.live()) != 0 {
		t.Fatal("x still live after three intervals")
	}
}

// NATS goes away: calls that need it fail at once with ErrUnavailable;
// it comes back: the node reconnects by itself and NATS's client has
// sent the subscriptions again, including one made while it was away.
func TestReconnect(t *testing.T) {
	srv := natstest.Start(t)
	a, b := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b")
	waitNodes(t, 2, a, b)
	a.subscribe(t, "news", 1)
	srv.Stop()
	waitFor(t, "disconnect", func() bool { return !a.Connected() && !b.Connected() })
	if err := b.PublishTopic(MsgID{}, "news", 1, []byte("lost")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish while disconnected: %v", err)
	}
	if _, _, err := b.GatherTopic(context.Background(), b.NextID(), "news", 1, nil, Delivery{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("gather while disconnected: %v", err)
	}
	if _, err := b.Request(context.Background(), a.Name(), 1, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("request while disconnected: %v", err)
	}
	a.local.mu.Lock()
	a.local.topics["later"] = 1
	a.local.mu.Unlock()
	a.TopicInterest("later", true)
	srv.Restart()
	waitFor(t, "reconnect", func() bool { return a.Connected() && b.Connected() })
	// The client sends its subscriptions before it reports the reconnect;
	// a flush makes sure the server has read them.
	waitFor(t, "resubscribed", func() bool { return a.Stats().Pending == 0 && a.nc.Flush() == nil })
	if err := b.PublishTopic(MsgID{}, "news", 1, []byte("back")); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishTopic(MsgID{}, "later", 1, []byte("new")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "messages after the reconnect", func() bool { return len(a.local.received()) == 2 })
	if got := a.local.received(); got[0] != "t:news:back" || got[1] != "t:later:new" {
		t.Fatalf("after reconnect: %q", got)
	}
	if st := b.Stats(); st.Unavailable < 3 || st.Reconnects < 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// A node serving maxBlocking blocking requests answers the next one 503
// busy, which Answer.Busy tells from a route's own 503; the request
// succeeds again once one ends.
func TestBusyAnswer(t *testing.T) {
	srv := natstest.Start(t)
	gate := make(chan struct{})
	hold := Route{Verb: 8, Name: "hold", Blocking: true, Serve: func(ctx context.Context, body []byte) (int, []byte) {
		if string(body) == "now" {
			return 503, []byte(`{"error":"the route's own"}`)
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return 200, nil
	}}
	a, b := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b", hold)
	waitNodes(t, 2, a, b)
	if ans, err := a.Request(context.Background(), b.Name(), 8, []byte("now")); err != nil || ans.Status != 503 || ans.Busy() {
		t.Fatalf("the route's 503: %+v %v (busy %v)", ans, err, ans.Busy())
	}
	done := make(chan struct{}, maxBlocking)
	for range maxBlocking {
		go func() {
			a.Request(context.Background(), b.Name(), 8, nil)
			done <- struct{}{}
		}()
	}
	busy := false
	for deadline := time.Now().Add(10 * time.Second); !busy && time.Now().Before(deadline); {
		ans, err := a.Request(context.Background(), b.Name(), 8, []byte("now"))
		busy = err == nil && ans.Busy()
	}
	if !busy {
		t.Fatal("never busy with maxBlocking requests in flight")
	}
	close(gate)
	for range maxBlocking {
		<-done
	}
	if ans, err := a.Request(context.Background(), b.Name(), 8, nil); err != nil || ans.Status != 200 {
		t.Fatalf("after: %+v %v", ans, err)
	}
}
