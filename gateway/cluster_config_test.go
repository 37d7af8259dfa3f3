package gateway_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/gateway"
)

func TestClusterConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   gateway.Config
		field string
	}{
		{gateway.Config{NATS: []string{"nats://127.0.0.1:4222", "tls://n2:4222", "n3:4222"}, NodeID: "gw-1"}, ""},
		{gateway.Config{NATS: []string{"http://127.0.0.1:4222"}}, "NATS"},
		{gateway.Config{NATS: []string{"nats://user:secret@%zz"}}, "NATS"},
		{gateway.Config{NATS: []string{"nats://n:4222"}, NodeID: "gw.1"}, "NodeID"},
		{gateway.Config{NATS: []string{"nats://n:4222"}, ClusterName: "a b"}, "ClusterName"},
		{gateway.Config{NATSTLSCert: "c.pem"}, "NATSTLSCert"},
		{gateway.Config{NATSCredentials: "a.creds", NATSNKey: "a.nk"}, "NATSNKey"},
		{gateway.Config{ClusterTimeout: -1}, "ClusterTimeout"},
	} {
		c, err := tc.cfg.WithDefaults()
		var ce *gateway.ConfigError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field):
			t.Errorf("%v: error %v, want one for %s", tc.cfg.NATS, err, tc.field)
		case tc.field == "" && (c.ClusterName != "default" || c.ClusterTimeout != gateway.DefaultClusterTimeout):
			t.Errorf("defaults: %q %v", c.ClusterName, c.ClusterTimeout)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	// A credentials file that is not there fails NewServer, by name.
	_, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", NATS: []string{"nats://127.0.0.1:1"}, NATSCredentials: "/nonexistent.creds"}, gateway.Echo{})
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) || ce.Field != "NATSCredentials" || !strings.Contains(err.Error(), "nonexistent.creds") {
		t.Fatalf("NewServer with a missing credentials file: %v", err)
	}
}
