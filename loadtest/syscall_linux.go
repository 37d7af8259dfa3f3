package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loops' system calls on non-blocking sockets are raw (the scheduler is
// not told of them): such a call never blocks, and when the scheduler knows
// of one that outlasts its monitor's tick (20 µs and up; a loopback write
// runs the receiver's TCP stack inside it), it hands the loop's P to
// another thread, a futex wake and two context switches per hand-off. A
// hundred loadtest processes sharing two cores in bench/million.sh pay
// that on every ping they answer. The calls are those of wsgate's gnet
// patch (third_party/gnet/PATCH.md, "Raw system calls"): gio.RawRead,
// gio.RawWrite, and pollNow below.

// pollNow is epoll_wait(2) with a zero timeout, as a raw system call.
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	p := unsafe.Pointer(unsafe.SliceData(events))
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(p), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
