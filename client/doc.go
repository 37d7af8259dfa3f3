// Package client is wsgate's Go client: one logical connection that
// outlives its WebSocket connections. It reconnects with full-jitter
// exponential backoff, honours Retry-After on a refused upgrade and the
// "retry-after=N" hint of a close reason, detects a dead connection by
// silence, keeps a bounded offline queue, and with Options.Resume speaks
// the resume envelope of docs/resume.md: after a drop it resumes its
// session, so every message the server sent meanwhile arrives once and in
// order, or OnMissed says why not.
//
//	c, err := client.Dial(ctx, "ws://localhost:8080/ws", client.Options{
//		Resume:    true,
//		OnMessage: func(t client.MessageType, data []byte) { ... },
//	})
//	...
//	err = c.Send(client.Text, []byte("hello"))
//	...
//	c.Close()
//
// It is built on gorilla/websocket (a WebSocket implementation nobody here
// wrote, so client and gateway cannot share a misreading of RFC 6455),
// which starts no goroutine of its own and exposes what a reconnecting
// client needs: the refused handshake's response, ping and pong handlers,
// read deadlines, a custom dialer, and pooled write buffers.
//
// Cost per client: one goroutine (dial, read, backoff: callbacks run on
// it, in order), one runtime timer while connected (the silence watchdog),
// gorilla's read buffer (Options.ReadBufferSize, default 1 KiB; write
// buffers come from a shared pool and are held only while writing), and
// the queues, which are empty while connected and reading.
//
// The package never drops a message silently: a Send past the offline
// queue's bound returns ErrQueueFull, messages still queued when the client
// ends are counted in the error given to OnClose, and sends whose fate a
// failed resume made unknown are counted in Missed. It never starts a
// goroutine per message or per connection beyond the one per Client.
package client
