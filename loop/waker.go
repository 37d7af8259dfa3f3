package loop

import (
	"context"
	"net"
	"os"
	"runtime"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// wakeTag marks the loop's wake connection in gnet's connection context.
type wakeTag struct{ l *eventLoop }

// startWaker creates the loop's socketpair and enrolls its read end in the
// loop. It runs on the loop and does not wait: registration completes
// asynchronously, and OnOpen of the wake connection publishes wakeFd.
func (l *eventLoop) startWaker() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socketpair", err)
	}
	f := os.NewFile(uintptr(fds[0]), "wsgate-wake")
	nc, err := net.FileConn(f) // dups fds[0]
	_ = f.Close()
	if err != nil {
		_ = unix.Close(fds[1])
		return err
	}
	// Enroll dups nc's descriptor and closes nc once registered.
	ctx := gnet.NewContext(context.Background(), &wakeTag{l: l})
	if _, err := l.el.Enroll(ctx, nc); err != nil {
		_ = nc.Close()
		_ = unix.Close(fds[1])
		return err
	}
	l.pendingWakeFd = fds[1]
	return nil
}

// wakerOpened runs on the loop when the wake connection is registered.
func (l *eventLoop) wakerOpened() {
	l.wakeFd.Store(int32(l.pendingWakeFd))
	l.pendingWakeFd = -1
}

var wakeByte = [1]byte{1}

// wake makes the loop run its inbox soon. Safe from any goroutine.
//
// While the loop is inside OnTraffic for a client connection (busy), no
// byte is written at all: the loop runs its inbox when that callback returns. Under
// load, when the loop is almost always busy, replies cost no wakeup system
// call. wanted and busy are a Dekker pair: wake stores wanted then loads
// busy; the loop stores busy=false then loads wanted; with sequentially
// consistent atomics one of them sees the other.
func (l *eventLoop) wake() {
	l.wanted.Store(true)
	if l.busy.Load() {
		return
	}
	if l.armed.Swap(true) {
		return // a wake is already on its way and runInbox has not started
	}
	// writers fences the descriptor against close: closeWaker sets closed,
	// then waits for writers to reach zero before closing it.
	l.writers.Add(1)
	if !l.wakeClosed.Load() {
		if fd := l.wakeFd.Load(); fd >= 0 {
			_, err := unix.Write(int(fd), wakeByte[:])
			l.writers.Add(-1)
			if err == nil || err == unix.EAGAIN {
				return // EAGAIN: the pair is full of wakes already
			}
		} else {
			l.writers.Add(-1)
		}
		_ = l.el.Execute(context.Background(), l)
		return
	}
	l.writers.Add(-1)
}

// Run implements gnet.Runnable for the Execute fallback of wake.
func (l *eventLoop) Run(context.Context) error {
	l.runInbox()
	return nil
}

// closeWaker closes the socketpair's write end once no waker can be
// writing to it. The read end belongs to gnet, which closes it with the
// engine.
func (l *eventLoop) closeWaker() {
	l.wakeClosed.Store(true)
	for l.writers.Load() != 0 {
		runtime.Gosched()
	}
	if fd := l.wakeFd.Swap(-1); fd >= 0 {
		_ = unix.Close(int(fd))
	}
	if l.pendingWakeFd >= 0 {
		_ = unix.Close(l.pendingWakeFd)
		l.pendingWakeFd = -1
	}
}
