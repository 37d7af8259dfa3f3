package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// With --jwt-secret every connection logs in as its own user: its upgrade
// request carries "Authorization: Bearer" and an HS256 token (RFC 7519)
// whose subject is "u" and the connection's global index (u0, u1, ...,
// across every --procs child), so that a script can push to one user
// through the gateways' admin API and know which connection must get it
// (bench/million.sh does). The token is made once per attempt, on the
// handshake path only.

// tokenTTL is how long a token is valid: longer than any run.
const tokenTTL = 24 * time.Hour

// jwtHeader is base64url({"alg":"HS256","typ":"JWT"}).
const jwtHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// userName is the user connection gid logs in as.
func userName(gid uint32) string { return "u" + strconv.FormatUint(uint64(gid), 10) }

// appendAuthHeader appends the Authorization header line of connection
// gid, signed with secret, valid from now for tokenTTL.
func appendAuthHeader(dst []byte, secret []byte, gid uint32, now time.Time) []byte {
	payload := `{"sub":"` + userName(gid) + `","iat":` + strconv.FormatInt(now.Unix(), 10) +
		`,"exp":` + strconv.FormatInt(now.Add(tokenTTL).Unix(), 10) + `}`
	dst = append(dst, "Authorization: Bearer "...)
	tok := len(dst)
	dst = append(dst, jwtHeader...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, []byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write(dst[tok:])
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, mac.Sum(nil))
	return append(dst, "\r\n"...)
}
