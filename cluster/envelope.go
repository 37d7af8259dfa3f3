package cluster

import (
	"encoding/binary"
	"errors"
)

// The message format. Every message a node sends starts with the wire
// version and a kind byte; what follows depends on the kind. The payload
// of a push travels once, as the tail of the message, never re-encoded:
//
//	data     [1][kind 't'|'u'|'a'][op][name length, 2 bytes BE][name][payload]
//	barrier  [1]['f']
//	request  [1]['r'][verb][body]
//	answer   [1]['s'][from length][from][status, 2 bytes BE][body]
//	counts   [1]['d'][from length][from][uvarint connections, sent, slow, closed]
//	ack      [1]['k'][from length][from]
//	beat     [1]['h'][JSON of heartbeat]
//
// A node that meets another version drops the message and counts it
// (Stats.Undecodable): a mixed-version cluster degrades visibly instead of
// misreading bytes.

const wireVersion = 1

// Message kinds.
const (
	kindTopic     byte = 't'
	kindUser      byte = 'u'
	kindAll       byte = 'a'
	kindBarrier   byte = 'f'
	kindRequest   byte = 'r'
	kindAnswer    byte = 's'
	kindDelivered byte = 'd'
	kindAck       byte = 'k'
	kindHeartbeat byte = 'h'
)

// MaxNameBytes bounds a topic or user name sent through the cluster.
const MaxNameBytes = 1<<16 - 1

// Errors of the message format.
var (
	errShort   = errors.New("cluster: message too short")
	errVersion = errors.New("cluster: unknown wire version")
	// ErrNameTooLong is returned for a topic or user name over
	// MaxNameBytes.
	ErrNameTooLong = errors.New("cluster: topic or user name over 65535 bytes")
)

// dataHeaderSize is the size of a data message without name and payload.
const dataHeaderSize = 5

func appendData(dst []byte, kind, op byte, name string, payload []byte) []byte {
	dst = append(dst, wireVersion, kind, op, byte(len(name)>>8), byte(len(name)))
	dst = append(dst, name...)
	return append(dst, payload...)
}

// parseData splits a data message. name and payload alias b.
func parseData(b []byte) (op byte, name, payload []byte, err error) {
	if len(b) < dataHeaderSize {
		return 0, nil, nil, errShort
	}
	n := int(b[3])<<8 | int(b[4])
	if n > len(b)-dataHeaderSize {
		return 0, nil, nil, errShort
	}
	return b[2], b[dataHeaderSize : dataHeaderSize+n], b[dataHeaderSize+n:], nil
}

// kindOf checks the version and returns the kind of message b.
func kindOf(b []byte) (byte, error) {
	if len(b) < 2 {
		return 0, errShort
	}
	if b[0] != wireVersion {
		return 0, errVersion
	}
	return b[1], nil
}

func appendFrom(dst []byte, kind byte, from string) []byte {
	dst = append(dst, wireVersion, kind, byte(len(from)))
	return append(dst, from...)
}

// parseFrom reads the sender of a reply and returns the rest.
func parseFrom(b []byte) (from string, rest []byte, err error) {
	if len(b) < 3 {
		return "", nil, errShort
	}
	n := int(b[2])
	if n > len(b)-3 {
		return "", nil, errShort
	}
	return string(b[3 : 3+n]), b[3+n:], nil
}

func appendAnswer(dst []byte, from string, status int, body []byte) []byte {
	dst = appendFrom(dst, kindAnswer, from)
	dst = append(dst, byte(status>>8), byte(status))
	return append(dst, body...)
}

func parseAnswer(rest []byte) (status int, body []byte, err error) {
	if len(rest) < 2 {
		return 0, nil, errShort
	}
	return int(binary.BigEndian.Uint16(rest)), rest[2:], nil
}

func appendCounts(dst []byte, from string, d Delivery) []byte {
	dst = appendFrom(dst, kindDelivered, from)
	for _, v := range [...]int{d.Connections, d.Sent, d.Slow, d.Closed} {
		dst = binary.AppendUvarint(dst, uint64(max(v, 0)))
	}
	return dst
}

func parseCounts(rest []byte) (Delivery, error) {
	var v [4]int
	for i := range v {
		x, n := binary.Uvarint(rest)
		if n <= 0 || x > 1<<40 {
			return Delivery{}, errShort
		}
		v[i], rest = int(x), rest[n:]
	}
	return Delivery{Connections: v[0], Sent: v[1], Slow: v[2], Closed: v[3]}, nil
}
