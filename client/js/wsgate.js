// wsgate.js: the wsgate JavaScript client, one ES module with no
// dependencies, for browsers and for Node (>= 20: pass the ws package's
// WebSocket as options.WebSocket where there is no global one).
//
// It reconnects with full-jitter exponential backoff, honours the retry
// hint of a close reason ("going away; retry-after=N") and, under Node's
// ws, the Retry-After of a 503; it detects a dead connection by silence and
// keeps a bounded offline queue. With options.resume it speaks the resume
// envelope of docs/resume.md and resumes its session after a drop: every
// message the server sent while it was away arrives once, in order, or a
// "missed" event says why not.
//
// It never drops anything silently: a send past the queue's bound throws,
// messages still queued at close are counted in the close event, and sends
// whose fate a failed resume made unknown are counted in "missed".

export const RESUME_PROTOCOL = 'wsgate.resume.v1'
export const SESSION_PROTOCOL = 'wsgate.session.'

// Envelope type bytes (docs/resume.md §2).
const DATA = 0x44 // D
const HELLO = 0x48 // H
const BEAT = 0x42 // B
const ACK = 'A'

const OPEN = 1 // WebSocket.OPEN

/** A send that the offline queue cannot hold. */
export class QueueFullError extends Error {
  constructor (msg) { super(msg); this.name = 'QueueFullError' }
}

/** A send after close(). */
export class ClosedError extends Error {
  constructor () { super('wsgate: client closed'); this.name = 'ClosedError' }
}

/** The server broke the envelope protocol (docs/resume.md §2, §4). */
export class ProtocolError extends Error {
  constructor (msg) { super('wsgate: ' + msg); this.name = 'ProtocolError' }
}

/** Every event of WsgateClient; its fields are those of its type. */
export class WsgateEvent extends Event {
  constructor (type, fields) { super(type); Object.assign(this, fields) }
}

/**
 * backoffDelay is full jitter: a uniform draw in [0, min(cap, base·2^attempt)).
 * attempt counts from 0.
 */
export function backoffDelay (attempt, base, cap, random = Math.random) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 52))
  return random() * ceiling
}

/** retryHint reads "retry-after=N" (seconds) from a close reason, or null. */
export function retryHint (reason) {
  const m = /(?:^|[\s;,])retry-after=(\d{1,9})(?=$|[\s;,])/i.exec(reason || '')
  return m ? Number(m[1]) : null
}

/** parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3) as seconds, or null. */
export function parseRetryAfter (value, now = Date.now()) {
  if (typeof value !== 'string' || value === '') return null
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim())
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000))
}

/** offerProtocols is the Sec-WebSocket-Protocol offer of docs/resume.md §1 and §5.1. */
export function offerProtocols (app, resume, session = '', seq = 0) {
  const out = []
  if (resume) {
    for (const p of app) if (!/^bearer\./i.test(p)) out.push(RESUME_PROTOCOL + '+' + p)
    out.push(RESUME_PROTOCOL)
  }
  out.push(...app)
  if (resume && session) out.push(SESSION_PROTOCOL + session + '.' + seq)
  return out
}

/** parseSelected splits the server's chosen subprotocol into envelope and application parts. */
export function parseSelected (selected) {
  if (selected === RESUME_PROTOCOL) return { envelope: true, protocol: '' }
  if (selected.startsWith(RESUME_PROTOCOL + '+')) return { envelope: true, protocol: selected.slice(RESUME_PROTOCOL.length + 1) }
  return { envelope: false, protocol: selected }
}

/** utf8Length is the UTF-8 size of a string, without encoding it. */
export function utf8Length (s) {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n++
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++ } else n += 3
  }
  return n
}

// Control message fields: name=value pairs joined by '&' (§2).
function fields (body) {
  const f = new Map()
  for (const kv of body.split('&')) {
    const i = kv.indexOf('=')
    const k = i < 0 ? kv : kv.slice(0, i)
    if (k && !f.has(k)) f.set(k, i < 0 ? '' : kv.slice(i + 1))
  }
  return f
}

// count reads a decimal count field: a safe non-negative integer, or NaN.
function count (f, name, dflt = NaN) {
  const v = f.get(name)
  if (v === undefined) return dflt
  return /^\d{1,16}$/.test(v) && Number(v) <= Number.MAX_SAFE_INTEGER ? Number(v) : NaN
}

function bytesOf (data) {
  if (typeof data === 'string') return utf8Length(data)
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength
  throw new TypeError('wsgate: send takes a string, an ArrayBuffer or a typed array')
}

