package gateway

// SetOwnDeliveredHook runs f between the delivery of each own cluster
// message to a node's connections and its publish, until the returned
// func restores none:
// a test widens with it the window in which a session moving to the
// publishing node must still get every message (moves.go, unsent).
func SetOwnDeliveredHook(f func()) (restore func()) {
	testHookOwnDelivered.Store(&f)
	return func() { testHookOwnDelivered.Store(nil) }
}
