package main

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The token loadtest signs is one an independent JWT library accepts, with
// the connection's user as subject.
func TestAuthHeaderToken(t *testing.T) {
	line := string(appendAuthHeader(nil, []byte("s3cret"), 42, time.Now()))
	tok, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r\n"), "Authorization: Bearer ")
	if !ok || strings.ContainsAny(tok, " \r\n") {
		t.Fatalf("header line %q", line)
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return []byte("s3cret"), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "u42" {
		t.Fatalf("subject %q, want u42", claims.Subject)
	}
	if _, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return []byte("other"), nil }); err == nil {
		t.Fatal("a token signed with s3cret verified with another secret")
	}
}
