package loop

import (
	"github.com/wsgate/wsgate/internal/config"

	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/panjf2000/gnet/v2"
)

// gnetHandler adapts Server to gnet.EventHandler; the methods stay off
// Server's exported API.
type gnetHandler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *gnetHandler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.eng = eng
	close(h.s.started)
	return gnet.None
}

func (h *gnetHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if w, ok := gc.Context().(*wakeTag); ok {
		w.l.wakerOpened()
		return nil, gnet.None
	}
	s := h.s
	l := s.loopOf(gc.EventLoop())
	l.stats.connsAccepted.Add(1)
	remote := addrPort(gc.RemoteAddr())
	// The handshake bounds come first: a connection past them costs
	// nothing but its socket, closed at once (gnet's OnClose then finds
	// no Conn).
	counted, ok := l.admitTCP(remote.Addr())
	if !ok {
		return nil, gnet.Close
	}
	c := &Conn{loop: l, gp: gnet.ConnPointer(gc), state: stateHandshake, connectedAt: int64(l.srv.clk.Now().Sub(l.srv.epoch)), admitted: counted}
	if s.cfg.Proxy != config.ProxyOff {
		c.state = stateProxy
	}
	l.insert(c)
	c.setRemote(remote)
	gc.SetContext(c)
	l.stats.connsOpen.Add(1)
	l.armHandshake(c)
	return nil, gnet.None
}

func (h *gnetHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	switch c := gc.Context().(type) {
	case *Conn:
		l := c.loop
		l.busy.Store(true)
		act := l.traffic(c)
		l.busy.Store(false)
		if l.wanted.Load() || len(l.reparse) > 0 {
			l.runInbox()
			if c.state == stateClosed {
				// runInbox closed c under us: tell gnet, which then
				// leaves its released buffers alone.
				return gnet.Close
			}
		}
		return act
	case *wakeTag:
		_, _ = gc.Discard(-1)
		c.l.runInbox()
		return gnet.None
	}
	return gnet.Close
}

// AllowRead is the gnet patch's ReadGate (third_party/gnet/PATCH.md),
// asked before each read(2): with a memory budget, an open connection's
// reads pause before a read the budget cannot take (budget_shed.go).
func (h *gnetHandler) AllowRead(gc gnet.Conn) bool {
	if h.s.mem == nil {
		return true
	}
	c, ok := gc.Context().(*Conn)
	return !ok || c.loop.allowRead(c)
}

func (h *gnetHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	if c, ok := gc.Context().(*Conn); ok {
		c.loop.closed(c, err)
	}
	return gnet.None
}

// addrPort converts gnet's remote address; it is the zero AddrPort for
// anything but TCP.
func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// gnetLogger sends gnet's log lines to the server's slog.Logger.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }

// antsLogger sends the pool's log lines to the server's slog.Logger.
type antsLogger struct{ l *slog.Logger }

func (a antsLogger) Printf(f string, args ...any) { a.l.Warn("ants: " + fmt.Sprintf(f, args...)) }
