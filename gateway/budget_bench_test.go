package gateway_test

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// processCPU is the CPU time of the whole process (server and clients).
func processCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// The echo path with and without the memory budget, side by side: 16
// clients, each a round trip of a 16-byte message at a time. cpu-ns/op is
// the CPU time of the process (clients included) per round trip, which
// other work on a shared machine inflates less than wall time.
//
//	go test -run '^$' -bench BenchmarkEchoBudget -count 6 ./gateway/
func BenchmarkEchoBudget(b *testing.B) {
	for _, bc := range []struct {
		name   string
		budget int
	}{{"off", 0}, {"on", 256 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := startServer(b, gateway.Config{Loops: 2, PingInterval: -1, MemoryBudget: bc.budget}, gateway.Echo{})
			const clients = 16
			var wg sync.WaitGroup
			conns := make([]*rawClient, clients)
			for i := range conns {
				conns[i] = dialRaw(b, srv)
			}
			work := make(chan struct{}, 1024)
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, make([]byte, 16), c.key)
					reply := make([]byte, 18)
					c.conn.SetDeadline(time.Time{})
					for range work {
						if _, err := c.conn.Write(frame); err != nil {
							return
						}
						if _, err := io.ReadFull(c.r, reply); err != nil {
							return
						}
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
