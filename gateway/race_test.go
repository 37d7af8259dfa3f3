//go:build race

package gateway_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts are meaningless under it; `make test` runs the
// allocation tests again without -race.
const raceEnabled = true
