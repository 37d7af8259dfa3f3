package cluster

import (
	"encoding/binary"
	"errors"
)

// The message format. Every message a node sends starts with the wire
// version and a kind byte; what follows depends on the kind. The payload
// of a push travels once, as the tail of the message, never re-encoded:
//
//	data     [2][kind 't'|'u'|'a'][op][origin, 8 bytes BE][seq, 8 bytes BE]
//	         [name length, 2 bytes BE][name][payload]
//	barrier  [2]['f']
//	request  [2]['r'][verb][body]
//	answer   [2]['s'][from length][from][status, 2 bytes BE][body]
//	counts   [2]['d'][from length][from][uvarint connections, sent, slow, closed]
//	ack      [2]['k'][from length][from]
//	beat     [2]['h'][JSON of heartbeat]
//
// A data message carries its MsgID: the node that sent it first and that
// node's count, so that a node a session moves to can tell the messages
// the old node had for it from the ones it has yet to deliver
// (docs/cluster.md, "Sessions that move"). Version 2 added it.
//
// A node that meets another version drops the message and counts it
// (Stats.Undecodable): a mixed-version cluster degrades visibly instead of
// misreading bytes.

const wireVersion = 2

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

// MsgID numbers a message across the cluster: Origin is the node that
// sent it first (a random number per run of a node, never 0) and Seq
// that node's count of the messages it sent. Messages of one origin reach
// each node in Seq order (one NATS connection each way). The zero MsgID
// numbers nothing.
type MsgID struct{ Origin, Seq uint64 }

// dataHeaderSize is the size of a data message without name and payload.
const dataHeaderSize = 21

func appendData(dst []byte, kind, op byte, id MsgID, name string, payload []byte) []byte {
	dst = append(dst, wireVersion, kind, op)
	dst = binary.BigEndian.AppendUint64(dst, id.Origin)
	dst = binary.BigEndian.AppendUint64(dst, id.Seq)
	dst = append(dst, byte(len(name)>>8), byte(len(name)))
	dst = append(dst, name...)
	return append(dst, payload...)
}

// parseData splits a data message. name and payload alias b.
func parseData(b []byte) (op byte, id MsgID, name, payload []byte, err error) {
	if len(b) < dataHeaderSize {
		return 0, MsgID{}, nil, nil, errShort
	}
	n := int(b[19])<<8 | int(b[20])
	if n > len(b)-dataHeaderSize {
		return 0, MsgID{}, nil, nil, errShort
	}
	id = MsgID{Origin: binary.BigEndian.Uint64(b[3:]), Seq: binary.BigEndian.Uint64(b[11:])}
	return b[2], id, b[dataHeaderSize : dataHeaderSize+n], b[dataHeaderSize+n:], nil
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
