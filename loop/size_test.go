package loop

import (
	"testing"
	"unsafe"

	"github.com/wsgate/wsgate/timerwheel"
)

// The per-connection struct fills Go's 112-byte size class exactly: a
// million idle connections pay for every byte added here, and one more
// field moves every connection to the 128-byte class. What only a
// connection that carries data needs goes in connData (conn_data.go),
// what most connections never need in connExt.
func TestConnSize(t *testing.T) {
	if size := unsafe.Sizeof(Conn{}); size > 112 {
		t.Fatalf("Conn is %d bytes, over the 112-byte size class", size)
	}
	// The data part is allocated once per connection that talks: it stays
	// within the 128-byte class.
	if size := unsafe.Sizeof(connData{}); size > 128 {
		t.Fatalf("connData is %d bytes, over the 128-byte size class", size)
	}
	// The timer node carries no pointer back to its Conn (connOfTimer).
	if size := unsafe.Sizeof(timerwheel.Node[struct{}]{}); size != 3*unsafe.Sizeof(uintptr(0)) {
		t.Fatalf("the timer node is %d bytes, want three words", size)
	}
}

// connOfTimer finds the Conn from its timer node.
func TestConnOfTimer(t *testing.T) {
	c := new(Conn)
	if got := connOfTimer(&c.timer); got != c {
		t.Fatalf("connOfTimer = %p, want %p", got, c)
	}
}
