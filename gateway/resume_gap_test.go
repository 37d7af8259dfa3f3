package gateway_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
)

// newsApp subscribes every session to "news" when it opens (as a
// backend's connect hook would), echoes, and counts as sessionApp does.
type newsApp struct{ sessionApp }

func (a *newsApp) OnOpen(c *gateway.Conn) {
	a.sessionApp.OnOpen(c)
	_ = c.Subscribe("news")
}

// Sessions moved between nodes over and over while a third node pushes
// to their user and their topic every few milliseconds: every resume is
// `resumed`, and each numbered message reaches the client exactly once
// and in order, across every move.
//
// Two cases (docs/cluster.md, "Sessions that move"): "plain", where B
// subscribes to the user and the topic for the move and A unsubscribes
// after it, and "interest held", where a second connection of the user,
// subscribed to the topic, stays on both nodes, so that both receive
// every push throughout and B must tell the copies A had from the ones it
// must deliver.
//
// "moves on" takes each session from A to B, to C (which asks A, told
// where it went) and back to A: a session moves as often as its client
// does within the window. C is the publishing node, and "publisher
// slow" has it take a millisecond between delivering each message to its
// own connections and handing it to NATS: a move to C must still get
// from B every message C numbered before it began holding for the
// session (without the wait for them, 8-13 were lost in each of 8 runs).
func TestResumeAcrossNodesUnderTraffic(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testResumeUnderTraffic(t, false, 50, 0, 1) })
	t.Run("interest held", func(t *testing.T) { testResumeUnderTraffic(t, true, 50, 0, 1) })
	t.Run("moves on", func(t *testing.T) { testResumeUnderTraffic(t, false, 15, 0, 1, 2, 0) })
	t.Run("publisher slow", func(t *testing.T) {
		defer gateway.SetOwnDeliveredHook(func() { time.Sleep(3 * time.Millisecond) })()
		testResumeUnderTraffic(t, false, 15, 0, 1, 2, 0)
	})
}

// testResumeUnderTraffic runs rounds of a new session on node path[0],
// resumed in turn on each node of path[1:].
func testResumeUnderTraffic(t *testing.T, hold bool, rounds int, path ...int) {
	const secret = "gap-secret"
	nats := natstest.Start(t)
	var srvs []*gateway.Server
	for i := range 3 {
		srvs = append(srvs, startServer(t, gateway.Config{
			NATS: []string{nats.URL()}, NodeID: fmt.Sprintf("gw%c", 'a'+i), ClusterName: "gap",
			ClusterHeartbeat: 100 * time.Millisecond, JWTSecret: secret,
		}, &newsApp{}))
	}
	for _, s := range srvs {
		until(t, "three nodes", func() bool { return len(s.Nodes()) == 3 })
	}
	tok := hsToken(t, secret, jwt.RegisteredClaims{Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	pub := srvs[2]

	// The publisher: u<N> to the user, t<N> to the topic, numbered apart.
	var stop atomic.Bool
	var sentU, sentT atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); !stop.Load(); i++ {
			if _, err := pub.SendUser("ann", gateway.OpText, []byte("u"+strconv.FormatInt(i, 10))); err == nil {
				sentU.Store(i)
			}
			if _, err := pub.Publish("news", gateway.OpText, []byte("t"+strconv.FormatInt(i, 10))); err == nil {
				sentT.Store(i)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	var seq int64            // DATA received in the current session
	last := map[byte]int64{} // the last number of each stream
	var lost, dups, lossyRounds int64
	take := func(m string) {
		if len(m) < 3 || m[0] != 'D' {
			t.Fatalf("not a DATA message: %q", m)
		}
		seq++
		n, err := strconv.ParseInt(m[2:], 10, 64)
		if err != nil {
			t.Fatalf("bad message %q", m)
		}
		k := m[1]
		switch l := last[k]; {
		case l == 0: // the first one seen: the stream starts here
		case n <= l:
			dups++
		case n > l+1:
			lost += n - l - 1
		}
		last[k] = max(last[k], n)
	}
	read := func(conn *gorilla.Conn, n int) {
		for n > 0 {
			if _, m := readMsg(t, conn); !strings.HasPrefix(m, "B") { // a BEAT when the pushes pause
				take(m)
				n--
			}
		}
	}
	if hold {
		for _, n := range srvs[:2] {
			k := mustDial(t, wsURL(n), nil, "bearer."+tok)
			go func() {
				for {
					if _, _, err := k.ReadMessage(); err != nil {
						return
					}
				}
			}()
			until(t, "the second connection", func() bool { return n.Subscribers("news") == 1 && n.ClusterStats().Pending == 0 })
		}
	}
	var moves int
	for r := range rounds {
		c := mustDial(t, wsURL(srvs[path[0]]), nil, "wsgate.resume.v1", "bearer."+tok)
		token := hello(t, c).Get("session")
		seq, last = 0, map[byte]int64{}
		lostBefore := lost
		read(c, 10)
		for _, to := range path[1:] {
			c.UnderlyingConn().Close() // no close frame: the session is suspended
			c = mustDial(t, wsURL(srvs[to]), nil, "wsgate.resume.v1", "bearer."+tok,
				"wsgate.session."+token+"."+strconv.FormatInt(seq, 10))
			h := hello(t, c)
			if h.Get("status") != "resumed" || h.Get("session") != token {
				t.Fatalf("round %d, resume on node %d: HELLO %v", r, to, h)
			}
			moves++
			replay, _ := strconv.Atoi(h.Get("replay"))
			read(c, replay)
			read(c, 20)
		}
		if lost > lostBefore {
			lossyRounds++
		}
		c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.Close()
	}
	stop.Store(true)
	<-done
	t.Logf("%d rounds, %d moves; %d pushes each stream; %d lost in %d rounds, %d duplicated",
		rounds, moves, sentU.Load(), lost, lossyRounds, dups)
	if lost != 0 || dups != 0 {
		t.Fatalf("%d messages lost, %d duplicated in %d moves", lost, dups, moves)
	}
}
