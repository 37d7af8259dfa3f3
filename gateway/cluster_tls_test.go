package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/natstest"
)

// The NATS client options: a server that requires TLS and a user; a
// gateway with the CA, the user and a tls:// URL joins, one with a wrong
// password does not.
func TestClusterNATSTLSAndUser(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := natsCert(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, certPEM, 0o600)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.StartWith(t, func(o *server.Options) {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		o.TLS = true
		o.Username, o.Password = "wsgate", "s3cret"
	})
	url := "tls://127.0.0.1" + ns.URL()[len("nats://127.0.0.1"):]
	cfg := func(pass string) gateway.Config {
		return gateway.Config{NATS: []string{url}, NATSTLSCA: caFile, NATSUser: "wsgate", NATSPassword: pass,
			NodeID: "tls", ClusterHeartbeat: 100 * time.Millisecond}
	}
	good := startServer(t, cfg("s3cret"), gateway.Echo{})
	waitFor(t, func() bool { return good.ClusterStats().Connected })
	bad := startServer(t, cfg("wrong"), gateway.Echo{})
	time.Sleep(300 * time.Millisecond) // let it try (and fail) a few times
	if bad.ClusterStats().Connected {
		t.Fatal("connected with a wrong password")
	}
}

// natsCert makes a self-signed certificate for 127.0.0.1.
func natsCert(t *testing.T) ([]byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
