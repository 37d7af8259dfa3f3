package cluster

import (
	"errors"

	"github.com/nats-io/nats.go"
)

// Sending: envelopes from a pool, published without waiting. A call that
// needs NATS while it is unreachable fails at once with ErrUnavailable.

// buf returns an envelope buffer from the pool; publish gives it back.
func (n *Node) buf() []byte {
	if p, ok := n.bufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 256)
}

func (n *Node) putBuf(b []byte) {
	if cap(b) <= 64<<10 {
		n.bufs.Put(&b)
	}
}

// publish sends msg to subject, with reply if set, and recycles msg:
// NATS's client has copied it by the time Publish returns.
func (n *Node) publish(subject, reply string, msg []byte) error {
	var err error
	if !n.nc.IsConnected() {
		err = ErrUnavailable
	} else if reply == "" {
		err = n.nc.Publish(subject, msg)
	} else {
		err = n.nc.PublishRequest(subject, reply, msg)
	}
	n.putBuf(msg)
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrTooLarge
	case err != nil:
		n.ctr.unavailable.Add(1)
		return ErrUnavailable
	}
	n.ctr.published.Add(1)
	return nil
}

// reply answers a request; a lost NATS connection loses the answer,
// which the asker sees as a timeout.
func (n *Node) reply(to string, msg []byte) {
	_ = n.publish(to, "", msg)
}

// NextID numbers a message this node sends: the caller delivers it to its
// own connections with the ID and then publishes it with the same one.
func (n *Node) NextID() MsgID { return MsgID{Origin: n.origin, Seq: n.seq.Add(1)} }

// LastID returns the ID NextID gave last (Seq 0 before the first).
func (n *Node) LastID() MsgID { return MsgID{Origin: n.origin, Seq: n.seq.Load()} }

// Origin returns the node's origin number (MsgID.Origin of its messages).
func (n *Node) Origin() uint64 { return n.origin }

// publishData sends a message to the other nodes' subscribers of topic
// (kind 't'), connections of user ('u'), or every connection (Broadcast:
// name ignored). The node's own connections are the caller's to deliver
// to, with the same id.
func (n *Node) publishData(id MsgID, kind byte, name string, op byte, payload []byte) error {
	if len(name) > MaxNameBytes {
		return ErrNameTooLong
	}
	if !n.nc.IsConnected() {
		n.ctr.unavailable.Add(1)
		return ErrUnavailable
	}
	subject := n.subj.all
	switch kind {
	case kindTopic:
		subject = n.subj.topic(name)
	case kindUser:
		subject = n.subj.user(name)
	}
	return n.publish(subject, "", appendData(n.buf(), kind, op, id, name, payload))
}

// PublishTopic sends a message, numbered id (NextID), to the subscribers
// of topic on the other nodes, without waiting.
func (n *Node) PublishTopic(id MsgID, topic string, op byte, payload []byte) error {
	return n.publishData(id, kindTopic, topic, op, payload)
}

// PublishUser sends a message, numbered id, to the connections of user on
// the other nodes, without waiting.
func (n *Node) PublishUser(id MsgID, user string, op byte, payload []byte) error {
	return n.publishData(id, kindUser, user, op, payload)
}

// Broadcast sends a message to every connection of the other nodes,
// without waiting.
func (n *Node) Broadcast(id MsgID, op byte, payload []byte) error {
	return n.publishData(id, kindAll, "", op, payload)
}

// TopicInterest implements loop.Observer.
func (n *Node) TopicInterest(name string, _ bool) { n.interest.mark(kindTopic, name) }

// UserInterest implements loop.Observer.
func (n *Node) UserInterest(user string, _ bool) { n.interest.mark(kindUser, user) }
