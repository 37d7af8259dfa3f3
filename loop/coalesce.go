package loop

// Coalescing. The frames queued for one connection back to back in the
// inbox (the replies a handler sent for one message, or for every message
// of one read when it runs on the loop, inline.go) go out in one writev
// instead of one write each: the system call, not the bytes, is what a
// small frame costs. Publishes to one topic coalesce the same way
// (publishRun, topics.go). Frames for a connection that other commands
// separate keep their own writes, so that a close or a publish queued
// between them stays in its place.

// sendRunLen returns how many commands from batch[i] are sends to the same
// connection, at most maxCoalesce.
func sendRunLen(batch []command, i int) int {
	c := batch[i].c
	j := i + 1
	for j < len(batch) && j-i < maxCoalesce && batch[j].kind == cmdSend && batch[j].c == c {
		j++
	}
	return j - i
}

// sendRun writes the frames of cmds, all cmdSend to one connection, with
// one writev, and accounts for them as exec does for each.
func (l *eventLoop) sendRun(cmds []command) {
	c := cmds[0].c
	iov := l.iov[:0]
	total := 0
	for i := range cmds {
		c.outQueued.Add(-int64(cmds[i].n))
		l.releaseSend(cmds[i].n)
		iov = append(iov, cmds[i].buf.b)
		total += len(cmds[i].buf.b)
	}
	n := int64(len(cmds))
	if c.state == stateOpen && l.writev(c, iov) {
		c.lastData = l.srv.now()
		l.stats.messagesOut.Add(n)
		c.msgsOut += n
		c.bytesOut += int64(total)
		l.wrote(c)
	} else {
		l.stats.droppedOut.Add(n)
		l.stats.droppedOutBytes.Add(int64(total))
	}
	clear(iov)
	l.iov = iov[:0]
	for i := range cmds {
		putBuffer(cmds[i].buf)
	}
}

// writev sends frames on c from the loop, like write.
func (l *eventLoop) writev(c *Conn, frames [][]byte) bool {
	gc := c.gc
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
