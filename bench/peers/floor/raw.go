package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor's system calls on its non-blocking sockets are raw: they never
// block, so the Go scheduler is not told of them (entersyscall), and its
// monitor never hands the server's P to another thread in the middle of a
// write. Without this a Go epoll server pays about 0.2 context switches per
// echoed message on one core, which is the scheduler's cost, not the
// read and write every server must make. Blocking waits stay scheduler-aware.

func rawRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// waitNow is epoll_wait(2) with a zero timeout, raw.
func waitNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
