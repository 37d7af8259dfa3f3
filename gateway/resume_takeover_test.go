package gateway_test

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// A takeover while pushes flow from another goroutine: the new connection
// presents the last number the old one read; the old one is closed with
// 1008 "session taken over"; what the two read together is every push
// exactly once, in order.
func TestResumeTakeoverWhilePushing(t *testing.T) {
	app := &sessionApp{}
	srv := startServer(t, gateway.Config{}, app)
	old := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, old).Get("session")
	until(t, "OnOpen", func() bool { return app.opens.Load() == 1 })
	a := app.conn(0)
	const total = 2000
	var pushed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= total; i++ {
			if err := a.Send(gateway.OpText, []byte("m"+strconv.Itoa(i))); err != nil {
				t.Errorf("push %d: %v", i, err)
				return
			}
			pushed.Add(1)
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var got []string
	old.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(got) < total/4 {
		_, m, err := old.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m))
	}
	// Take over with what the old connection has read; it may have more
	// on the way, which the new one gets again only if it was not read.
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+"."+strconv.Itoa(len(got)))
	h := hello(t, n)
	if h.Get("status") != "resumed" || h.Get("seq") != strconv.Itoa(len(got)) {
		t.Fatalf("HELLO %v", h)
	}
	expectGorillaClose(t, old, 1008)
	n.SetReadDeadline(time.Now().Add(30 * time.Second))
	for len(got) < total {
		_, m, err := n.ReadMessage()
		if err != nil {
			t.Fatalf("after %d: %v", len(got), err)
		}
		if strings.HasPrefix(string(m), "B") {
			continue
		}
		got = append(got, string(m))
	}
	<-done
	for i, m := range got {
		if m != "Dm"+strconv.Itoa(i+1) {
			t.Fatalf("message %d is %q", i+1, m)
		}
	}
	if st := srv.Stats().Sessions; st.Takeovers != 1 || st.Resumes != 1 {
		t.Fatalf("stats %+v", st)
	}
	if app.closes.Load() != 0 || app.opens.Load() != 1 {
		t.Fatalf("opens %d closes %d", app.opens.Load(), app.closes.Load())
	}
}
