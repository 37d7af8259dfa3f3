// wsgate patch (PATCH.md, "Raw system calls"): read(2), write(2) and
// writev(2) on non-blocking sockets without the Go scheduler's
// entersyscall/exitsyscall. Such calls never block, so the scheduler has no
// reason to know of them; when it does, its monitor (sysmon) takes the P from
// an event loop that spends more than a monitor tick (20 µs and up) in one
// write, and hands it to another thread: a futex wake and two context
// switches that the loop then pays for on its way back. Only for
// descriptors in non-blocking mode.

package io

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// RawRead is read(2) on a non-blocking descriptor, as a raw system call.
func RawRead(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

// RawWrite is write(2) on a non-blocking descriptor, as a raw system call.
func RawWrite(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

// rawIovecs is how many slices RawWritev passes without allocating; more
// go through unix.Writev (scheduler-aware, and it allocates).
const rawIovecs = 16

// RawWritev is writev(2) on a non-blocking descriptor, as a raw system call
// for up to 16 slices.
func RawWritev(fd int, iov [][]byte) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	if len(iov) > rawIovecs {
		return unix.Writev(fd, iov)
	}
	var vecs [rawIovecs]unix.Iovec
	n := 0
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		vecs[n].Base = &b[0]
		vecs[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vecs[0])), uintptr(n))
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}
