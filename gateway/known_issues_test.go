package gateway_test

import (
	"os"
	"testing"

	"github.com/wsgate/wsgate/gateway"
)

// Known issues: tests that fail on the current server and wait for a
// design decision. They are skipped unless WSGATE_KNOWN_ISSUES=1, so that
// make test stays green meanwhile:
//
//	WSGATE_KNOWN_ISSUES=1 go test -run KnownIssue ./gateway/

func knownIssue(t *testing.T) {
	t.Helper()
	if os.Getenv("WSGATE_KNOWN_ISSUES") == "" {
		t.Skip("known issue; set WSGATE_KNOWN_ISSUES=1 to run")
	}
}

// TestKnownIssue_OutputToANonReaderIsBounded: a client that pings (or
// sends messages to echo) and never reads makes the server queue every
// answer in gnet's elastic outbound buffer, without limit: about 56 MiB of
// heap for 53 MB of pings from one connection. Input is bounded by
// MaxMessageSize, output by nothing, and gnet cannot pause reading, so a
// bound has to end the connection (a 1008 close, or a drop) once its
// unwritten output passes a limit, and stop answering pings meanwhile.
//
// The test passes as soon as a write fails, the server having given up on
// the client; it fails if 64 MiB of pings all go through.
func TestKnownIssue_OutputToANonReaderIsBounded(t *testing.T) {
	knownIssue(t)
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	c := dialRaw(t, srv)
	one := c.wire(msg(opPing, binaryPayload(125)))
	var batch []byte
	for range 8192 {
		batch = append(batch, one...)
	}
	for sent := 0; sent < 64<<20; sent += len(batch) {
		if _, err := c.conn.Write(batch); err != nil {
			t.Logf("the server gave up after %d MiB of pings: %v", sent>>20, err)
			return
		}
	}
	t.Fatal("the server queued pongs for 64 MiB of pings to a client that reads nothing")
}
