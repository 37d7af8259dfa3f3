//go:build !linux

package cluster

import "time"

// setUserTimeout: TCP_USER_TIMEOUT is Linux's; elsewhere keepalive alone.
func setUserTimeout(uintptr, time.Duration) error { return nil }
