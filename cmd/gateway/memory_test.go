package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// pointLimits points the limit files at a directory of the test's own.
func pointLimits(t *testing.T, v2, v1, mem string) {
	t.Helper()
	dir := t.TempDir()
	put := func(name, body string) string {
		p := filepath.Join(dir, name)
		if body != "" {
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	old2, old1, oldm := cgroupV2Max, cgroupV1Max, meminfo
	cgroupV2Max, cgroupV1Max, meminfo = put("memory.max", v2), put("memory.limit_in_bytes", v1), put("meminfo", mem)
	t.Cleanup(func() { cgroupV2Max, cgroupV1Max, meminfo = old2, old1, oldm })
}

const meminfo8G = "MemTotal:        8388608 kB\nMemFree:         1000 kB\n"

// The default budget is half the cgroup's limit (v2, then v1), or of the
// machine's memory when the cgroup sets none, and off when nothing can be
// read.
func TestDefaultBudget(t *testing.T) {
	for _, c := range []struct {
		name, v2, v1, mem string
		want              int
	}{
		{"cgroup v2 limit", "2147483648\n", "", meminfo8G, 1 << 30},
		{"cgroup v2 without a limit", "max\n", "", meminfo8G, 4 << 30},
		{"cgroup v1 limit", "", "1073741824\n", meminfo8G, 512 << 20},
		{"cgroup v1 without a limit", "", "9223372036854771712\n", meminfo8G, 4 << 30},
		{"no cgroup", "", "", meminfo8G, 4 << 30},
		{"a limit above the machine", "17179869184", "", meminfo8G, 4 << 30},
		{"nothing readable", "", "", "", 0},
		{"garbage", "lots", "", "MemTotal: many kB\n", 0},
		{"rounded to MiB", "1000000001", "", meminfo8G, 476 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			pointLimits(t, c.v2, c.v1, c.mem)
			if got := defaultBudget(); got != c.want {
				t.Fatalf("default budget %d, want %d", got, c.want)
			}
		})
	}
}

// A default budget too small for --max-message is raised to four
// messages; a budget set by hand is not.
func TestFitBudget(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const auto = 2 << 20
	st := defaults()
	st.MemoryBudget, st.MaxMessageSize = auto, 1<<20
	fitBudget(&st, auto, log)
	if st.MemoryBudget != 4<<20 {
		t.Fatalf("default budget %d for messages of %d", st.MemoryBudget, st.MaxMessageSize)
	}
	st.MemoryBudget = 3 << 20
	fitBudget(&st, auto, log)
	if st.MemoryBudget != 3<<20 {
		t.Fatalf("a budget set by hand was changed to %d", st.MemoryBudget)
	}
	st.MemoryBudget, st.MaxMessageSize = auto, 0 // the default message size, 1 MiB
	fitBudget(&st, auto, log)
	if st.MemoryBudget != 4<<20 {
		t.Fatalf("default budget %d for the default message size", st.MemoryBudget)
	}
}

// The limiter sets the Go runtime's soft limit to base + budget + the
// fixed state of the open connections, and leaves a GOMEMLIMIT alone.
func TestMemoryLimiter(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", MemoryBudget: 64 << 20}, gateway.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := srv.Config()

	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(math.MaxInt64)
	startMemoryLimiter(ctx, srv, cfg, log)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("GOMEMLIMIT set, yet the limit became %d", got)
	}

	os.Unsetenv("GOMEMLIMIT")
	before := runtimeMemory()
	startMemoryLimiter(ctx, srv, cfg, log)
	got := debug.SetMemoryLimit(-1)
	stacks := int64(cfg.Workers+cfg.HandshakeWorkers) * workerStack
	lo, hi := before/2+64<<20+stacks, 2*before+64<<20+stacks
	t.Logf("limit %d MiB: budget 64 MiB, runtime %d MiB, worker stacks %d MiB", got>>20, before>>20, stacks>>20)
	if got < lo || got > hi {
		t.Fatalf("limit %d, want within [%d, %d]", got, lo, hi)
	}
	// The budget off: nothing is set.
	debug.SetMemoryLimit(math.MaxInt64)
	off := cfg
	off.MemoryBudget = -1
	startMemoryLimiter(ctx, srv, off, log)
	time.Sleep(10 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("budget off, yet the limit became %d", got)
	}
}
