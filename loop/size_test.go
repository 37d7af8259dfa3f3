package loop

import (
	"testing"
	"unsafe"
)

// The per-connection struct stays within Go's 288-byte size class: a
// million idle connections pay for every byte added here.
func TestConnSize(t *testing.T) {
	if size := unsafe.Sizeof(Conn{}); size > 288 {
		t.Fatalf("Conn is %d bytes, over the 288-byte size class", size)
	}
}
