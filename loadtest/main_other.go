//go:build !linux

// Command loadtest is wsgate's load generator. It drives its connections
// with epoll and timerfd, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "loadtest: needs Linux (epoll, timerfd)")
	os.Exit(1)
}
