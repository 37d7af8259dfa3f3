package loop

import ()

// cmdKind says what a command asks the loop to do.
type cmdKind uint8

const (
	cmdSend         cmdKind = iota + 1 // write buf, an encoded frame, to c
	cmdClose                           // start the closing handshake on c
	cmdCloseAll                        // close every connection on the loop
	cmdSubscribe                       // add c to topic
	cmdUnsubscribe                     // remove c from the topic named name
	cmdPublish                         // write shared to topic's subscribers (all if nil)
	cmdFunc                            // run fn on the loop
	cmdResume                          // c's mailbox is low: read its input again (inbound.go)
	cmdFailNow                         // c's handler is done: send the held-back close (close.go)
	cmdSessionFlush                    // write what c's session has not written yet (session_frames.go)
)

// command is work handed to a loop by another goroutine: a value, so
// that queuing one allocates nothing. Each field has one meaning, and
// kind says which are set:
//
//	cmdSend         c, buf, n
//	cmdClose        c, code, reason, cause
//	cmdCloseAll     code, reason
//	cmdSubscribe    c, topic
//	cmdUnsubscribe  c, name
//	cmdPublish      topic, shared
//	cmdFunc         fn
//	cmdResume       c
//	cmdFailNow      c
type command struct {
	c      *Conn
	buf    *buffer
	topic  *topic
	shared *sharedFrame
	fn     func()
	reason string // the close reason
	name   string // the topic's name
	n      int    // bytes reserved in c's outbound queue
	code   StatusCode
	kind   cmdKind
	cause  closeCause
}

// enqueue hands cmd to the loop. It reports false if the loop takes no more
// commands (the server is shutting down); the caller keeps cmd's buffer.
func (l *eventLoop) enqueue(cmd command) bool {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return false
	}
	l.inbox = append(l.inbox, cmd)
	l.mu.Unlock()
	l.wake()
	return true
}

// runInbox runs on the loop: every queued command, the timer tick if one is
// due, then dispatch retries. Commands go first so that frames queued for a
// connection are written before a close that a deadline starts.
func (l *eventLoop) runInbox() {
	l.armed.Store(false)
	l.wanted.Store(false)
	l.mu.Lock()
	batch := l.inbox
	l.inbox = l.spare[:0]
	l.mu.Unlock()
	for i := 0; i < len(batch); i++ {
		if batch[i].kind == cmdPublish {
			j := i + 1
			for j < len(batch) && j-i < maxCoalesce && batch[j].kind == cmdPublish && batch[j].topic == batch[i].topic {
				j++
			}
			l.publishRun(batch[i:j])
			clear(batch[i:j])
			i = j - 1
			continue
		}
		if batch[i].kind == cmdSend {
			if n := l.gatherSends(batch, i); n > 1 {
				l.sendRun(l.sends[:n]) // one writev (coalesce.go)
				continue
			}
			l.sends[0] = command{}
		}
		l.exec(&batch[i])
		batch[i] = command{}
	}
	l.spare = batch[:0]
	if l.tickDue.Swap(false) {
		l.tick()
	}
	if len(l.retry) > 0 {
		l.retryDispatch()
	}
	if len(l.reparse) > 0 {
		l.resumeParse()
	}
}

// exec carries out one command on the loop.
func (l *eventLoop) exec(cmd *command) {
	c := cmd.c
	switch cmd.kind {
	case cmdSend:
		c.d().outQueued.Add(-int64(cmd.n)) // Send allocated it (reserve)
		l.releaseSend(cmd.n)
		if c.state == stateOpen {
			frame := l.outFrame(c, cmd.buf.b) // compressed if negotiated (deflate.go)
			if l.write(c, frame) {
				l.stats.messagesOut.Add(1)
				c.countOut(1, len(frame), l.srv.now())
				l.wrote(c)
			}
		} else {
			l.stats.droppedOut.Add(1)
			l.stats.droppedOutBytes.Add(int64(len(cmd.buf.b)))
		}
		putBuffer(cmd.buf)
	case cmdClose:
		if c.state == stateOpen {
			l.startClose(c, cmd.code, cmd.reason, cmd.cause)
		}
	case cmdCloseAll:
		l.closeAll(cmd.code, cmd.reason)
	case cmdFunc:
		cmd.fn()
	case cmdSubscribe:
		l.subscribe(c, cmd.topic)
	case cmdUnsubscribe:
		if c.state != stateClosed || keptAnchor(c) {
			l.unsubscribe(c, cmd.name)
		}
	case cmdResume:
		l.resumeIn(c)
	case cmdFailNow:
		l.failPendingNow(c)
	case cmdSessionFlush:
		l.flushSession(c)
	}
}

// shutdown stops the inbox and returns what was still queued, so the
// caller can release its buffers.
func (l *eventLoop) shutdown() {
	l.mu.Lock()
	l.shut = true
	batch := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for i := range batch {
		if batch[i].kind == cmdSend {
			l.releaseSend(batch[i].n)
		}
		putBuffer(batch[i].buf)
		if batch[i].shared != nil {
			if batch[i].kind == cmdPublish {
				l.srv.pace.unwritten.Add(-int64(len(batch[i].shared.buf.b)))
			}
			batch[i].shared.release()
		}
		if batch[i].kind == cmdSubscribe {
			l.srv.topics.release(batch[i].topic, l.idx, false)
		}
	}
}
