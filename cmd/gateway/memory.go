package main

import (
	"bufio"
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// The command's memory settings: the default budget, and the Go runtime's
// soft memory limit derived from it.
//
// Default budget: half the memory the process may use, read from its
// cgroup (v2 memory.max, else v1 memory.limit_in_bytes), or the machine's
// MemTotal when the cgroup sets no limit. Half, because what the budget
// does not count needs room too: the fixed state of every connection
// (gateway.ConnFixedBytes each), the kernel's socket buffers (in a
// cgroup v2 they are charged to the same limit), the runtime, and the
// garbage collector's headroom. A limit that cannot be read leaves the
// budget off, and --memory-budget off turns it off.

// Where the limits are read; variables so that tests can point them at
// files of their own.
var (
	cgroupV2Max = "/sys/fs/cgroup/memory.max"
	cgroupV1Max = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	meminfo     = "/proc/meminfo"
)

// memoryLimit returns the memory the process may use and where the figure
// came from, or 0 if it cannot be read.
func memoryLimit() (int64, string) {
	total := memTotal()
	for _, p := range []string{cgroupV2Max, cgroupV1Max} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			break // cgroup v2 without a limit
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 writes "no limit" as a huge number (page-rounded
		// MaxInt64): a limit above the machine's memory is none.
		if err == nil && n > 0 && (total == 0 || n < total) {
			return n, p
		}
	}
	if total > 0 {
		return total, meminfo
	}
	return 0, ""
}

// memTotal reads MemTotal from /proc/meminfo, in bytes; 0 if it cannot.
func memTotal() int64 {
	f, err := os.Open(meminfo)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil || n <= 0 || n > math.MaxInt64/1024 {
				return 0
			}
			return n << 10
		}
	}
	return 0
}

// defaultBudget is half of memoryLimit, rounded down to MiB; 0 (off) if
// no limit can be read.
func defaultBudget() int {
	n, _ := memoryLimit()
	return int(n / 2 >> 20 << 20)
}

// autoBudget is the default budget, read once.
var autoBudget = defaultBudget()

// fitBudget raises the default budget to the least the gateway accepts,
// four largest messages, when --max-message asks for more than the default
// allows (a small container with large messages): a default must not stop
// the gateway. A budget set by hand is checked as it is.
func fitBudget(st *settings, auto int, log *slog.Logger) {
	msg := st.MaxMessageSize
	if msg <= 0 {
		msg = gateway.DefaultMaxMessageSize
	}
	if st.MemoryBudget == auto && auto > 0 && auto/4 < msg && msg <= 1<<30 {
		log.Warn("memory budget: the default is below four largest messages; raised", "default", st.MemoryBudget, "budget", 4*msg)
		st.MemoryBudget = 4 * msg
	}
}

// runtimeMemory is the memory the Go runtime has mapped and not returned
// to the system.
func runtimeMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// workerStack is the stack a handler worker is given to start with.
const workerStack = 8 << 10

// memoryLimiter keeps the Go runtime's soft memory limit
// (runtime/debug.SetMemoryLimit) at base + budget + the fixed state of the
// open connections, so that the garbage collector works harder as the
// heap nears what the budget allows instead of letting it grow to twice
// the live heap (GOGC). base is measured once the server has started: the
// runtime's mapped memory then, plus a starting stack for each worker of
// the two pools. A limit set in GOMEMLIMIT is the operator's and is left
// alone; so is any limit when the budget is off.
type memoryLimiter struct {
	srv    *gateway.Server
	log    *slog.Logger
	base   int64
	budget int64
	last   int64
}

func startMemoryLimiter(ctx context.Context, srv *gateway.Server, cfg gateway.Config, log *slog.Logger) {
	if cfg.MemoryBudget <= 0 {
		return
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit: GOMEMLIMIT is set, leaving it", "GOMEMLIMIT", v)
		return
	}
	m := &memoryLimiter{srv: srv, log: log, budget: int64(cfg.MemoryBudget),
		base: runtimeMemory() + int64(cfg.Workers+cfg.HandshakeWorkers)*workerStack}
	m.update()
	log.Info("memory limit", "budget", cfg.MemoryBudget, "base", m.base, "go_memory_limit", m.last)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.update()
			}
		}
	}()
}

// update sets the limit for the connections open now, when it moved by
// more than 1%.
func (m *memoryLimiter) update() {
	st := m.srv.Stats()
	limit := m.base + m.budget + st.ConnsOpen*st.MemoryConnFixed
	if d := limit - m.last; d > m.last/100 || -d > m.last/100 {
		debug.SetMemoryLimit(limit)
		m.last = limit
	}
}
