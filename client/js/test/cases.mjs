// The JavaScript client's test cases. The same cases run under Node
// (node.test.mjs, the ws package as WebSocket) and in headless Chromium
// (chromium.test.mjs, the browser's WebSocket), against real gateways and
// proxies that the harness starts on request. env: { WebSocket, ctl, node }
// where node says whether the WebSocket is Node's ws (which shows the
// HTTP status of a refused handshake, and pings).
//
// Waits are bounded generously and assertions are about outcomes and
// counts, never durations: reconnect delays are asserted as the values the
// client chose (recorded by an injected scheduleReconnect, which then waits
// at most 30 ms so the cases run fast).

import { WsgateClient, QueueFullError, ProtocolError, backoffDelay, retryHint, parseRetryAfter, offerProtocols, utf8Length } from '../wsgate.js'

function ok (cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg) }
function eq (got, want, msg) {
  const g = JSON.stringify(got)
  const w = JSON.stringify(want)
  if (g !== w) throw new Error(`${msg}: got ${g}, want ${w}`)
}
function throws (fn, cls, msg) {
  try { fn() } catch (e) { if (e instanceof cls) return; throw new Error(`${msg}: threw ${e}`) }
  throw new Error(msg + ': did not throw')
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function until (cond, what, ms = 20000) {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await sleep(10)
  }
}

const TYPES = ['open', 'message', 'reconnecting', 'resumed', 'missed', 'error', 'close']

// client starts a WsgateClient that records its events and the reconnect
// delays it chose.
function client (env, url, opts = {}) {
  const delays = []
  const events = []
  const c = new WsgateClient(url, {
    WebSocket: env.WebSocket,
    scheduleReconnect: (fn, ms) => { delays.push(ms); const t = setTimeout(fn, Math.min(ms, 30)); return () => clearTimeout(t) },
    ...opts
  })
  for (const t of TYPES) c.addEventListener(t, (e) => events.push(e))
  env.ctl.track(c)
  c.delays = delays
  c.events = events
  c.of = (t) => events.filter((e) => e.type === t)
  c.texts = () => c.of('message').map((e) => e.data).filter((d) => typeof d === 'string')
  return c
}

const range = (prefix, a, b) => Array.from({ length: b - a + 1 }, (_, i) => prefix + (a + i))

