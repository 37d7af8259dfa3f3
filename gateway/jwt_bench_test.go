package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The cost of a token check decides where it runs (policy.go): HS256 on
// the event loop, public-key signatures on the handshake pool.
func BenchmarkJWTVerify(b *testing.B) {
	claims := jwt.RegisteredClaims{Subject: "user-1234", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		sign   any
		verify any
	}{
		{"HS256", jwt.SigningMethodHS256, []byte("secret"), []byte("secret")},
		{"ES256", jwt.SigningMethodES256, ec, &ec.PublicKey},
		{"RS256", jwt.SigningMethodRS256, rs, &rs.PublicKey},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tok, err := jwt.NewWithClaims(tc.method, claims).SignedString(tc.sign)
			if err != nil {
				b.Fatal(err)
			}
			v := &jwtVerifier{key: tc.verify, parser: jwt.NewParser(jwt.WithExpirationRequired(),
				jwt.WithValidMethods([]string{tc.method.Alg()}))}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
