package gateway_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// PROXY protocol trust fails closed: a PROXY mode without TrustedProxies
// is refused, since trusting every sender would let any client that
// reaches the port claim any address.
func TestProxyTrustFailsClosed(t *testing.T) {
	for _, mode := range []string{"optional", "required"} {
		_, err := gateway.NewServer(gateway.Config{ProxyProtocol: mode}, gateway.Echo{})
		var ce *gateway.ConfigError
		if !errors.As(err, &ce) || ce.Field != "TrustedProxies" {
			t.Errorf("%s without trusted proxies: %v, want a ConfigError on TrustedProxies", mode, err)
		}
	}
	// Off needs none.
	if _, err := (gateway.Config{ProxyProtocol: "off"}).WithDefaults(); err != nil {
		t.Fatal(err)
	}
}

// An explicit 0.0.0.0/0,::/0 is allowed, with a warning, and then a header
// from anyone is believed.
func TestProxyTrustEveryoneWarns(t *testing.T) {
	var logs syncBuffer
	rec := &remoteRecorder{}
	srv := startServer(t, gateway.Config{
		ProxyProtocol: "required", TrustedProxies: []string{"0.0.0.0/0", "::/0"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, rec)
	if !strings.Contains(logs.String(), "trusts every peer") {
		t.Fatalf("no warning logged:\n%s", logs.String())
	}
	src := netip.MustParseAddrPort("198.51.100.9:4000")
	if _, st := upgradeAfter(t, srv, codec.AppendProxyHeaderV2(nil, src, netip.MustParseAddrPort("10.0.0.1:443"), nil)); st != 101 {
		t.Fatalf("status %d", st)
	}
	waitFor(t, func() bool { return rec.last() == src })
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