// copyOf detaches queued binary data from the caller's buffer.
function copyOf (data) {
  if (typeof data === 'string') return data
  const src = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return src.slice()
}

// framed prefixes DATA's type byte; the result is a new string or array.
function framed (data) {
  if (typeof data === 'string') return 'D' + data
  const src = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const out = new Uint8Array(src.length + 1)
  out[0] = DATA
  out.set(src, 1)
  return out
}

const now = () => (globalThis.performance ? performance.now() : Date.now())

/** The default reconnect policy: not after a 1000 or a 4000-4999 close. */
export function defaultShouldReconnect (code) {
  return !(code === 1000 || (code >= 4000 && code <= 4999))
}

const DEFAULTS = {
  protocols: [],
  resume: false,
  backoff: { base: 1000, cap: 30000, maxAttempts: Infinity },
  maxRetryAfter: 300000,
  queue: { messages: 1024, bytes: 1 << 20 },
  retain: { messages: 1024, bytes: 64 << 10 },
  pingInterval: 30000,
  pongTimeout: 10000,
  handshakeTimeout: 10000,
  keepalive: undefined,
  random: Math.random,
  shouldReconnect: defaultShouldReconnect,
  scheduleReconnect: (fn, ms) => { const t = setTimeout(fn, ms); return () => clearTimeout(t) }
}

function options (o) {
  const r = { ...DEFAULTS, ...o }
  for (const k of ['backoff', 'queue', 'retain']) r[k] = { ...DEFAULTS[k], ...(o[k] || {}) }
  return r
}

/**
 * WsgateClient is one logical connection that outlives its sockets.
 *
 * Events: "open" (a new session is open), "message" (data: a string or an
 * ArrayBuffer), "reconnecting" (attempt, delay, code, reason, status,
 * retryAfter, cause), "resumed" (replay, lostSends), "missed" (reason,
 * unconfirmedSends), "error" (error), "close" (code, reason, unsent,
 * unconfirmedSends; final). See client/js/README.md.
 */
export class WsgateClient extends EventTarget {
  #url
  #o
  #WS
  #state = 'connecting'
  #ctx = null // the current socket's state
  #attempt = 0
  #cancelRetry = null
  #protocol = ''
  #queue = []
  #queueBytes = 0
  #resumeOK
  #pendingMiss = null
  // Session state (docs/resume.md §3, §6).
  #session = ''
  #rx = 0 // server DATA received
  #tx = 0 // client DATA sent
  #confirmed = 0 // client DATA the server confirmed (in)
  #retained = [] // [{idx, frame, bytes}] sent, not yet confirmed
  #retainedBytes = 0
  #evicted = 0 // highest idx that left the retention buffer unconfirmed
  #unacked = 0 // DATA bytes received since the last ACK
  #beat = 0
  #timeout = 0
  #buffer = 0

