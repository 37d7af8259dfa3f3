//go:build linux && !poll_opt

// wsgate patch (PATCH.md, "Raw system calls"): the default poller's
// non-blocking epoll_wait(2) (timeout 0, the pass after events) as a raw
// system call, as the poll_opt poller already does: it never blocks, so the
// scheduler need not hand the loop's P to another thread meanwhile.

package netpoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollWaitNow is epoll_wait(2) with a zero timeout, as a raw system call.
func epollWaitNow(epfd int, events []epollevent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}
