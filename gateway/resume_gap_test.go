package gateway_test

import (
	"fmt"
	"os"
	"strconv"
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

// A session moved between two nodes over and over while a third node
// pushes to its user and its topic every few milliseconds: each numbered
// message reaches the client exactly once and in order, or the client is
// told, in a HELLO missed with reason moved, that it may have a gap
// (docs/resume.md §5.2). Never a silent gap.
//
// It fails today (issue 15, docs/cluster.md "Sessions that move"): run it
// with WSGATE_RESUME_GAP=1. The subtest "interest held" keeps a second
// connection of the user, subscribed to the topic, on both nodes, so that
// no NATS subscription changes during a move: what it still loses is the
// delivery window between the handover on A's loop and the import on B's.
func TestResumeAcrossNodesUnderTraffic(t *testing.T) {
	if os.Getenv("WSGATE_RESUME_GAP") == "" {
		t.Skip("the cross-node resume gap is open (issue 15): WSGATE_RESUME_GAP=1 runs this reproduction")
	}
	t.Run("plain", func(t *testing.T) { testResumeUnderTraffic(t, false) })
	t.Run("interest held", func(t *testing.T) { testResumeUnderTraffic(t, true) })
}

func testResumeUnderTraffic(t *testing.T, hold bool) {
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
	excused := map[byte]bool{}
	var lost, dups, missedMoved, resumed, lossyRounds int64
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
		case n > l+1 && !excused[k]:
			lost += n - l - 1
		}
		excused[k] = false
		last[k] = max(last[k], n)
	}
	read := func(conn *gorilla.Conn, n int) {
		for range n {
			_, m := readMsg(t, conn)
			take(m)
		}
	}
	// Each round: a new session on A, cut, resumed on B. (A session
	// that moved keeps the token of the node that made it, so it moves
	// once: see docs/cluster.md.)
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
	const rounds = 50
	for r := range rounds {
		c := mustDial(t, wsURL(srvs[0]), nil, "wsgate.resume.v1", "bearer."+tok)
		token := hello(t, c).Get("session")
		seq, last, excused = 0, map[byte]int64{}, map[byte]bool{}
		lostBefore := lost
		read(c, 10)
		c.UnderlyingConn().Close() // no close frame: the session is suspended
		c = mustDial(t, wsURL(srvs[1]), nil, "wsgate.resume.v1", "bearer."+tok,
			"wsgate.session."+token+"."+strconv.FormatInt(seq, 10))
		h := hello(t, c)
		switch h.Get("status") {
		case "resumed":
			resumed++
			replay, _ := strconv.Atoi(h.Get("replay"))
			read(c, replay)
		case "missed":
			if h.Get("reason") != "moved" {
				t.Fatalf("round %d: HELLO %v", r, h)
			}
			missedMoved++
			seq = 0
			excused['u'], excused['t'] = true, true
		default:
			t.Fatalf("round %d: HELLO %v", r, h)
		}
		read(c, 20)
		if lost > lostBefore {
			lossyRounds++
		}
		c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.Close()
	}
	stop.Store(true)
	<-done
	t.Logf("%d rounds: %d resumed, %d told missed (moved); %d pushes each stream; %d lost silently in %d rounds, %d duplicated",
		rounds, resumed, missedMoved, sentU.Load(), lost, lossyRounds, dups)
	if lost != 0 || dups != 0 {
		t.Fatalf("%d messages lost silently, %d duplicated in %d moves", lost, dups, rounds)
	}
}
