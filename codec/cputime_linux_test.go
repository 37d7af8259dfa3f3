package codec

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// cpuMeter reports the CPU time the benchmark's own thread spent per
// operation ("cpu-ns/op"), which other work on a shared machine inflates
// much less than wall time: it counts this thread's time on a core, not its
// time waiting for one. Start it right before the timed loop.
type cpuMeter struct{ start int64 }

func threadCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return &cpuMeter{start: threadCPU()}
}

func (m *cpuMeter) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(threadCPU()-m.start)/float64(b.N), "cpu-ns/op")
	}
}
