// Package cluster joins wsgate gateways into one cluster over core NATS:
// a message for a topic, a user or a connection reaches whichever node
// holds the subscribers, the user's connections or the connection.
//
// A Node is one gateway process's member of the cluster. It is a NATS
// client (github.com/nats-io/nats.go) and holds, for this process:
//
//   - one NATS subscription per topic with a local subscriber and per user
//     with a local connection, made and removed as interest begins and
//     ends (interest.go), so a publish travels only to the nodes that
//     need it, once per node;
//   - a subscription to its own node subject, where other nodes send it
//     requests about its connections (request.go), and to the subject
//     every node hears, for broadcasts, scatter-gather requests and
//     heartbeats (registry.go);
//   - the registry of the nodes it has heard from.
//
// The subject layout, the message format and the node names are in
// subject.go, envelope.go and name.go; docs/cluster.md describes them for
// operators.
//
// Delivery is core NATS's: at most once. A message for the local node
// never travels through NATS (the connection is made with NoEcho): the
// caller delivers it locally, and the Node publishes it for the others.
// When NATS is unreachable every call that would need it fails at once
// with ErrUnavailable; nothing is buffered for later (a reconnect would
// otherwise deliver pushes whose callers were told they failed).
//
// The package never imports gateway or loop: the gateway hands it a Local
// to deliver to and Routes to answer requests with. It never runs on an
// event loop and never blocks one: the interest callbacks only mark a name
// for a goroutine of its own to act on.
package cluster
