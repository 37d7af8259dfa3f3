package client

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fake speaks the server side of the resume envelope (docs/resume.md)
// for the client-side protocol tests, over gorilla/websocket. It is not
// the gateway (whose server side is phase 2 of issue 15): it keeps
// sessions, numbers and buffers DATA, beats, replays on resume, answers
// the spec's "missed" reasons, takes sessions over with 1008, and can
// misbehave on request.
type fake struct {
	beat, timeout time.Duration
	buffer        int
	mode          string // "": correct; "nohello": DATA first; "badbeat": a BEAT with a wrong seq

	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*fsession
	expired  map[string]bool
	offers   [][]string
	current  *fsession
	conns    map[*fconn]struct{}
	tokens   int
}

type fsession struct {
	token                string
	seq, in, trimmed     uint64
	buf                  []fmsg
	bufBytes             int
	received             []string // "t:payload" or "b:hex"
	acks                 []uint64
	ignored              int
	conn                 *fconn
	frozen, dropIncoming bool
}

type fmsg struct {
	n       uint64
	payload string
}

type fconn struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	lastSent time.Time
	done     chan struct{}
}

func (fc *fconn) send(s string) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	fc.lastSent = time.Now()
	_ = fc.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = fc.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

func startFake(t testing.TB, f *fake) *fake {
	t.Helper()
	if f.buffer == 0 {
		f.buffer = 65536
	}
	f.sessions, f.expired, f.conns = map[string]*fsession{}, map[string]bool{}, map[*fconn]struct{}{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.srv = &http.Server{Handler: http.HandlerFunc(f.handle)}
	f.wg.Add(1)
	go func() { defer f.wg.Done(); _ = f.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = f.srv.Close()
		f.mu.Lock()
		for fc := range f.conns {
			fc.ws.NetConn().Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fake) url() string { return "ws://" + f.ln.Addr().String() + "/ws" }

func (f *fake) handle(w http.ResponseWriter, r *http.Request) {
	var offered []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
	}
	app := ""
	for _, p := range offered {
		if !strings.HasPrefix(p, "wsgate.") && !strings.HasPrefix(p, "bearer.") {
			app = p
			break
		}
	}
	chosen := ""
	has := func(p string) bool {
		for _, o := range offered {
			if o == p {
				return true
			}
		}
		return false
	}
	switch {
	case app != "" && has(ResumeProtocol+"+"+app):
		chosen = ResumeProtocol + "+" + app
	case has(ResumeProtocol):
		chosen = ResumeProtocol
	default:
		chosen = app
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	if chosen != "" {
		up.Subprotocols = []string{chosen}
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	fc := &fconn{ws: ws, done: make(chan struct{})}
	f.mu.Lock()
	f.offers = append(f.offers, offered)
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	defer func() {
		ws.Close()
		close(fc.done)
		f.mu.Lock()
		delete(f.conns, fc)
		f.mu.Unlock()
	}()
	if !strings.HasPrefix(chosen, ResumeProtocol) { // plain: echo
		for {
			t, d, err := ws.ReadMessage()
			if err != nil {
				return
			}
			fc.wmu.Lock()
			_ = ws.WriteMessage(t, d)
			fc.wmu.Unlock()
		}
	}
	if f.mode == "nohello" {
		fc.send("Dnot a hello")
	} else {
		f.hello(fc, offered)
	}
	f.mu.Lock()
	s := f.current
	f.mu.Unlock()
	if f.beat > 0 && s != nil {
		f.wg.Add(1)
		go f.beats(s, fc)
	}
	for {
		t, d, err := ws.ReadMessage()
		if err != nil {
			f.mu.Lock()
			if s != nil && s.conn == fc {
				s.conn = nil
			}
			f.mu.Unlock()
			return
		}
		if s == nil || !f.message(s, fc, t, d) {
			return
		}
	}
}

// hello finds or makes the session and sends HELLO and the replay.
func (f *fake) hello(fc *fconn, offered []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s *fsession
	status, reason := "new", ""
	var from uint64
	for _, p := range offered {
		rest, ok := strings.CutPrefix(p, SessionProtocol)
		if !ok {
			continue
		}
		dot := strings.LastIndexByte(rest, '.')
		token := rest[:dot]
		seq, _ := strconv.ParseUint(rest[dot+1:], 10, 64)
		old := f.sessions[token]
		switch {
		case old == nil && f.expired[token]:
			reason = "expired"
		case old == nil:
			reason = "unknown"
		case seq > old.seq:
			reason = "invalid"
		case seq < old.trimmed:
			reason = "overflow"
		default:
			s, status, from = old, "resumed", seq
		}
		if s == nil {
			status = "missed"
			delete(f.sessions, token)
		}
	}
	if s == nil {
		f.tokens++
		s = &fsession{token: "tok" + strconv.Itoa(f.tokens)}
		f.sessions[s.token] = s
	}
	if old := s.conn; old != nil && old != fc { // takeover (docs/resume.md §5.1)
		_ = old.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "session taken over"), time.Now().Add(time.Second))
		old.ws.NetConn().Close()
	}
	s.conn, s.frozen, s.dropIncoming = fc, false, false
	f.current = s
	var replay []fmsg
	if status == "resumed" {
		for _, m := range s.buf {
			if m.n > from {
				replay = append(replay, m)
			}
		}
	}
	h := "Hstatus=" + status
	if reason != "" {
		h += "&reason=" + reason
	}
	h += "&session=" + s.token + "&seq=" + strconv.FormatUint(from, 10) + "&in=" + strconv.FormatUint(s.in, 10)
	if status == "resumed" {
		h += "&replay=" + strconv.Itoa(len(replay))
	}
	h += "&window=120000&buffer=" + strconv.Itoa(f.buffer) +
		"&beat=" + strconv.FormatInt(f.beat.Milliseconds(), 10) + "&timeout=" + strconv.FormatInt(f.timeout.Milliseconds(), 10)
	fc.send(h)
	for _, m := range replay {
		fc.send("D" + m.payload)
	}
}

func (f *fake) beats(s *fsession, fc *fconn) {
	defer f.wg.Done()
	tick := time.NewTicker(f.beat / 4)
	defer tick.Stop()
	for {
		select {
		case <-fc.done:
			return
		case <-tick.C:
		}
		f.mu.Lock()
		live := s.conn == fc && !s.frozen
		seq, in := s.seq, s.in
		f.mu.Unlock()
		fc.wmu.Lock()
		due := time.Since(fc.lastSent) >= f.beat
		fc.wmu.Unlock()
		if live && due {
			if f.mode == "badbeat" {
				seq++
			}
			fc.send("Bseq=" + strconv.FormatUint(seq, 10) + "&in=" + strconv.FormatUint(in, 10))
		}
	}
}

// message handles one client message; false ends the connection.
func (f *fake) message(s *fsession, fc *fconn, t int, d []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.conn != fc || s.frozen {
		return true
	}
	if len(d) == 0 {
		return false
	}
	switch {
	case d[0] == 'D':
		if s.dropIncoming {
			s.ignored++
			return true
		}
		s.in++
		if t == websocket.TextMessage {
			s.received = append(s.received, "t:"+string(d[1:]))
		} else {
			s.received = append(s.received, "b:"+string(d[1:]))
		}
	case d[0] == 'A' && t == websocket.TextMessage:
		seq, ok := countField(string(d[1:]), "seq", 0)
		if !ok || seq > s.seq {
			return false
		}
		s.acks = append(s.acks, seq)
		for len(s.buf) > 0 && s.buf[0].n <= seq {
			s.bufBytes -= len(s.buf[0].payload)
			s.buf = s.buf[1:]
		}
	default:
		return false
	}
	return true
}

// push numbers count text messages prefix+N on the current session and
// sends them, or buffers them while it is suspended.
func (f *fake) push(count int, prefix string) {
	f.mu.Lock()
	s := f.current
	var out []string
	for range count {
		s.seq++
		m := fmsg{n: s.seq, payload: prefix + strconv.FormatUint(s.seq, 10)}
		s.buf = append(s.buf, m)
		s.bufBytes += len(m.payload)
		for s.bufBytes > f.buffer {
			s.bufBytes -= len(s.buf[0].payload)
			s.trimmed = s.buf[0].n
			s.buf = s.buf[1:]
		}
		out = append(out, "D"+m.payload)
	}
	fc := s.conn
	if s.frozen {
		fc = nil
	}
	f.mu.Unlock()
	if fc != nil {
		for _, m := range out {
			fc.send(m)
		}
	}
}

// cut drops the current session's connection without a close frame.
func (f *fake) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.current; s != nil && s.conn != nil {
		s.conn.ws.NetConn().Close()
		s.conn = nil
	}
}

func (f *fake) with(fn func(s *fsession)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.current)
}

func (f *fake) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok := range f.sessions {
		f.expired[tok] = true
	}
	clear(f.sessions)
}

func (f *fake) offerLog() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.offers...)
}
