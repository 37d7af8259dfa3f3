package gateway_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// rawUpgrade opens an upgraded connection with bare system calls, so that
// the client side costs the Go heap nothing; it returns the descriptor.
func rawUpgrade(t *testing.T, addr *net.TCPAddr) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(10 * time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	key := codec.NewClientKey()
	if _, err := unix.Write(fd, codec.AppendClientRequest(nil, addr.String(), "/ws", key[:], nil, nil)); err != nil {
		t.Fatal(err)
	}
	var buf [512]byte
	var have []byte
	var r codec.Response
	for {
		n, err := unix.Read(fd, buf[:])
		if err != nil || n == 0 {
			t.Fatalf("upgrade: %v", err)
		}
		have = append(have, buf[:n]...)
		if k, err := r.Parse(have, 0); err != nil || k > 0 {
			if err != nil || r.Status() != 101 {
				t.Fatalf("upgrade: %v %q", err, have)
			}
			return fd
		}
	}
}

func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// Stats.MemoryConnFixed, the estimate of what an idle connection costs
// beyond what the budget charges, is within a factor of two of the Go heap
// that idle connections really take: clients made of bare descriptors (no
// Go objects) upgrade and stay idle, and the heap is read after a GC.
func TestConnFixedEstimate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes object sizes")
	}
	const n = 2000
	srv := startServer(t, gateway.Config{Loops: 2, MemoryBudget: 64 << 20}, gateway.Echo{})
	addr := srv.Addr().(*net.TCPAddr)
	// Warm up the tables and pools a first batch grows.
	var fds []int
	for range 100 {
		fds = append(fds, rawUpgrade(t, addr))
	}
	before := heapNow()
	for range n {
		fds = append(fds, rawUpgrade(t, addr))
	}
	waitFor(t, func() bool { return srv.Stats().WSConns == n+100 })
	per := (heapNow() - before) / n
	for _, fd := range fds {
		unix.Close(fd)
	}
	est := srv.Stats().MemoryConnFixed
	t.Logf("measured %d B of heap per idle connection; estimate %d B", per, est)
	if est < per/2 || est > 2*per {
		t.Fatalf("estimate %d B, measured %d B", est, per)
	}
}
