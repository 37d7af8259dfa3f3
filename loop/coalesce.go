package loop

// Coalescing. The frames queued for one connection within one drain of
// the inbox go out in one writev instead of one write each: the system
// call, not the bytes, is what a small frame costs. From a send, drain
// looks ahead (at most sendLookahead commands) for more sends to the same
// connection and takes them into the run, skipping other connections'
// commands (order between connections does not matter) and stopping at
// any other command of the same connection (a close must stay behind the
// frames before it and ahead of those after it) and at a command that is
// not a connection's (a publish, a close of all, a function), whose order
// against the sends must hold. Publishes to one topic coalesce the same
// way (publishRun, topics.go).

// sendLookahead bounds the scan for more sends to one connection.
const sendLookahead = 32

// sendRunBytes bounds a run's frames: coalescing saves a system call per
// small frame, and a run holds its buffers until its writev is done, so
// large frames go one by one, each buffer back in the pool for the next
// Send as soon as it is written.
const sendRunBytes = 64 << 10

// gatherSends collects into l.sends the send batch[i] and the later sends
// to the same connection that may join it (see above), clearing their
// slots in batch so that drain skips them. It returns how many it took.
func (l *eventLoop) gatherSends(batch []command, i int) int {
	c := batch[i].c
	if c.deflating() {
		// Each frame is compressed on its own into the loop's one
		// scratch (outFrame, deflate.go): they go one by one.
		l.sends = append(l.sends[:0], batch[i])
		return 1
	}
	run := append(l.sends[:0], batch[i])
	size := len(batch[i].buf.b)
	for j := i + 1; j < len(batch) && j-i <= sendLookahead && len(run) < maxCoalesce; j++ {
		b := &batch[j]
		switch {
		case b.kind == 0: // taken by an earlier run
		case b.c == nil:
			j = len(batch) // a command of no one connection: keep the order
		case b.c != c:
		case b.kind == cmdSend:
			if len(b.buf.b) > sendRunBytes-size {
				j = len(batch) // the run is full; the rest keep their order after it
				break
			}
			size += len(b.buf.b)
			run = append(run, *b)
			*b = command{}
		default:
			j = len(batch) // c's close or subscription: stays between its frames
		}
	}
	l.sends = run
	if len(run) > 1 {
		batch[i] = command{}
	}
	return len(run)
}

// sendRun writes the frames of cmds, all cmdSend to one connection, with
// one writev, and accounts for them as exec does for each; it clears cmds.
func (l *eventLoop) sendRun(cmds []command) {
	c := cmds[0].c
	iov := l.iov[:0]
	total := 0
	reserved := 0
	for i := range cmds {
		iov = append(iov, cmds[i].buf.b)
		total += len(cmds[i].buf.b)
		reserved += cmds[i].n
	}
	n := int64(len(cmds))
	if c.state == stateOpen && l.writev(c, iov) {
		l.stats.messagesOut.Add(n)
		c.countOut(n, total, l.srv.now())
		l.wrote(c)
	} else {
		l.stats.droppedOut.Add(n)
		l.stats.droppedOutBytes.Add(int64(total))
	}
	// Only now, with the snapshot of gnet's buffer refreshed (wrote), do
	// the frames leave the queued count: a Send meanwhile sees them in
	// one or the other, never in neither (a run is up to maxCoalesce
	// frames, and gnet keeps what the socket did not take).
	c.d().outQueued.Add(-int64(reserved))
	for i := range cmds {
		l.releaseSend(cmds[i].n)
	}
	clear(iov)
	l.iov = iov[:0]
	for i := range cmds {
		putBuffer(cmds[i].buf)
	}
	clear(cmds)
}

// writev sends frames on c from the loop, like write.
func (l *eventLoop) writev(c *Conn, frames [][]byte) bool {
	gc := c.gc()
	if gc == nil {
		return false
	}
	l.writeCalls++
	n, err := gc.Writev(frames)
	if err != nil {
		return false
	}
	l.stats.bytesOut.Add(int64(n))
	return true
}
