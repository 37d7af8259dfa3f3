package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/gateway"
)

func hsToken(t testing.TB, secret string, claims jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func esToken(t testing.TB, key *ecdsa.PrivateKey, claims jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, exp time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(exp))}
}

// writePublicKey writes key's public half as a PEM file and returns its
// path.
func writePublicKey(t testing.TB, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tokenPlace puts a token where a client may: a header, the query, or a
// subprotocol entry next to a real one.
type tokenPlace struct {
	name string
	dial func(t testing.TB, url, token string) (status int, subprotocol string)
}

var tokenPlaces = []tokenPlace{
	{"header", func(t testing.TB, url, token string) (int, string) {
		return dialAndProtocol(t, url, http.Header{"Authorization": {"Bearer " + token}})
	}},
	{"query", func(t testing.TB, url, token string) (int, string) {
		return dialAndProtocol(t, url+"?room=1&token="+token, nil)
	}},
	{"protocol", func(t testing.TB, url, token string) (int, string) {
		return dialAndProtocol(t, url, nil, "chat", "bearer."+token)
	}},
}

func dialAndProtocol(t testing.TB, url string, h http.Header, protocols ...string) (int, string) {
	t.Helper()
	c, resp, err := dialWS(t, url, h, protocols...)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
			return 0, ""
		}
		if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer")
		}
		return resp.StatusCode, ""
	}
	defer c.Close()
	return 101, c.Subprotocol()
}

// A token is accepted from each of the three places, its sub becomes the
// user, and expired, not yet valid, unsigned, wrongly signed, sub-less and
// exp-less tokens are refused with 401; with HS256 on the loop and with
// ES256 on the handshake pool.
func TestJWT(t *testing.T) {
	const secret = "s3cret"
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, mode := range []struct {
		name string
		cfg  gateway.Config
		sign func(jwt.RegisteredClaims) string
		bad  func(jwt.RegisteredClaims) string // a good signer with the wrong key
	}{
		{"HS256", gateway.Config{JWTSecret: secret},
			func(c jwt.RegisteredClaims) string { return hsToken(t, secret, c) },
			func(c jwt.RegisteredClaims) string { return hsToken(t, "other", c) }},
		{"ES256", gateway.Config{JWTKeyFile: writePublicKey(t, key)},
			func(c jwt.RegisteredClaims) string { return esToken(t, key, c) },
			func(c jwt.RegisteredClaims) string { return esToken(t, other, c) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			opened := make(chan *gateway.Conn, 10)
			srv := startServer(t, mode.cfg, gateway.HandlerFuncs{Open: func(c *gateway.Conn) { opened <- c }})
			notYet := claims("ann", time.Hour)
			notYet.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
			noExp := jwt.RegisteredClaims{Subject: "ann"}
			unsigned, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("ann", time.Hour)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			for _, p := range tokenPlaces {
				t.Run(p.name, func(t *testing.T) {
					status, proto := p.dial(t, wsURL(srv), mode.sign(claims("ann", time.Hour)))
					if status != 101 {
						t.Fatalf("valid token: %d", status)
					}
					if c := <-opened; c.User() != "ann" {
						t.Fatalf("user %q", c.User())
					}
					if p.name == "protocol" && proto != "chat" {
						t.Fatalf("subprotocol %q, want chat (never the token)", proto)
					}
					for name, tok := range map[string]string{
						"expired":   mode.sign(claims("ann", -time.Minute)),
						"not yet":   mode.sign(notYet),
						"no exp":    mode.sign(noExp),
						"no sub":    mode.sign(claims("", time.Hour)),
						"wrong key": mode.bad(claims("ann", time.Hour)),
						"unsigned":  unsigned,
						"garbage":   "abc.def.ghi",
					} {
						if status, _ := p.dial(t, wsURL(srv), tok); status != 401 {
							t.Errorf("%s token: status %d, want 401", name, status)
						}
					}
				})
			}
			if status := dialStatus(t, wsURL(srv), nil); status != 401 {
				t.Fatalf("no token: %d", status)
			}
			if n := metricValue(t, srv, "wsgate_handshake_refusals_total", "reason", "token_invalid"); n != 21 {
				t.Errorf("token_invalid refusals: %v", n)
			}
		})
	}
}

// The connect hook runs after the token check and sees its user.
func TestJWTThenBackend(t *testing.T) {
	b := newFakeBackend(t)
	srv := startServer(t, gateway.Config{JWTSecret: "k", Backend: b.URL}, nil)
	if status := dialStatus(t, wsURL(srv)+"?token="+hsToken(t, "x", claims("eve", time.Hour)), nil); status != 401 {
		t.Fatalf("bad token: %d", status)
	}
	if b.lastConnect() != nil {
		t.Fatal("the backend heard of a request with a bad token")
	}
	tok := hsToken(t, "k", claims("ann", time.Hour))
	mustDial(t, wsURL(srv), nil, "v1", "bearer."+tok)
	req := b.lastConnect()
	if req["user"] != "ann" || len(req["protocols"].([]any)) != 1 {
		t.Fatalf("connect hook got %v", req)
	}
	waitFor(t, func() bool { return len(srv.UserConns("ann", nil)) == 1 })
}

func TestAllowedOrigins(t *testing.T) {
	srv := startServer(t, gateway.Config{AllowedOrigins: []string{"https://app.example.com", "*.example.org", "localhost:3000"}}, gateway.Echo{})
	for origin, want := range map[string]int{
		"":                         101, // not a browser
		"https://app.example.com":  101,
		"HTTPS://APP.EXAMPLE.COM":  101,
		"http://app.example.com":   403,
		"https://a.b.example.org":  101,
		"http://x.example.org:81":  101,
		"https://example.org":      403,
		"https://evilexample.org":  403,
		"http://localhost:3000":    101,
		"http://localhost:3001":    403,
		"null":                     403,
		"https://app.example.com.": 403,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if got := dialStatus(t, wsURL(srv), h); got != want {
			t.Errorf("Origin %q: %d, want %d", origin, got, want)
		}
	}
}

func TestAuthConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		cfg   gateway.Config
		field string
	}{
		{gateway.Config{JWTSecret: "a", JWTKeyFile: notPEM}, "JWTKeyFile"},
		{gateway.Config{JWTKeyFile: notPEM}, "JWTKeyFile"},
		{gateway.Config{JWTKeyFile: filepath.Join(dir, "missing.pem")}, "JWTKeyFile"},
		{gateway.Config{AllowedOrigins: []string{"https://*"}}, "AllowedOrigins"},
		{gateway.Config{Admin: "0.0.0.0:9090"}, "AdminToken"},
		{gateway.Config{Admin: ":9090"}, "AdminToken"},
		{gateway.Config{Backend: "ftp://x"}, "Backend"},
		{gateway.Config{Backend: "http://x", Workers: -1}, "Workers"},
	} {
		_, err := gateway.NewServer(tc.cfg, nil)
		ce, ok := errors.AsType[*gateway.ConfigError](err)
		if !ok || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one about %s", tc.cfg, err, tc.field)
		}
	}
	if _, err := gateway.NewServer(gateway.Config{Backend: "http://x"}, gateway.Echo{}); err == nil {
		t.Error("Backend with a Handler: no error")
	}
	if _, err := gateway.NewServer(gateway.Config{JWTSecret: "x"}, &deferHook{}); err == nil {
		t.Error("JWT with a HandshakeHook: no error")
	}
}
