package cluster

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
)

// Node names and connection IDs.
//
// A node's name is its node ID (--node-id, chosen by the operator, or the
// host name and process ID), a '-' and a boot token: eight characters of
// base32 drawn at random when the process starts (40 bits). So a
// restarted node, even with the same node ID, has a new name, and a
// connection ID of the old process can never name a connection of the new
// one. Two live processes with the same node ID differ by their tokens
// (one in 2^40 that they do not).
//
// A connection's cluster ID is its node's name, '-' and the connection's
// decimal ID within that process (the single-node ID): "gw1-k3j9x0qa-1099511627777".
// The decimal part after the last '-' is the local ID, the rest the node
// that holds it, so an ID routes itself without a lookup.

// MaxNameLen bounds cluster names and node IDs.
const MaxNameLen = 64

// Errors of names.
var (
	ErrBadName   = errors.New("cluster: a cluster name or node ID must be 1 to 64 bytes of A-Z a-z 0-9 _ -")
	ErrBadConnID = errors.New("cluster: not a connection ID")
)

// CheckName reports whether s may be a cluster name or a node ID.
func CheckName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen || !plain(s) {
		return ErrBadName
	}
	return nil
}

// DefaultNodeID returns the host name (its first label, cleaned to the
// characters of a name) and the process ID: "web3-4711".
func DefaultNodeID() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	var b strings.Builder
	for i := 0; i < len(host) && b.Len() < 40; i++ {
		if c := host[i]; plain(string(c)) {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		b.WriteString("node")
	}
	return b.String() + "-" + strconv.Itoa(os.Getpid())
}

var bootEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// nodeName returns id with a fresh boot token.
func nodeName(id string) string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return id + "-" + bootEncoding.EncodeToString(b[:])
}

// ConnID returns the cluster ID of connection local on node.
func ConnID(node string, local uint64) string {
	return node + "-" + strconv.FormatUint(local, 10)
}

// SplitConnID splits a cluster connection ID into its node's name and its
// local ID.
func SplitConnID(id string) (node string, local uint64, err error) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, ErrBadConnID
	}
	local, perr := strconv.ParseUint(id[i+1:], 10, 64)
	if perr != nil {
		return "", 0, ErrBadConnID
	}
	node = id[:i]
	if len(node) > MaxNameLen+9 || !plain(node) {
		return "", 0, ErrBadConnID
	}
	return node, local, nil
}

// newOrigin draws the MsgID.Origin of a node's run: random, never 0.
func newOrigin() uint64 {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		if o := binary.BigEndian.Uint64(b[:]); o != 0 {
			return o
		}
	}
}
