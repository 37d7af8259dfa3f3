//go:build linux

package main

// timer is a deadline for one connection. Timers are never removed: a
// connection that moves on bumps its gen, and a popped timer whose gen no
// longer matches is ignored.
type timer struct {
	at   int64
	idx  int32
	gen  uint32
	kind uint8
}

// timerHeap is a binary min-heap on at, one per loop. It holds an entry only
// for connections that wait on something (an upgrade, a reconnect, a close
// reply), so an idle held connection costs nothing here.
type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].at < s[m].at {
			m = l
		}
		if r < len(s) && s[r].at < s[m].at {
			m = r
		}
		if m == i {
			break
		}
		s[m], s[i] = s[i], s[m]
		i = m
	}
	*h = s
	return top
}
