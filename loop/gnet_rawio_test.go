package loop

import (
	"bytes"
	"errors"
	"testing"

	gio "github.com/panjf2000/gnet/v2/pkg/io"
	"golang.org/x/sys/unix"
)

// The raw system calls of the gnet patch (PATCH.md, "Raw system calls"), on
// a real non-blocking socket pair: what they return must be what the
// scheduler-aware calls they replace return, EAGAIN and EOF included,
// because gnet's read and write paths branch on exactly those.
func TestGnetRawIO(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer unix.Close(a)

	buf := make([]byte, 64<<10)
	if n, err := gio.RawRead(b, buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of an empty socket: %d, %v; want EAGAIN", n, err)
	}

	// One slice, several (the raw path), empty ones among them, and more
	// than the raw path takes (the fallback): the bytes arrive in order.
	var want []byte
	if n, err := gio.RawWrite(a, []byte("one")); n != 3 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	want = append(want, "one"...)
	for _, count := range []int{2, 16, 40} {
		iov := make([][]byte, count)
		total := 0
		for i := range iov {
			if i%3 == 1 {
				continue // empty slices are skipped, as writev(2) would
			}
			iov[i] = bytes.Repeat([]byte{byte('a' + i%26)}, i+1)
			total += i + 1
			want = append(want, iov[i]...)
		}
		if n, err := gio.RawWritev(a, iov); n != total || err != nil {
			t.Fatalf("writev of %d slices: %d, %v; want %d", count, n, err, total)
		}
	}
	if n, err := gio.RawWritev(a, [][]byte{nil, {}}); n != 0 || err != nil {
		t.Fatalf("writev of empty slices: %d, %v", n, err)
	}
	var got []byte
	for len(got) < len(want) {
		n, err := gio.RawRead(b, buf)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), len(want), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ: got %q, want %q", got, want)
	}

	// A full socket refuses with EAGAIN, and a closed peer reads as EOF (0).
	chunk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		_, err := gio.RawWrite(a, chunk)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil || i > 1<<12 {
			t.Fatalf("filling the socket: %v after %d writes", err, i)
		}
	}
	if _, err := gio.RawWritev(a, [][]byte{chunk, chunk}); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("writev to a full socket: %v; want EAGAIN", err)
	}
	unix.Close(b)
	if _, err := gio.RawWrite(a, []byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write to a closed peer: %v; want EPIPE", err)
	}
	if _, err := gio.RawRead(-1, buf); !errors.Is(err, unix.EBADF) {
		t.Fatalf("read of a bad descriptor: %v; want EBADF", err)
	}
}
