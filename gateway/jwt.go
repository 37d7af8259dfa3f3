package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// jwtVerifier checks the token of an upgrade request (Config.JWTSecret,
// JWTKeyFile). HS256 costs a few microseconds and runs on the event loop
// when nothing else has to wait; signatures with public keys cost tens of
// microseconds and run on the handshake pool (see policy.go).
type jwtVerifier struct {
	key    any // []byte for HS256, else the public key
	parser *jwt.Parser
	cheap  bool // HMAC: fine on the loop
}

func newJWTVerifier(cfg *Config) (*jwtVerifier, error) {
	opts := []jwt.ParserOption{jwt.WithExpirationRequired()}
	if cfg.JWTIssuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.JWTIssuer))
	}
	if cfg.JWTAudience != "" {
		opts = append(opts, jwt.WithAudience(cfg.JWTAudience))
	}
	v := &jwtVerifier{}
	switch {
	case cfg.JWTSecret != "":
		v.key, v.cheap = []byte(cfg.JWTSecret), true
		opts = append(opts, jwt.WithValidMethods([]string{"HS256"}))
	case cfg.JWTKeyFile != "":
		pemBytes, err := os.ReadFile(cfg.JWTKeyFile)
		if err != nil {
			return nil, badField("JWTKeyFile", err.Error())
		}
		key, alg, err := parsePublicKey(pemBytes)
		if err != nil {
			return nil, badField("JWTKeyFile", cfg.JWTKeyFile+": "+err.Error())
		}
		v.key = key
		opts = append(opts, jwt.WithValidMethods([]string{alg}))
	default:
		return nil, nil
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// parsePublicKey reads the first PEM block of a public key (PKIX or
// PKCS #1) or certificate, and returns the key and the one algorithm
// accepted with it: pinning the algorithm to the key's type is what keeps
// a token from choosing how it is checked.
func parsePublicKey(data []byte) (any, string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, "", fmt.Errorf("PEM block %q, want PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return nil, "", err
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k, "RS256", nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", errors.New("ECDSA key not on P-256 (ES256)")
		}
		return k, "ES256", nil
	case ed25519.PublicKey:
		return k, "EdDSA", nil
	}
	return nil, "", fmt.Errorf("unsupported key type %T", key)
}

var errNoSubject = errors.New("token has no sub claim")

// verify checks token and returns its subject.
func (v *jwtVerifier) verify(token string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return "", err
	}
	if claims.Subject == "" {
		return "", errNoSubject
	}
	return claims.Subject, nil
}

// Where a token was found.
const (
	tokenNone uint8 = iota
	tokenHeader
	tokenQuery
	tokenProtocol
)

// protocolTokenPrefix marks a Sec-WebSocket-Protocol entry that carries a
// token, the one header a browser's WebSocket lets a page set. The entry is
// never selected as the subprotocol.
const protocolTokenPrefix = "bearer."

// requestToken finds the request's token: "Authorization: Bearer", the
// token query parameter, or a "bearer.TOKEN" subprotocol entry, in that
// order. It runs on the loop; the result is a copy.
func requestToken(r *Request) (string, uint8) {
	if h := r.Header("Authorization"); len(h) > 7 && bytes.EqualFold(h[:7], []byte("bearer ")) {
		return string(bytes.TrimSpace(h[7:])), tokenHeader
	}
	if t, ok := queryParam(r.Query(), "token"); ok && t != "" {
		return t, tokenQuery
	}
	for _, p := range r.Protocols() {
		if len(p) > len(protocolTokenPrefix) && bytes.EqualFold(p[:len(protocolTokenPrefix)], []byte(protocolTokenPrefix)) {
			return string(p[len(protocolTokenPrefix):]), tokenProtocol
		}
	}
	return "", tokenNone
}

// queryParam returns the first value of name in a raw query string.
func queryParam(q []byte, name string) (string, bool) {
	for len(q) > 0 {
		var kv []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, nil
		}
		k, v, _ := bytes.Cut(kv, []byte("="))
		if string(k) != name {
			continue
		}
		s, err := url.QueryUnescape(string(v))
		return s, err == nil
	}
	return "", false
}

// isTokenProtocol reports whether a subprotocol entry carries a token.
func isTokenProtocol(p string) bool {
	return len(p) > len(protocolTokenPrefix) && strings.EqualFold(p[:len(protocolTokenPrefix)], protocolTokenPrefix)
}
