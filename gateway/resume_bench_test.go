package gateway_test

import (
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// BenchmarkSuspendedSessionMemory reports the heap a suspended session
// holds (its anchor Conn, its session, its registry entry), with an empty
// buffer and with one 100-byte message buffered: 1,000 sessions are
// suspended by cutting their sockets, and the live heap is compared with
// the server's before they connected.
//
//	go test -run '^$' -bench SuspendedSessionMemory -benchtime 1x ./gateway/
func BenchmarkSuspendedSessionMemory(b *testing.B) {
	const n = 1000
	for _, buffered := range []int{0, 100} {
		b.Run(map[int]string{0: "empty", 100: "one_100B_message"}[buffered], func(b *testing.B) {
			for range b.N {
				app := &sessionApp{}
				srv := startServer(b, gateway.Config{ResumeWindow: time.Hour, PingInterval: -1}, app)
				before := heapNow()
				for range n {
					c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
					if err != nil {
						b.Fatal(err)
					}
					c.Close()
				}
				waitStat(b, func() bool { return srv.Stats().ConnsOpen == 0 })
				plain := heapNow()
				for range n {
					d := gorilla.Dialer{Subprotocols: []string{"wsgate.resume.v1"}}
					c, _, err := d.Dial(wsURL(srv), nil)
					if err != nil {
						b.Fatal(err)
					}
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, _, err := c.ReadMessage(); err != nil { // HELLO
						b.Fatal(err)
					}
					c.UnderlyingConn().Close()
				}
				waitStat(b, func() bool { return srv.Stats().Sessions.Suspended == n })
				if buffered > 0 {
					msg := make([]byte, buffered)
					app.mu.Lock()
					for _, c := range app.conns {
						_ = c.Send(gateway.OpBinary, msg)
					}
					app.mu.Unlock()
					waitStat(b, func() bool { return srv.Stats().Sessions.Buffered == int64(n*buffered) })
				}
				after := heapNow()
				b.ReportMetric(float64(after-plain)/n, "B/suspended-session")
				b.ReportMetric(float64(plain-before)/n, "B/closed-plain-conn")
			}
		})
	}
}

func waitStat(b *testing.B, cond func() bool) {
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			b.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
