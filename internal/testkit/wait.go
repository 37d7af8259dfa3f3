package testkit

import (
	"testing"
	"time"
)

// Until polls cond every 5 ms for up to 20 s, and fails t naming what it
// waited for: a bound for a shared, noisy machine, not a timing
// assertion.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
