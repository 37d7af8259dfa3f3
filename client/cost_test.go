package client

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// clientGoroutines counts the goroutines running this package's code
// (not the tests').
func clientGoroutines() (run, other int) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "wsgate/client.(*Client).run"):
			run++
		case strings.Contains(g, "wsgate/client.") && !strings.Contains(g, "wsgate/client.Test") && !strings.Contains(g, "_test.go"):
			other++
		}
	}
	return run, other
}

// Each connected client costs exactly one goroutine, its run loop; none
// is left after Close.
func TestOneGoroutinePerClient(t *testing.T) {
	g := startGateway(t, gateway.Config{})
	const n = 50
	var cs []*Client
	for range n {
		cs = append(cs, dial(t, g.url(), Options{}, &recorder{}))
	}
	until(t, "all open", func() bool { return g.open() == n })
	if run, other := clientGoroutines(); run != n || other != 0 {
		t.Fatalf("%d clients: %d run goroutines and %d others, want %d and 0", n, run, other, n)
	}
	for _, c := range cs {
		c.Close()
	}
	until(t, "none left", func() bool { run, other := clientGoroutines(); return run+other == 0 })
}

// BenchmarkIdleClientMemory reports the Go heap and goroutine stack per
// idle connected client, in the same process as the gateway, beside the
// heap of a bare gorilla/websocket connection with the same buffers (both
// include the gateway's share of a connection, about 0.5 KiB). Run:
//
//	go test -run '^$' -bench IdleClientMemory -benchtime 1x ./client/
func BenchmarkIdleClientMemory(b *testing.B) {
	const n = 2000
	g := startGateway(b, gateway.Config{PingInterval: -1})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	stack := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.StackInuse
	}
	// The gateway's share: raw gorilla connections, no client.
	base := heap()
	var raws []interface{ Close() error }
	for range n {
		c, _, err := dialRaw(g.url())
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, c)
	}
	until(b, "raw open", func() bool { return g.open() == n })
	rawPer := float64(heap()-base) / n
	for _, c := range raws {
		c.Close()
	}
	until(b, "raw gone", func() bool { return g.open() == 0 })
	for b.Loop() {
		base, sbase := heap(), stack()
		cs := make([]*Client, 0, n)
		for range n {
			c, err := Dial(b.Context(), g.url(), Options{PingInterval: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			cs = append(cs, c)
		}
		until(b, "open", func() bool { return g.open() == n })
		per := float64(heap()-base) / n
		b.ReportMetric(per, "heapB/client")
		b.ReportMetric(float64(stack()-sbase)/n, "stackB/client")
		b.ReportMetric(rawPer, "heapB/gorilla-conn")
		run, _ := clientGoroutines()
		b.ReportMetric(float64(run)/n, "goroutines/client")
		for _, c := range cs {
			c.Close()
		}
		until(b, "closed", func() bool { return g.open() == 0 })
	}
}
