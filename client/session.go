package client

import "github.com/gorilla/websocket"

// retainLocked numbers an envelope send and keeps it until the server
// confirms it, within the retention bound: past it the oldest leave, and
// evicted records the last one that left (docs/resume.md §6). Under mu.
func (c *Client) retainLocked(t MessageType, data []byte) {
	c.tx++
	c.retained = append(c.retained, retainedMsg{idx: c.tx, t: t, data: data})
	c.retainedBytes += len(data)
	for len(c.retained) > c.o.RetainMessages || c.retainedBytes > c.o.RetainBytes {
		old := c.retained[0]
		c.retained[0] = retainedMsg{}
		c.retained = c.retained[1:]
		c.retainedBytes -= len(old.data)
		c.evicted = old.idx
	}
}

// confirmLocked drops what the server took (in). Under mu.
func (c *Client) confirmLocked(in uint64) {
	for len(c.retained) > 0 && c.retained[0].idx <= in {
		c.retainedBytes -= len(c.retained[0].data)
		c.retained[0] = retainedMsg{}
		c.retained = c.retained[1:]
	}
	c.confirmed = in
}

// forget ends the session on this side; the next open reports the gap
// and the sends whose fate is unknown.
func (c *Client) forget(reason string) {
	c.mu.Lock()
	if c.session != "" || c.tx > c.confirmed {
		n := int(c.tx - c.confirmed)
		if c.pendingMis != nil {
			n += c.pendingMis.UnconfirmedSends
		}
		c.pendingMis = &Missed{Reason: reason, UnconfirmedSends: n}
	}
	c.tx, c.confirmed, c.evicted = 0, 0, 0
	c.retained, c.retainedBytes = nil, 0
	c.mu.Unlock()
	c.session = ""
	c.rx, c.unacked = 0, 0
}

// flush makes conn the connection Send writes to and writes, in order,
// resend (what a resumed server did not take) and the offline queue. The
// caller holds wmu, so no Send overtakes them. A write that fails leaves
// the rest to the next connection: retained with the envelope, queued
// again without.
func (c *Client) flush(conn *websocket.Conn, env bool, resend []retainedMsg) {
	c.mu.Lock()
	todo := make([]queued, 0, len(resend)+len(c.queue))
	for _, m := range resend {
		todo = append(todo, queued{m.t, m.data})
	}
	for _, q := range c.queue {
		if env {
			c.retainLocked(q.t, q.data)
		}
		todo = append(todo, q)
	}
	c.queue, c.queueBytes = nil, 0
	c.conn, c.envelope = conn, env
	c.mu.Unlock()
	for i, q := range todo {
		if err := c.write(conn, env, q.t, q.data); err != nil {
			conn.NetConn().Close() // the reader notices and reconnects
			c.mu.Lock()
			c.conn = nil
			if !env {
				c.requeueLocked(todo[i:])
			}
			c.mu.Unlock()
			return
		}
	}
}

// requeueLocked puts unwritten plain messages back at the head of the
// queue. Under mu.
func (c *Client) requeueLocked(q []queued) {
	c.queue = append(append([]queued(nil), q...), c.queue...)
	for _, m := range q {
		c.queueBytes += len(m.data)
	}
}
