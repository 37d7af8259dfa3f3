// A fake gateway that speaks the server side of the resume envelope
// (docs/resume.md) over node's ws, for the client-side protocol tests. It
// is not the gateway: the real server side is phase 2 of issue 15. It
// keeps sessions, numbers DATA, buffers what was not acknowledged, beats,
// replays on resume and answers "missed" with the spec's reasons, and it
// can misbehave on request (no HELLO, drop client messages, freeze).

import { WebSocketServer } from 'ws'

const RESUME = 'wsgate.resume.v1'
const SESSION = 'wsgate.session.'
let tokens = 0

export class Fake {
  constructor ({ beat = 0, timeout = 0, buffer = 65536, window = 120000, mode = 'ok' } = {}) {
    Object.assign(this, { beat, timeout, buffer, window, mode })
    this.sessions = new Map()
    this.expired = new Set()
    this.offers = []
    this.current = null
    this.plain = []
  }

  listen () {
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (offered) => {
        const list = [...offered]
        const app = list.find((p) => !p.startsWith('wsgate.') && !p.startsWith('bearer.'))
        const want = app ? RESUME + '+' + app : RESUME
        if (offered.has(want)) return want
        if (offered.has(RESUME)) return RESUME
        return app || false
      }
    })
    this.wss.on('connection', (ws, req) => this.#connection(ws, req))
    return new Promise((resolve) => this.wss.on('listening', () => resolve(this.wss.address().port)))
  }

  #connection (ws, req) {
    const offered = (req.headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim()).filter(Boolean)
    this.offers.push(offered)
    if (!ws.protocol.startsWith(RESUME)) { // plain: echo
      this.plain.push(ws)
      ws.on('message', (d, bin) => ws.send(bin ? d : d.toString()))
      return
    }
    if (this.mode === 'nohello') { ws.send('not a hello'); return }
    const cred = offered.find((p) => p.startsWith(SESSION))
    let s = null
    let status = 'new'
    let reason = ''
    let from = 0
    if (cred) {
      const rest = cred.slice(SESSION.length)
      const dot = rest.lastIndexOf('.')
      const token = rest.slice(0, dot)
      const seq = Number(rest.slice(dot + 1))
      const old = this.sessions.get(token)
      if (!old) reason = this.expired.has(token) ? 'expired' : 'unknown'
      else if (!(seq <= old.seq)) reason = 'invalid'
      else if (seq < old.trimmed) reason = 'overflow'
      else { s = old; status = 'resumed'; from = seq }
      if (!s) {
        status = 'missed'
        if (old) this.sessions.delete(token)
      }
    }
    if (!s) {
      s = { token: 'tok' + (++tokens) + '_' + Math.random().toString(36).slice(2), seq: 0, in: 0, trimmed: 0, buf: [], bufBytes: 0, received: [], acks: [], ignored: 0, ws: null, frozen: false, lastSent: 0 }
      this.sessions.set(s.token, s)
    }
    if (s.ws && s.ws !== ws) { // takeover (docs/resume.md §5.1)
      const old = s.ws
      old.close(1008, 'session taken over')
      setTimeout(() => old.terminate(), 50)
    }
    s.ws = ws
    s.frozen = false
    s.dropIncoming = false
    this.current = s
    const replay = status === 'resumed' ? s.buf.filter((m) => m.n > from) : []
    let hello = `Hstatus=${status}`
    if (reason) hello += `&reason=${reason}`
    hello += `&session=${s.token}&seq=${status === 'resumed' ? from : 0}&in=${s.in}`
    if (status === 'resumed') hello += `&replay=${replay.length}`
    hello += `&window=${this.window}&buffer=${this.buffer}&beat=${this.beat}&timeout=${this.timeout}`
    this.#send(s, hello)
    for (const m of replay) this.#send(s, m.frame)
    ws.on('message', (d, bin) => this.#message(s, ws, d, bin))
    ws.on('close', () => { if (s.ws === ws) s.ws = null })
    if (this.beat > 0) {
      const t = setInterval(() => {
        if (s.ws !== ws || s.frozen) return
        if (Date.now() - s.lastSent >= this.beat) this.#send(s, `Bseq=${s.seq}&in=${s.in}`)
      }, Math.max(5, this.beat / 4))
      ws.on('close', () => clearInterval(t))
    }
  }

  #send (s, frame) {
    s.lastSent = Date.now()
    s.ws.send(frame)
  }

  #message (s, ws, d, bin) {
    if (s.ws !== ws || s.frozen) return
    if (d.length === 0) { ws.close(1002, 'empty message'); return }
    const type = d[0]
    if (type === 0x44) { // DATA
      if (s.dropIncoming) { s.ignored++; return }
      s.in++
      s.received.push(bin ? [...d.subarray(1)] : d.subarray(1).toString())
      return
    }
    if (type === 0x41 && !bin) { // ACK
      const seq = Number(/seq=(\d+)/.exec(d.toString())?.[1])
      if (!(seq <= s.seq)) { ws.close(1002, 'bad ACK'); return }
      s.acks.push(seq)
      while (s.buf.length && s.buf[0].n <= seq) s.bufBytes -= s.buf.shift().bytes
      return
    }
    ws.close(1002, 'bad envelope')
  }

  // push numbers and sends (or buffers, while suspended) count text
  // messages prefix+N on the current session.
  push (count, prefix) {
    const s = this.current
    for (let i = 0; i < count; i++) {
      const n = ++s.seq
      const payload = prefix + n
      const m = { n, frame: 'D' + payload, bytes: payload.length }
      s.buf.push(m)
      s.bufBytes += m.bytes
      while (s.bufBytes > this.buffer) {
        const old = s.buf.shift()
        s.bufBytes -= old.bytes
        s.trimmed = old.n
      }
      if (s.ws && !s.frozen && s.ws.readyState === 1) this.#send(s, m.frame)
    }
  }

  // do runs one control action for the harness.
  do (b) {
    const s = this.current
    switch (b.action) {
      case 'push': this.push(b.count, b.prefix || 'm'); return {}
      case 'cut': if (s && s.ws) { s.ws._socket.destroy(); s.ws = null } return {}
      case 'freeze': if (s) s.frozen = true; return {}
      case 'dropIncoming': if (s) s.dropIncoming = b.on; return {}
      case 'expire':
        for (const t of this.sessions.keys()) this.expired.add(t)
        this.sessions.clear()
        return {}
      case 'state':
        return {
          offers: this.offers,
          sessions: [...this.sessions.values()].map((x) => ({ token: x.token, seq: x.seq, in: x.in, received: x.received, acks: x.acks, ignored: x.ignored })),
          current: s && { token: s.token, seq: s.seq, in: s.in, received: s.received, acks: s.acks, ignored: s.ignored, attached: !!s.ws }
        }
      default: throw new Error('fake: unknown action ' + b.action)
    }
  }

  close () {
    for (const c of this.wss.clients) c.terminate()
    this.wss.close()
  }
}
