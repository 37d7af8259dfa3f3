package gateway

import (
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

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

// checkClusterFiles checks that the NATS credential and TLS files can be
// read, so that a typo fails NewServer rather than the first connect.
func (c *Config) checkClusterFiles() error {
	for _, f := range []struct{ field, path string }{
		{"NATSCredentials", c.NATSCredentials}, {"NATSNKey", c.NATSNKey},
		{"NATSTLSCA", c.NATSTLSCA}, {"NATSTLSCert", c.NATSTLSCert}, {"NATSTLSKey", c.NATSTLSKey},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return badField(f.field, err.Error())
		}
		fh.Close()
	}
	return nil
}

// natsOptions returns the NATS client options of the credentials and TLS
// settings. Files are read when the connection is made (Server.Start).
func (c *Config) natsOptions() []nats.Option {
	var opts []nats.Option
	switch {
	case c.NATSCredentials != "":
		opts = append(opts, nats.UserCredentials(c.NATSCredentials))
	case c.NATSNKey != "":
		opts = append(opts, nkeyFile(c.NATSNKey))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	if c.NATSToken != "" {
		opts = append(opts, nats.Token(c.NATSToken))
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	return opts
}

// nkeyFile reads an NKey seed file into the connection's options; a
// file that cannot be read fails the connection with its error.
func nkeyFile(path string) nats.Option {
	return func(o *nats.Options) error {
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return err
		}
		return opt(o)
	}
}
