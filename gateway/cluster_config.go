package gateway

import (
	"os"

	"github.com/nats-io/nats.go"
)

// checkClusterFiles checks that the NATS credential and TLS files can be
// read, so that a typo fails NewServer rather than the first connect.
func checkClusterFiles(c *Config) error {
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
func natsOptions(c *Config) []nats.Option {
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
