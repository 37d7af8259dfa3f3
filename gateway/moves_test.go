package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
)

// What a move holds is bounded, matched by user, topic or everyone, and
// what it drops (over the bound, or abandoned) is counted.
func TestMovesHoldBoundAndCount(t *testing.T) {
	var dropped int64
	var m moves
	m.init(func(n int64) { dropped += n })
	g := m.begin("tok", "ann", []string{"news"}, 10)
	other := m.begin("tok2", "bob", nil, 100)
	id := func(s uint64) cluster.MsgID { return cluster.MsgID{Origin: 7, Seq: s} }
	m.mu.RLock()
	m.hold(kindUser, "ann", id(1), OpText, []byte("aaaa"))
	m.hold(kindTopic, "news", id(2), OpText, []byte("bbbb"))
	m.hold(kindTopic, "sport", id(3), OpText, []byte("cccc")) // not its topic
	m.hold(kindAll, "", id(4), OpText, []byte("dddd"))        // over its 10 bytes
	m.hold(kindUser, "carl", id(5), OpText, []byte("eeee"))   // nobody's
	m.mu.RUnlock()
	if !m.wants(kindUser, "ann") || !m.wants(kindTopic, "news") || m.wants(kindTopic, "sport") || !m.wants(kindUser, "bob") {
		t.Fatal("wants does not follow the merges")
	}
	if len(m.older(time.Now().Add(time.Hour))) != 2 || len(m.older(time.Now().Add(-time.Hour))) != 0 {
		t.Fatal("older")
	}
	m.mu.Lock()
	held, over := m.stopLocked(g)
	m.mu.Unlock()
	if len(held) != 2 || held[0].ID.Seq != 1 || held[1].ID.Seq != 2 || over != 1 {
		t.Fatalf("held %+v, over %d", held, over)
	}
	if m.abandon(g) != 0 || dropped != 0 {
		t.Fatal("a stopped merge dropped again")
	}
	if n := m.abandon(other); n != 1 || dropped != 1 { // bob's: the broadcast
		t.Fatalf("abandon: %d, dropped %d", n, dropped)
	}
	if m.wants(kindUser, "ann") || m.wants(kindUser, "bob") || len(m.merges) != 0 {
		t.Fatal("merges left after stop and abandon")
	}
}

// published waits for the own messages numbered up to its mark, not for
// later ones, and gives up when its context ends.
func TestMovesPublishedWaitsForUnsent(t *testing.T) {
	var m moves
	m.init(func(int64) {})
	m.numbered(3)
	m.numbered(5)
	m.numbered(9)
	done := make(chan error, 1)
	go func() { done <- m.published(context.Background(), 5) }()
	m.sent(3)
	select {
	case err := <-done:
		t.Fatalf("returned (%v) with 5 unsent", err)
	case <-time.After(20 * time.Millisecond):
	}
	m.sent(5)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting with nothing up to 5 unsent (9 is later)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.published(ctx, 9); err == nil {
		t.Fatal("returned with 9 unsent")
	}
	m.sent(9)
	if err := m.published(context.Background(), 100); err != nil || len(m.unsent) != 0 || len(m.wake) != 0 {
		t.Fatalf("err %v, %d unsent, %d waiters left", err, len(m.unsent), len(m.wake))
	}
}
