// Package js holds the wsgate JavaScript client, wsgate.js, embedded at
// build time so that the gateway serves it at GET /wsgate.js (gateway's
// routes.go). It never changes the file: what the tests of client/js run
// is what the gateway serves.
package js

import _ "embed"

// Source is client/js/wsgate.js.
//
//go:embed wsgate.js
var Source []byte
