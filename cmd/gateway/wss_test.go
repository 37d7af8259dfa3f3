package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testkit"
)

// wss:// as deployed (docs/deploy): TLS terminated by HAProxy with a
// certificate made here, PROXY v2 to three gateways, each on a different
// nats-server of a three-server NATS cluster (the shipped
// docs/deploy/nats-*.conf and haproxy-tls.cfg, ports substituted). Real
// wss:// clients (gorilla and coder, trusting only that certificate)
// connect through HAProxy; a push through any gateway's admin API reaches
// all of them once, and the gateways see the clients' own addresses.
func TestWSSThroughHAProxyToCluster(t *testing.T) {
	haproxy := testkit.Need(t, "haproxy", "apt-get install haproxy")
	dir := t.TempDir()
	pemFile, pool := selfSigned(t, dir)

	// Three nats-servers routed to each other (each client port comes
	// from startNATS's -p, which overrides the file's listen).
	routePorts := []string{freePort(t), freePort(t), freePort(t)}
	var nats []*natsProc
	for i := range 3 {
		raw, err := os.ReadFile(filepath.Join("../../docs/deploy", "nats-"+string(rune('1'+i))+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.NewReplacer(
			"127.0.0.1:6222", routePorts[0], "127.0.0.1:6223", routePorts[1], "127.0.0.1:6224", routePorts[2],
			"http: 127.0.0.1:822", "# http: 127.0.0.1:822",
		).Replace(string(raw))
		file := filepath.Join(dir, "nats.conf"+string(rune('1'+i)))
		if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		nats = append(nats, startNATS(t, "-c", file))
	}

	backend := queryBackend(t)
	var gws []*gatewayProc
	for i, id := range []string{"gw1", "gw2", "gw3"} {
		args := append(clusterArgs(nats[i].url(), backend, id), "--proxy-protocol", "required", "--trusted-proxies", "127.0.0.1/32")
		gws = append(gws, start(t, args...))
	}
	waitCluster(t, 3, gws...)

	front := freePort(t)
	example, err := os.ReadFile("../../docs/deploy/haproxy-tls.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"127.0.0.1:8443", front,
		"127.0.0.1:8081", gws[0].addr, "127.0.0.1:8082", gws[1].addr, "127.0.0.1:8083", gws[2].addr,
		"/etc/haproxy/wsgate.pem", pemFile,
		"maxconn 100000", "maxconn 4000",
	).Replace(string(example))
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := exec.Command(haproxy, "-db", "-f", cfgFile)
	var logs syncLog
	hp.Stdout, hp.Stderr = &logs, &logs
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })

	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	url := "wss://" + front + "/ws?user=ann"
	// gorilla clients, once HAProxy's checks have the gateways up.
	dialer := gorilla.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 5 * time.Second}
	var gorillas []*gorilla.Conn
	until(t, "HAProxy to pass wss:// upgrades", func() bool {
		c, _, err := dialer.Dial(url, nil)
		if err == nil {
			gorillas = append(gorillas, c)
		}
		return err == nil
	})
	for len(gorillas) < 3 {
		c, _, err := dialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("wss dial: %v\n%s", err, logs.String())
		}
		gorillas = append(gorillas, c)
	}
	for _, c := range gorillas {
		t.Cleanup(func() { c.Close() })
	}
	// A coder client, over its own http.Client.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}},
	})
	if err != nil {
		t.Fatalf("coder wss dial: %v", err)
	}
	defer cc.CloseNow()

	// Echo through TLS, HAProxy, the gateway and its backend.
	gorillas[0].WriteMessage(gorilla.TextMessage, []byte("over tls"))
	if got := read(t, gorillas[0]); got != "over tls" {
		t.Fatalf("echo: %q", got)
	}
	// The gateways see each client's own address (PROXY v2 after TLS).
	local := gorillas[0].NetConn().LocalAddr().String()
	found := 0
	for _, gw := range gws {
		v := mustAPI(t, gw, "GET", "/v1/connections?scope=local", "", 200)
		for _, it := range v["connections"].([]any) {
			if it.(map[string]any)["remote_addr"] == local {
				found++
			}
		}
	}
	if found != 1 {
		t.Fatalf("client %s seen %d times by the gateways", local, found)
	}

	// Interest travels over the NATS routes asynchronously: probe until
	// every node's connections count, then push for real.
	waitCluster(t, 3, gws...)
	until(t, "every node's ann to be reachable", func() bool {
		return count(mustAPI(t, gws[1], "POST", "/v1/users/ann/messages", "probe", 202), "connections") == 4
	})
	mustAPI(t, gws[2], "POST", "/v1/users/ann/messages", "hello wss", 202)
	mustAPI(t, gws[0], "POST", "/v1/users/ann/messages", "marker", 202)
	next := func(i int) string {
		if i < len(gorillas) {
			return read(t, gorillas[i])
		}
		_, msg, err := cc.Read(ctx)
		if err != nil {
			t.Fatalf("coder read: %v", err)
		}
		return string(msg)
	}
	for i := range len(gorillas) + 1 {
		msg := next(i)
		for msg == "probe" {
			msg = next(i)
		}
		if msg != "hello wss" {
			t.Fatalf("client %d: %q", i, msg)
		}
		if m := next(i); m != "marker" {
			t.Fatalf("client %d: %q after the push, want the marker (a duplicate?)", i, m)
		}
	}
}

// selfSigned writes a certificate for localhost and 127.0.0.1 with its
// key, in one PEM file as HAProxy's crt wants, and returns a pool that
// trusts it.
func selfSigned(t *testing.T, dir string) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	file := filepath.Join(dir, "wsgate.pem")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return file, pool
}
