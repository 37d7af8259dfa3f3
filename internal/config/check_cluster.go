package config

import (
	"net/url"
	"strings"

	"github.com/wsgate/wsgate/cluster"
)

// checkCluster validates the cluster block of a Config.
func (c *Config) checkCluster() error {
	for _, u := range c.NATS {
		raw := u
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		p, err := url.Parse(raw)
		if err != nil || p.Host == "" {
			return badField("NATS", "bad NATS URL "+redactURL(u))
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return badField("NATS", "want nats://, tls://, ws:// or wss:// URLs, got "+redactURL(u))
		}
	}
	if c.NodeID != "" {
		if err := cluster.CheckName(c.NodeID); err != nil {
			return badField("NodeID", "must be 1 to 64 bytes of A-Z a-z 0-9 _ -")
		}
	}
	if err := cluster.CheckName(c.ClusterName); err != nil {
		return badField("ClusterName", "must be 1 to 64 bytes of A-Z a-z 0-9 _ -")
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		return badField("NATSTLSCert", "NATSTLSCert and NATSTLSKey go together")
	}
	if c.NATSCredentials != "" && c.NATSNKey != "" {
		return badField("NATSNKey", "NATSCredentials and NATSNKey exclude each other")
	}
	return nil
}

// redactURL hides the user information of a URL (parsable or not) for
// error messages.
func redactURL(u string) string {
	rest := u
	scheme, after, ok := strings.Cut(u, "://")
	if ok {
		rest = after
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = "REDACTED@" + rest[at+1:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}
