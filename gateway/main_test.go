package gateway_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// server a test starts must stop its loops, ticker and workers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// gnet's process-wide ants pool (started at init) keeps idle
		// workers for a while after it registered a loop's waker: only an
		// idle one (blocked in its task loop, the top of its stack) is
		// let go; a worker running a job, ours or gnet's, stuck or not,
		// is a leak. Our own pools' workers are checked by Shutdown, which
		// fails if they do not exit.
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
		// net/http's client keeps idle connections from the health tests.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