export const cases = [
  {
    name: 'echo through the real gateway keeps text as text and binary as binary',
    async run (env) {
      const gw = await env.ctl.gateway()
      const c = client(env, gw.ws)
      await until(() => c.state === 'open', 'open')
      c.send('hello')
      c.send(new Uint8Array([0, 1, 255]))
      await until(() => c.of('message').length === 2, 'two echoes')
      const [t, b] = c.of('message').map((e) => e.data)
      eq(t, 'hello', 'text echo')
      ok(b instanceof ArrayBuffer, 'binary echo is an ArrayBuffer')
      eq([...new Uint8Array(b)], [0, 1, 255], 'binary echo')
    }
  },
  {
    name: 'drain: 1001 with retry-after, reconnect after the hint, pushes once and in order',
    async run (env) {
      const a = await env.ctl.gateway(['--drain-window', '1s', '--drain-grace', '2s'])
      const b = await env.ctl.gateway()
      const lb = await env.ctl.proxy(a.addr)
      const c = client(env, lb.ws, { backoff: { base: 500 } })
      await until(() => c.state === 'open', 'open on A')
      for (let i = 1; i <= 3; i++) eq((await env.ctl.push(a, 'p' + i)).sent, 1, 'push to A')
      await until(() => c.texts().length === 3, 'pushes from A')
      await env.ctl.setProxy(lb, { target: b.addr }) // the balancer takes A out
      eq((await env.ctl.drain(a)).status, 202, 'drain accepted')
      await until(() => c.of('open').length === 2, 'open on B')
      const r = c.of('reconnecting')[0]
      eq(r.code, 1001, 'close code')
      ok(/retry-after=\d+/.test(r.reason), 'reason carries the hint: ' + r.reason)
      ok(r.retryAfter >= 1 && r.retryAfter <= 2, 'hint within the 1s window: ' + r.retryAfter)
      ok(r.delay >= r.retryAfter * 1000 && r.delay < r.retryAfter * 1000 + 500, 'delay honours the hint: ' + r.delay)
      for (let i = 4; i <= 6; i++) eq((await env.ctl.push(b, 'p' + i)).sent, 1, 'push to B')
      await until(() => c.texts().length === 6, 'pushes from B')
      eq(c.texts(), range('p', 1, 6), 'every push once, in order')
    }
  },
  {
    name: 'abrupt TCP kill: no close frame, the client reconnects',
    async run (env) {
      const gw = await env.ctl.gateway()
      const p = await env.ctl.proxy(gw.addr)
      const c = client(env, p.ws)
      await until(() => c.state === 'open', 'open')
      await env.ctl.cut(p)
      await until(() => c.of('open').length === 2, 'reopen')
      const r = c.of('reconnecting')
      eq(r.length, 1, 'one reconnect')
      eq(r[0].code, 1006, 'abnormal closure, no close frame')
      c.send('after')
      await until(() => c.texts().includes('after'), 'echo after the reconnect')
    }
  },
  {
    name: 'resume through the real gateway: after an abrupt TCP kill, what was pushed meanwhile is replayed once, in order',
    async run (env) {
      const gw = await env.ctl.gateway()
      const p = await env.ctl.proxy(gw.addr)
      const c = client(env, p.ws, { resume: true })
      await until(() => c.state === 'open', 'open')
      ok(c.of('open')[0].resumable, 'the gateway gave a session')
      for (let i = 1; i <= 3; i++) eq((await env.ctl.push(gw, 'p' + i)).sent, 1, 'push')
      await until(() => c.texts().length === 3, 'three pushes')
      await env.ctl.setProxy(p, { mode: 'refuse' }) // no reconnect until the pushes below are in
      await env.ctl.cut(p)
      await until(() => c.of('reconnecting').length === 1, 'the drop')
      for (let i = 4; i <= 6; i++) eq((await env.ctl.push(gw, 'p' + i)).sent, 1, 'push to the suspended session')
      await env.ctl.setProxy(p, { mode: 'pass' })
      await until(() => c.of('resumed').length === 1, 'the resume')
      await until(() => c.texts().length === 6, 'the replay')
      eq(c.of('missed').length, 0, 'nothing missed')
      eq(c.texts(), range('p', 1, 6), 'every push once, in order')
      c.send('echo')
      await until(() => c.texts().includes('echo'), 'echo on the resumed session')
    }
  },
  {
    name: '503 storm: refused upgrades back off, honouring Retry-After where visible',
    async run (env) {
      const gw = await env.ctl.gateway(['--max-conns', '1'])
      const holder = new env.WebSocket(gw.ws)
      await new Promise((resolve, reject) => { holder.onopen = resolve; holder.onerror = reject })
      const c = client(env, gw.ws, { backoff: { base: 100, cap: 1000 } })
      await until(() => c.of('reconnecting').length >= 3, 'three refusals')
      holder.close()
      await until(() => c.state === 'open', 'open once the slot is free')
      const refusals = c.of('reconnecting')
      for (const r of refusals) {
        ok(r.cause === 'handshake', 'refused at the handshake: ' + r.cause)
        if (env.node) { // ws shows the 503 and its Retry-After: 5 (loop/admission.go)
          eq(r.status, 503, 'status')
          eq(r.retryAfter, 5, 'Retry-After')
          ok(r.delay >= 5000 && r.delay < 5100, 'delay honours Retry-After: ' + r.delay)
        } else { // a browser sees neither: full-jitter backoff
          eq(r.status, 0, 'no status in a browser')
          ok(r.delay >= 0 && r.delay < Math.min(1000, 100 * 2 ** (r.attempt - 1)), 'delay within the backoff bound: ' + r.delay)
        }
      }
      c.send('in')
      await until(() => c.texts().includes('in'), 'echo')
    }
  },
  {
    name: '503 storm with resume: the gateway answers 101 and a close 1013 with its retry hint, which a browser honours too',
    async run (env) {
      const gw = await env.ctl.gateway(['--max-conns', '1'])
      const holder = new env.WebSocket(gw.ws)
      await new Promise((resolve, reject) => { holder.onopen = resolve; holder.onerror = reject })
      const c = client(env, gw.ws, { resume: true, backoff: { base: 100, cap: 1000 } })
      await until(() => c.of('reconnecting').length >= 2, 'two refusals')
      holder.close()
      await until(() => c.state === 'open', 'open once the slot is free')
      for (const r of c.of('reconnecting')) {
        eq(r.code, 1013, 'close code')
        eq(r.retryAfter, 5, 'the hint from the close reason: ' + r.reason)
        ok(r.delay >= 5000 && r.delay < 5100, 'delay honours the hint: ' + r.delay)
      }
      ok(c.of('open')[0].resumable, 'the session opened once admitted')
      c.send('in')
      await until(() => c.texts().includes('in'), 'echo')
    }
  },
  {
    name: 'backoff: full jitter stays within min(cap, base·2^n) and spreads over it',
    async run () {
      for (let n = 0; n <= 10; n++) {
        const ceiling = Math.min(30000, 1000 * 2 ** n)
        let lo = Infinity
        let hi = -Infinity
        let sum = 0
        const draws = 2000
        for (let i = 0; i < draws; i++) {
          const d = backoffDelay(n, 1000, 30000)
          ok(d >= 0 && d < ceiling, `attempt ${n}: ${d} outside [0, ${ceiling})`)
          lo = Math.min(lo, d); hi = Math.max(hi, d); sum += d
        }
        ok(lo < 0.05 * ceiling && hi > 0.95 * ceiling, `attempt ${n}: draws do not cover the range (${lo}, ${hi})`)
        const mean = sum / draws / ceiling
        ok(mean > 0.4 && mean < 0.6, `attempt ${n}: mean ${mean} of the ceiling`)
      }
      eq(backoffDelay(3, 1000, 30000, () => 0), 0, 'random 0')
      eq(backoffDelay(60, 1000, 30000, () => 0.5), 15000, 'capped, huge attempt')
      eq(retryHint('going away; retry-after=17'), 17, 'drain hint')
      eq(retryHint('going away'), null, 'no hint')
      eq(retryHint('retry-after=x'), null, 'bad hint')
      eq(retryHint('retry-after=5x; retry-after=6'), 6, 'second, well-formed hint')
      eq(retryHint('retry-after=1234567890'), null, 'ten digits')
      eq(parseRetryAfter('5'), 5, 'delta-seconds')
      eq(parseRetryAfter(new Date(Date.now() + 10000).toUTCString(), Date.now()) >= 9, true, 'HTTP-date')
      eq(parseRetryAfter('soon'), null, 'garbage')
      eq(offerProtocols(['chat', 'bearer.t'], true, 'tok', 7), ['wsgate.resume.v1+chat', 'wsgate.resume.v1', 'chat', 'bearer.t', 'wsgate.session.tok.7'], 'offer')
      eq(offerProtocols(['chat'], false, 'tok', 7), ['chat'], 'plain offer')
      eq(utf8Length('aé€😀'), 1 + 2 + 3 + 4, 'utf8Length')
    }
  },
  {
    name: 'offline queue: bounded by messages and bytes, an error past the bound, flushed in order',
    async run (env) {
      const gw = await env.ctl.gateway()
      const p = await env.ctl.proxy(gw.addr)
      const c = client(env, p.ws, { queue: { messages: 5, bytes: 1000 } })
      await until(() => c.state === 'open', 'open')
      await env.ctl.setProxy(p, { mode: 'refuse' })
      await env.ctl.cut(p)
      await until(() => c.state === 'reconnecting', 'offline')
      for (let i = 1; i <= 5; i++) eq(c.send('q' + i), false, 'queued')
      throws(() => c.send('q6'), QueueFullError, 'sixth message')
      await env.ctl.setProxy(p, { mode: 'pass' })
      await until(() => c.texts().length === 5, 'queued messages echoed')
      eq(c.texts(), range('q', 1, 5), 'flushed in order')

      await env.ctl.setProxy(p, { mode: 'refuse' })
      const d = client(env, p.ws, { queue: { messages: 100, bytes: 10 } })
      eq(d.send('12345678'), false, 'eight bytes queued')
      throws(() => d.send('abc'), QueueFullError, 'byte bound')
      eq(d.send('ab'), false, 'exactly at the bound')
      d.close()
      await until(() => d.of('close').length === 1, 'close event')
      eq(d.of('close')[0].unsent, 2, 'close counts what was never sent')
    }
  },
  {
    name: 'silence: a path that stops forwarding is detected and replaced',
    async run (env) {
      const gw = await env.ctl.gateway()
      const p = await env.ctl.proxy(gw.addr)
      // Under Node the client pings; a browser cannot, so the page names
      // a keepalive message that the echo app answers.
      const c = client(env, p.ws, { pingInterval: 300, pongTimeout: 300, keepalive: env.node ? undefined : 'ka' })
      await until(() => c.state === 'open', 'open')
      await sleep(700) // longer than interval + timeout: the probe keeps it alive
      eq(c.of('reconnecting').length, 0, 'a live path is not dropped')
      await env.ctl.freeze(p)
      await until(() => c.of('open').length === 2, 'reopen through a fresh pipe')
      eq(c.of('reconnecting')[0].cause, 'silence', 'dropped for silence')
      c.send('alive')
      await until(() => c.texts().includes('alive'), 'echo on the new connection')
    }
  },
  {
    name: 'client-side protocol (fake server): resume replays what was missed, once, in order',
    async run (env) {
      const f = await env.ctl.fake({})
      const c = client(env, f.ws, { resume: true })
      await until(() => c.state === 'open', 'open')
      ok(c.resumable, 'resumable')
      await env.ctl.fakeDo(f, 'push', { count: 10 })
      await until(() => c.texts().length === 10, 'first ten')
      await env.ctl.fakeDo(f, 'cut')
      await env.ctl.fakeDo(f, 'push', { count: 10 }) // into the suspended session's buffer
      await until(() => c.of('resumed').length === 1, 'resumed')
      eq(c.of('resumed')[0].replay, 10, 'replay count')
      await env.ctl.fakeDo(f, 'push', { count: 5 })
      await until(() => c.texts().length === 25, 'all 25')
      eq(c.texts(), range('m', 1, 25), 'no gap, no duplicate, in order')
      eq(c.of('open').length, 1, 'a resume is not a new open')
      eq(c.of('missed').length, 0, 'nothing missed')
      const offers = (await env.ctl.fakeDo(f, 'state')).offers
      ok(offers[1].some((p) => p.startsWith('wsgate.session.') && p.endsWith('.10')), 'presented token and seq 10: ' + offers[1])
    }
  },
  {
    name: 'client-side protocol (fake server): sends the server never took are re-sent once',
    async run (env) {
      const f = await env.ctl.fake({})
      const c = client(env, f.ws, { resume: true })
      await until(() => c.state === 'open', 'open')
      c.send('c1')
      await until(async () => (await env.ctl.fakeDo(f, 'state')).current.in === 1, 'c1 taken')
      await env.ctl.fakeDo(f, 'dropIncoming', { on: true }) // c2-c4 are lost in flight
      c.send('c2'); c.send('c3'); c.send(new Uint8Array([4]))
      await until(async () => (await env.ctl.fakeDo(f, 'state')).current.ignored === 3, 'three lost')
      await env.ctl.fakeDo(f, 'cut')
      await until(() => c.of('resumed').length === 1, 'resumed')
      c.send('c5')
      await until(async () => (await env.ctl.fakeDo(f, 'state')).current.in === 5, 'five taken')
      eq((await env.ctl.fakeDo(f, 'state')).current.received, ['c1', 'c2', 'c3', [4], 'c5'], 'each once, in order')
      eq(c.of('resumed')[0].lostSends, 0, 'nothing lost')
    }
  },
  {
    name: 'client-side protocol (fake server): sends beyond the retention bound are reported, not silent',
    async run (env) {
      const f = await env.ctl.fake({})
      const c = client(env, f.ws, { resume: true, retain: { messages: 2 } })
      await until(() => c.state === 'open', 'open')
      await env.ctl.fakeDo(f, 'dropIncoming', { on: true })
      c.send('c1'); c.send('c2'); c.send('c3')
      await until(async () => (await env.ctl.fakeDo(f, 'state')).current.ignored === 3, 'three lost')
      await env.ctl.fakeDo(f, 'cut')
      await until(() => c.of('resumed').length === 1, 'resumed')
      eq(c.of('resumed')[0].lostSends, 1, 'c1 had left the retention buffer')
      await until(async () => (await env.ctl.fakeDo(f, 'state')).current.in === 2, 'two re-sent')
      eq((await env.ctl.fakeDo(f, 'state')).current.received, ['c2', 'c3'], 're-sent what was retained')
    }
  },
  {
    name: 'client-side protocol (fake server): an expired session is reported as missed, then a new one opens',
    async run (env) {
      const f = await env.ctl.fake({})
      const c = client(env, f.ws, { resume: true })
      await until(() => c.state === 'open', 'open')
      await env.ctl.fakeDo(f, 'push', { count: 3 })
      await until(() => c.texts().length === 3, 'three')
      c.send('unconfirmed') // taken by the old session, never confirmed by a BEAT
      await env.ctl.fakeDo(f, 'cut')
      await env.ctl.fakeDo(f, 'expire')
      await until(() => c.of('open').length === 2, 'new session')
      const m = c.of('missed')
      eq(m.length, 1, 'one missed event')
      eq(m[0].reason, 'expired', 'reason')
      eq(m[0].unconfirmedSends, 1, 'the unconfirmed send is counted')
      ok(c.events.indexOf(m[0]) < c.events.indexOf(c.of('open')[1]), 'missed before open')
      await env.ctl.fakeDo(f, 'push', { count: 2 })
      await until(() => c.texts().length === 5, 'new session messages')
      eq(c.texts().slice(3), ['m1', 'm2'], 'numbering restarts with the new session')
    }
  },
  {
    name: 'client-side protocol (fake server): a buffer overflow is reported as missed',
    async run (env) {
      const f = await env.ctl.fake({ buffer: 20 })
      const c = client(env, f.ws, { resume: true })
      await until(() => c.state === 'open', 'open')
      await env.ctl.fakeDo(f, 'cut')
      await env.ctl.fakeDo(f, 'push', { count: 10, prefix: 'xxxxxxxx' })
      await until(() => c.of('missed').length === 1, 'missed')
      eq(c.of('missed')[0].reason, 'overflow', 'reason')
    }
  },
  {
    name: 'client-side protocol (fake server): BEAT is answered by ACK, silence is detected, the session resumes',
    async run (env) {
      const f = await env.ctl.fake({ beat: 100, timeout: 200 })
      const c = client(env, f.ws, { resume: true })
      await until(() => c.state === 'open', 'open')
      await env.ctl.fakeDo(f, 'push', { count: 2 })
      await until(async () => (await env.ctl.fakeDo(f, 'state')).current.acks.filter((a) => a === 2).length >= 2, 'ACKs of seq 2')
      await env.ctl.fakeDo(f, 'freeze') // the socket stays open; nothing more comes
      await until(() => c.of('resumed').length === 1, 'resumed after silence')
      eq(c.of('reconnecting')[0].cause, 'silence', 'dropped for silence')
      await env.ctl.fakeDo(f, 'push', { count: 1 })
      await until(() => c.texts().length === 3, 'live after resume')
      eq(c.texts(), ['m1', 'm2', 'm3'], 'in order')
    }
  },
  {
    name: 'client-side protocol (fake server): no HELLO first is a protocol error, then the client runs plain',
    async run (env) {
      const f = await env.ctl.fake({ mode: 'nohello' })
      const c = client(env, f.ws, { resume: true })
      await until(() => c.of('error').length === 1, 'protocol error')
      ok(c.of('error')[0].error instanceof ProtocolError, 'a ProtocolError')
      await until(() => c.state === 'open', 'open, plain')
      const offers = (await env.ctl.fakeDo(f, 'state')).offers
      ok(offers[0].includes('wsgate.resume.v1'), 'first offer had the envelope')
      eq(offers[offers.length - 1], [], 'then it offers nothing')
      c.send('plain')
      await until(() => c.texts().includes('plain'), 'plain echo')
    }
  }
]

export { until, eq, ok }
