package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
	"github.com/wsgate/wsgate/loop"
)

// A session resumes on another node of a cluster (embedded NATS): the new
// node fetches it from the one that holds it, which forgets it; what was
// pushed meanwhile is replayed, its topics follow it.
func TestResumeAcrossNodes(t *testing.T) {
	nats := natstest.Start(t)
	var srvs []*gateway.Server
	var apps []*sessionApp
	for i := range 2 {
		app := &sessionApp{}
		srv := startServer(t, gateway.Config{
			NATS: []string{nats.URL()}, NodeID: fmt.Sprintf("gw%c", 'a'+i), ClusterName: "resume",
			ClusterHeartbeat: 100 * time.Millisecond,
		}, app)
		srvs, apps = append(srvs, srv), append(apps, app)
	}
	for _, s := range srvs {
		until(t, "both nodes", func() bool { return len(s.Nodes()) == 2 })
	}
	a, b := srvs[0], srvs[1]
	c := mustDial(t, wsURL(a), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	until(t, "OnOpen on A", func() bool { return apps[0].opens.Load() == 1 })
	anchor := apps[0].conn(0)
	if err := anchor.Subscribe("news"); err != nil {
		t.Fatal(err)
	}
	until(t, "the subscription", func() bool { return a.Subscribers("news") == 1 })
	anchor.Send(gateway.OpText, []byte("one"))
	if _, m := readMsg(t, c); m != "Done" {
		t.Fatalf("got %q", m)
	}
	c.UnderlyingConn().Close()
	until(t, "the suspend on A", func() bool { return a.Stats().Sessions.Suspended == 1 })
	anchor.Send(gateway.OpText, []byte("two"))
	anchor.Send(gateway.OpBinary, []byte{3})

	n := mustDial(t, wsURL(b), nil, "wsgate.resume.v1", "wsgate.session."+token+".1")
	h := hello(t, n)
	if h.Get("status") != "resumed" || h.Get("replay") != "2" || h.Get("seq") != "1" || h.Get("session") != token {
		t.Fatalf("HELLO on B: %v", h)
	}
	for _, want := range []struct {
		typ int
		msg string
	}{{gorilla.TextMessage, "Dtwo"}, {gorilla.BinaryMessage, "D\x03"}} {
		if typ, m := readMsg(t, n); typ != want.typ || m != want.msg {
			t.Fatalf("replay: %d %q, want %q", typ, m, want.msg)
		}
	}
	// A forgot it: its handler heard it moved; B's took it over, with
	// its topic.
	until(t, "OnClose on A", func() bool { return apps[0].closes.Load() == 1 })
	if ce, ok := apps[0].last.Load().(error); !ok || !isMoved(ce) {
		t.Fatalf("A's OnClose: %v", apps[0].last.Load())
	}
	if st := a.Stats().Sessions; st.Moved != 1 || st.Live != 0 {
		t.Fatalf("A's sessions: %+v", st)
	}
	until(t, "the topic on B", func() bool { return b.Subscribers("news") == 1 })
	if _, err := b.Publish("news", gateway.OpText, []byte("live")); err != nil {
		t.Fatal(err)
	}
	if _, m := readMsg(t, n); m != "Dlive" {
		t.Fatalf("publish after the move: %q", m)
	}
	n.WriteMessage(gorilla.TextMessage, []byte("Decho"))
	if _, m := readMsg(t, n); m != "Decho" {
		t.Fatalf("echo on B: %q", m)
	}
	// A token of a node that is not there: "gone".
	g := mustDial(t, wsURL(b), nil, "wsgate.resume.v1", "wsgate.session.gwz-ABCDEFGH-AAAAAAAAAAAAAAAAAAAAAA.0")
	if h := hello(t, g); h.Get("status") != "missed" || h.Get("reason") != "gone" {
		t.Fatalf("HELLO for a gone node: %v", h)
	}
}

func isMoved(err error) bool {
	return err != nil && strings.Contains(err.Error(), loop.SessionMovedReason)
}