  constructor (url, opts = {}) {
    super()
    this.#url = url
    this.#o = options(opts)
    this.#WS = opts.WebSocket ?? globalThis.WebSocket
    if (typeof this.#WS !== 'function') throw new TypeError('wsgate: no WebSocket here: pass options.WebSocket (under Node 20, the ws package\'s)')
    this.#resumeOK = !!this.#o.resume
    queueMicrotask(() => this.#connect())
  }

  /** "connecting", "open", "reconnecting" or "closed". */
  get state () { return this.#state }
  /** The application subprotocol the server chose ("" for none). */
  get protocol () { return this.#protocol }
  /** The extensions the server agreed to on the current socket (WebSocket.extensions), "" when none or not connected. */
  get extensions () { return (this.#ctx && this.#ctx.ws && this.#ctx.ws.extensions) || '' }
  /** Whether the current connection speaks the resume envelope with a session. */
  get resumable () { return !!(this.#ctx && this.#ctx.envelope && this.#session) }

  /**
   * send writes data now if a connection is open, or queues it. It returns
   * true when written, false when queued; it throws QueueFullError past
   * the queue's bound and ClosedError after close().
   */
  send (data) {
    if (this.#state === 'closed') throw new ClosedError()
    const bytes = bytesOf(data)
    const ctx = this.#ctx
    if (ctx && this.#writable(ctx)) {
      this.#write(ctx, data, bytes)
      return true
    }
    const q = this.#o.queue
    if (this.#queue.length >= q.messages || bytes > q.bytes - this.#queueBytes) {
      throw new QueueFullError(`wsgate: offline queue full (${this.#queue.length} messages, ${this.#queueBytes} bytes)`)
    }
    this.#queue.push({ data: copyOf(data), bytes })
    this.#queueBytes += bytes
    return false
  }

  /** close ends the client for good: code 1000 also ends the server's session. */
  close (code = 1000, reason = '') {
    if (code !== 1000 && !(code >= 3000 && code <= 4999)) throw new RangeError('wsgate: close code must be 1000 or 3000-4999')
    if (this.#state === 'closed') return
    this.#state = 'closed'
    if (this.#cancelRetry) { this.#cancelRetry(); this.#cancelRetry = null }
    const ctx = this.#ctx
    if (ctx) {
      this.#finish(ctx)
      try { ctx.ws.close(code, reason) } catch { ctx.ws.close() }
    }
    const ev = { code, reason, wasClean: true, unsent: this.#queue.length, unconfirmedSends: this.#tx - this.#confirmed }
    this.#queue = []
    this.#queueBytes = 0
    queueMicrotask(() => this.#emit('close', ev))
  }

  #emit (type, fields) { this.dispatchEvent(new WsgateEvent(type, fields)) }

  #connect () {
    if (this.#state === 'closed') return
    const url = typeof this.#url === 'function' ? this.#url() : this.#url
    const app = typeof this.#o.protocols === 'function' ? this.#o.protocols() : this.#o.protocols
    const offer = offerProtocols(app, this.#resumeOK, this.#session, this.#rx)
    let ws
    try {
      ws = new this.#WS(url, offer)
    } catch (error) { // a bad URL or protocol list: nothing will fix it
      this.#state = 'closed'
      queueMicrotask(() => { this.#emit('error', { error }); this.#emit('close', { code: 1006, reason: String(error), wasClean: false, unsent: this.#queue.length, unconfirmedSends: 0 }) })
      return
    }
    ws.binaryType = 'arraybuffer'
    const ctx = { ws, opened: false, envelope: false, hello: false, done: false, lost: false, status: 0, retryAfter: null, lastRead: 0, pinged: false, timer: null, watch: null, probe: null }
    this.#ctx = ctx
    if (typeof ws.on === 'function') { // Node's ws: the HTTP answer and control frames are visible
      ws.on('unexpected-response', (req, res) => {
        ctx.status = res.statusCode
        ctx.retryAfter = parseRetryAfter(res.headers['retry-after'])
        res.resume()
        ws.terminate()
      })
      ws.on('ping', () => this.#touch(ctx))
      ws.on('pong', () => this.#touch(ctx))
    }
    ws.onopen = () => this.#onOpen(ctx)
    ws.onmessage = (ev) => this.#onMessage(ctx, ev.data)
    ws.onclose = (ev) => this.#lost(ctx, { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, cause: ctx.opened ? 'closed' : 'handshake' })
    ws.onerror = () => {} // a close event follows
    ctx.timer = setTimeout(() => this.#drop(ctx, 'handshake timeout'), this.#o.handshakeTimeout)
  }

  #writable (ctx) {
    return !ctx.done && ctx.opened && (!ctx.envelope || ctx.hello) && ctx.ws.readyState === OPEN
  }

  #onOpen (ctx) {
    if (ctx.done) return
    ctx.opened = true
    clearTimeout(ctx.timer)
    const sel = parseSelected(ctx.ws.protocol || '')
    this.#protocol = sel.protocol
    if (sel.envelope) {
      if (!this.#resumeOK) { this.#protocolError(ctx, 'envelope selected but not offered', false); return }
      ctx.envelope = true
      ctx.timer = setTimeout(() => this.#protocolError(ctx, 'no HELLO from the server', true), this.#o.handshakeTimeout)
      return
    }
    if (this.#session) this.#forget('unsupported')
    const k = this.#o.keepalive
    if (k === undefined) ctx.probe = typeof ctx.ws.ping === 'function' ? () => ctx.ws.ping() : null
    else if (k !== false && k !== null) ctx.probe = () => ctx.ws.send(k)
    this.#ready(ctx)
    this.#emit('open', { protocol: this.#protocol, resumable: false })
  }

  // ready marks the connection usable: flush the queue, start the watchdog.
  #ready (ctx) {
    ctx.hello = true
    this.#attempt = 0
    this.#state = 'open'
    for (const r of this.#retained) ctx.ws.send(r.frame) // after a resume: what the server did not take
    const q = this.#queue
    this.#queue = []
    this.#queueBytes = 0
    for (const m of q) this.#write(ctx, m.data, m.bytes)
    this.#touch(ctx)
    this.#watch(ctx)
    if (this.#pendingMiss) {
      const m = this.#pendingMiss
      this.#pendingMiss = null
      this.#emit('missed', m)
    }
  }

  #write (ctx, data, bytes) {
    if (!ctx.envelope) { ctx.ws.send(data); return }
    const frame = framed(data)
    ctx.ws.send(frame)
    this.#retained.push({ idx: ++this.#tx, frame, bytes })
    this.#retainedBytes += bytes
    const r = this.#o.retain
    while (this.#retained.length > r.messages || this.#retainedBytes > r.bytes) {
      const old = this.#retained.shift()
      this.#retainedBytes -= old.bytes
      this.#evicted = old.idx
    }
  }

  #onMessage (ctx, data) {
    if (ctx.done) return
    this.#touch(ctx)
    if (!ctx.envelope) { this.#emit('message', { data }); return }
    const text = typeof data === 'string'
    const size = text ? data.length : data.byteLength
    if (size === 0) { this.#protocolError(ctx, 'empty message', false); return }
    const type = text ? data.charCodeAt(0) : new Uint8Array(data, 0, 1)[0]
    if (type === DATA) {
      if (!ctx.hello) { this.#protocolError(ctx, 'DATA before HELLO', true); return }
      this.#rx++
      const payload = data.slice(1)
      // Strings count UTF-16 units here: close enough for when to ACK.
      this.#unacked += size - 1
      if (this.#buffer > 0 && this.#unacked * 2 >= this.#buffer) this.#ack(ctx)
      this.#emit('message', { data: payload })
      return
    }
    if (!text) { this.#protocolError(ctx, 'control message in a binary frame', false); return }
    if (type === HELLO && !ctx.hello) { this.#onHello(ctx, fields(data.slice(1))); return }
    if (type === BEAT && ctx.hello) {
      const f = fields(data.slice(1))
      const seq = count(f, 'seq')
      const inn = count(f, 'in')
      if (seq !== this.#rx || !(inn >= this.#confirmed && inn <= this.#tx)) { this.#protocolError(ctx, 'envelope count mismatch', false); return }
      this.#confirm(inn)
      this.#ack(ctx)
      return
    }
    this.#protocolError(ctx, ctx.hello ? 'unexpected message type' : 'first message is not HELLO', !ctx.hello)
  }

  #onHello (ctx, f) {
    clearTimeout(ctx.timer)
    const status = f.get('status')
    const session = f.get('session') || ''
    const seq = count(f, 'seq')
    const inn = count(f, 'in')
    const replay = count(f, 'replay', 0)
    this.#beat = count(f, 'beat', 0)
    this.#timeout = count(f, 'timeout', 0)
    this.#buffer = count(f, 'buffer', 0)
    if ([seq, inn, replay, this.#beat, this.#timeout, this.#buffer].some(Number.isNaN) || !/^[A-Za-z0-9_-]{0,128}$/.test(session)) {
      this.#protocolError(ctx, 'malformed HELLO', false)
      return
    }
    if (status === 'resumed') {
      if (!this.#session || session !== this.#session || seq !== this.#rx || inn < this.#confirmed || inn > this.#tx) {
        this.#protocolError(ctx, 'HELLO resumed does not match the session', false)
        return
      }
      this.#confirm(inn)
      const lostSends = Math.max(0, this.#evicted - inn)
      // The server counts re-sent messages from in+1: renumber what is left.
      this.#tx = inn
      for (const r of this.#retained) r.idx = ++this.#tx
      this.#evicted = inn
      this.#ready(ctx)
      this.#emit('resumed', { replay, lostSends })
      return
    }
    if (status !== 'new' && status !== 'missed') { this.#protocolError(ctx, 'malformed HELLO', false); return }
    if (this.#session) this.#forget(status === 'missed' ? (f.get('reason') || 'unknown') : 'unknown')
    this.#session = session
    this.#ready(ctx)
    this.#emit('open', { protocol: this.#protocol, resumable: session !== '' })
  }

  // confirm drops the retained messages the server has taken.
  #confirm (inn) {
    while (this.#retained.length && this.#retained[0].idx <= inn) this.#retainedBytes -= this.#retained.shift().bytes
    this.#confirmed = inn
  }

  #ack (ctx) {
    this.#unacked = 0
    ctx.ws.send(ACK + 'seq=' + this.#rx)
  }

  // forget ends the session on this side; the next open reports the gap.
  #forget (reason) {
    if (this.#session || this.#tx > this.#confirmed) {
      const prev = this.#pendingMiss ? this.#pendingMiss.unconfirmedSends : 0
      this.#pendingMiss = { reason, unconfirmedSends: prev + this.#tx - this.#confirmed }
    }
    this.#session = ''
    this.#rx = this.#tx = this.#confirmed = this.#evicted = this.#unacked = 0
    this.#retained = []
    this.#retainedBytes = 0
  }

  #touch (ctx) {
    ctx.lastRead = now()
    ctx.pinged = false
  }

  // watch is the dead-connection detector: no frame for interval+timeout
  // drops the connection. It re-arms lazily, as Netty's idle handler does.
  #watch (ctx) {
    if (ctx.done) return
    let interval = this.#o.pingInterval
    let timeout = this.#o.pongTimeout
    const probe = ctx.envelope ? null : ctx.probe
    if (ctx.envelope) { interval = this.#beat; timeout = this.#timeout }
    if (!interval || (!ctx.envelope && !probe)) return // nothing would break the silence
    const quiet = now() - ctx.lastRead
    if (quiet >= interval + timeout) { this.#drop(ctx, 'silence'); return }
    let next = interval + timeout - quiet
    if (probe) {
      if (quiet >= interval) {
        if (!ctx.pinged) { ctx.pinged = true; try { probe() } catch {} }
      } else next = interval - quiet
    }
    ctx.watch = setTimeout(() => { ctx.watch = null; this.#watch(ctx) }, Math.max(1, next))
  }

  #protocolError (ctx, msg, disableResume) {
    if (ctx.done) return
    this.#emit('error', { error: new ProtocolError(msg) })
    if (disableResume) this.#resumeOK = false
    this.#forget('protocol error')
    this.#finish(ctx)
    // Browsers may send only 1000 and 3000-4999; 1000 ends the session too.
    try { ctx.ws.close(1002, msg) } catch { try { ctx.ws.close(1000, 'protocol error') } catch {} }
    this.#lost(ctx, { code: 1002, reason: msg, wasClean: false, cause: 'protocol' })
  }

  // drop abandons a socket that will not close by itself (silence, a
  // stuck handshake): a closing handshake cannot cross a dead path.
  #drop (ctx, cause) {
    if (ctx.done) return
    this.#finish(ctx)
    if (typeof ctx.ws.terminate === 'function') ctx.ws.terminate()
    else ctx.ws.close()
    this.#lost(ctx, { code: 1006, reason: '', wasClean: false, cause })
  }

  // finish detaches a socket from the client.
  #finish (ctx) {
    ctx.done = true
    clearTimeout(ctx.timer)
    clearTimeout(ctx.watch)
    ctx.ws.onopen = ctx.ws.onmessage = ctx.ws.onclose = null
    if (this.#ctx === ctx) this.#ctx = null
  }

  #lost (ctx, info) {
    if (ctx.lost) return
    ctx.lost = true
    if (!ctx.done) this.#finish(ctx)
    if (this.#state === 'closed') return
    const { code, reason } = info
    if (code === 1008) this.#forget('taken over') // docs/resume.md §5.1
    const o = this.#o
    const refused = !ctx.opened && ctx.status >= 400 && ctx.status < 500 && ctx.status !== 408 && ctx.status !== 429
    const final = refused || (ctx.opened && !o.shouldReconnect(code, reason)) || this.#attempt >= o.backoff.maxAttempts
    if (final) {
      this.#state = 'closed'
      const ev = { code, reason, wasClean: !!info.wasClean, status: ctx.status, unsent: this.#queue.length, unconfirmedSends: this.#tx - this.#confirmed }
      this.#queue = []
      this.#queueBytes = 0
      this.#emit('close', ev)
      return
    }
    const hint = retryHint(reason) ?? ctx.retryAfter
    const b = o.backoff
    const delay = hint !== null
      ? Math.min(hint * 1000, o.maxRetryAfter) + o.random() * b.base
      : backoffDelay(this.#attempt, b.base, b.cap, o.random)
    const attempt = ++this.#attempt
    this.#state = 'reconnecting'
    this.#emit('reconnecting', { attempt, delay, code, reason, status: ctx.status, retryAfter: hint, cause: info.cause })
    if (this.#state !== 'reconnecting') return // closed by a listener
    this.#cancelRetry = o.scheduleReconnect(() => { this.#cancelRetry = null; this.#connect() }, delay)
  }
}
