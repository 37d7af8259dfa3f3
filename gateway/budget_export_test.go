package gateway_test

import (
	"io"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// The echo path allocates nothing with the budget on either.
func TestEchoPathAllocationsWithBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	for _, size := range []int{16, 1024, 64 << 10} {
		srv := startBudgetServer(t, gateway.Config{Loops: 1, PingInterval: -1, MemoryBudget: 64 << 20}, gateway.Echo{})
		c := dialRaw(t, srv)
		frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, payload(size, false), c.key)
		reply := make([]byte, len(codec.AppendFrame(nil, ws.OpBinary, true, payload(size, false))))
		roundTrip := func() {
			if _, err := c.conn.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c.r, reply); err != nil {
				t.Fatal(err)
			}
		}
		for range 200 {
			roundTrip()
		}
		if allocs := testing.AllocsPerRun(500, roundTrip); allocs != 0 {
			t.Errorf("echo of %d bytes with a budget: %v allocations per round trip, want 0", size, allocs)
		}
	}
}

// /metrics and /v1/stats show the budget, what is charged by kind, the
// per-connection figures, sheds, pauses and refusals.
func TestMemoryBudgetExported(t *testing.T) {
	const budget = 8 << 20
	release := make(chan struct{})
	defer close(release)
	srv := startBudgetServer(t, gateway.Config{Loops: 1, MemoryBudget: budget, Admin: "127.0.0.1:0", PingInterval: -1},
		gateway.HandlerFuncs{Message: func(*gateway.Conn, gateway.OpCode, []byte) { <-release }})
	a := newAdminClient(t, srv, "")
	c := dialRaw(t, srv)
	c.frame(ws.OpBinary, true, make([]byte, 1<<20))
	settled(t, srv, gateway.MemoryKindMessages, 1<<20)
	m := scrape(t, a)
	for series, want := range map[string]float64{
		`wsgate_memory_budget_bytes`:                              budget,
		`wsgate_memory_charged_bytes{kind="messages"}`:            1 << 20,
		`wsgate_memory_charged_bytes{kind="assembly"}`:            0,
		`wsgate_memory_charged_bytes{kind="outbound"}`:            0,
		`wsgate_connection_bytes{part="fixed"}`:                   float64(srv.Stats().MemoryConnFixed),
		`wsgate_connection_bytes{part="variable"}`:                1 << 20,
		`wsgate_memory_sheds_total{reason="outbound"}`:            0,
		`wsgate_memory_sheds_total{reason="assembly"}`:            0,
		`wsgate_memory_refusals_total{what="send"}`:               0,
		`wsgate_memory_pauses_total`:                              0,
		`wsgate_admission_refusals_total{reason="memory_budget"}`: 0,
		`wsgate_closes_total{cause="memory_budget"}`:              0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	st := a.json("GET", "/v1/stats", "", nil, 200)
	if st["memory_budget"].(float64) != budget || st["memory_charges"].(map[string]any)["messages"].(float64) != 1<<20 ||
		st["memory_conn_fixed"].(float64) < 300 {
		t.Errorf("/v1/stats: budget %v, charges %v, fixed %v", st["memory_budget"], st["memory_charges"], st["memory_conn_fixed"])
	}
}
