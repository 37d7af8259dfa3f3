// The test harness: one HTTP server that serves the client and its test
// page, and a control API (/ctl/...) through which the test cases, in Node
// or in a Chromium page, start real gateways (the binary built from
// cmd/gateway), put TCP proxies in front of them (cut, freeze, retarget,
// refuse) and drive a fake envelope server (fake.mjs). Everything listens
// on 127.0.0.1 port 0.

import http from 'node:http'
import net from 'node:net'
import { spawn, execFileSync } from 'node:child_process'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Fake } from './fake.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const jsRoot = path.resolve(here, '..')
const repoRoot = path.resolve(jsRoot, '..', '..')

// gatewayBinary returns $WSGATE_BIN, or builds cmd/gateway once into a
// temporary directory.
let built = null
async function gatewayBinary () {
  if (process.env.WSGATE_BIN) return { bin: process.env.WSGATE_BIN, dir: null }
  if (!built) {
    const dir = await mkdtemp(path.join(tmpdir(), 'wsgate-js-'))
    const bin = path.join(dir, 'wsgate')
    execFileSync('go', ['build', '-o', bin, './cmd/gateway'], { cwd: repoRoot, stdio: 'inherit' })
    built = { bin, dir }
  }
  return built
}

// Gateway is one real gateway process.
class Gateway {
  static async start (bin, args) {
    const g = new Gateway()
    g.proc = spawn(bin, ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--demo=false', '--loops', '1', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    g.log = ''
    await new Promise((resolve, reject) => {
      const fail = (why) => reject(new Error(`gateway ${args.join(' ')}: ${why}\n${g.log}`))
      const timer = setTimeout(() => fail('no listening line within 20 s'), 20000)
      g.proc.on('exit', (code) => { clearTimeout(timer); fail('exited with ' + code) })
      g.proc.stderr.setEncoding('utf8')
      g.proc.stderr.on('data', (d) => {
        g.log += d
        const ws = /msg="wsgate listening" addr=(\S+)/.exec(g.log)
        const admin = /msg="admin listening" addr=(\S+)/.exec(g.log)
        if (ws && admin) {
          clearTimeout(timer)
          g.proc.removeAllListeners('exit')
          g.addr = ws[1]
          g.admin = 'http://' + admin[1]
          resolve()
        }
      })
    })
    return g
  }

  stop () {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL')
  }
}

// Proxy is a TCP relay whose pipes can be cut (both sockets closed, no
// close frame), frozen (bytes dropped both ways, sockets kept open: a
// black hole), retargeted or made to refuse new connections.
class Proxy {
  constructor (target) {
    this.target = target
    this.mode = 'pass'
    this.pipes = new Set()
    this.accepted = 0
  }

  listen () {
    this.server = net.createServer((c) => this.#accept(c))
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port)))
  }

  #accept (c) {
    this.accepted++
    if (this.mode === 'refuse' || !this.target) { c.destroy(); return }
    const [host, port] = splitAddr(this.target)
    const up = net.connect(port, host)
    const p = { c, up, frozen: false }
    this.pipes.add(p)
    const end = () => { this.pipes.delete(p); c.destroy(); up.destroy() }
    c.on('data', (d) => { if (!p.frozen) up.write(d) })
    up.on('data', (d) => { if (!p.frozen) c.write(d) })
    c.on('close', end); up.on('close', end)
    c.on('error', end); up.on('error', end)
  }

  cut () { for (const p of this.pipes) { p.c.destroy(); p.up.destroy() } this.pipes.clear() }
  freeze () { for (const p of this.pipes) p.frozen = true }
  close () { this.cut(); this.server.close() }
}

function splitAddr (a) {
  const i = a.lastIndexOf(':')
  return [a.slice(0, i), Number(a.slice(i + 1))]
}

async function body (req) {
  let s = ''
  for await (const chunk of req) s += chunk
  return s ? JSON.parse(s) : {}
}

const types = { '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.html': 'text/html; charset=utf-8' }

/**
 * startHarness starts the harness and returns { url, close, results }:
 * results resolves with what a browser page POSTs to /results when done.
 */
export async function startHarness () {
  const { bin } = await gatewayBinary()
  const objs = new Map() // id -> Gateway | Proxy | Fake
  let next = 1
  let resolveResults
  const results = new Promise((resolve) => { resolveResults = resolve })
  const progress = []

  const routes = {
    'POST /ctl/gateway': async (b) => {
      const g = await Gateway.start(bin, b.args || [])
      const id = String(next++)
      objs.set(id, g)
      return { id, addr: g.addr, ws: 'ws://' + g.addr + '/ws', admin: g.admin }
    },
    'POST /ctl/gateway/drain': async (b) => {
      const r = await fetch(objs.get(b.id).admin + '/v1/drain', { method: 'POST' })
      return { status: r.status }
    },
    // push sends body to every connection of the gateway through its
    // admin API, as text.
    'POST /ctl/gateway/push': async (b) => {
      const g = objs.get(b.id)
      const list = await (await fetch(g.admin + '/v1/connections')).json()
      let sent = 0
      for (const c of list.connections) {
        const r = await fetch(`${g.admin}/v1/connections/${c.id}/messages`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: b.body })
        if (r.status === 202) sent++
      }
      return { sent }
    },
    'POST /ctl/proxy': async (b) => {
      const p = new Proxy(b.target || null)
      const port = await p.listen()
      const id = String(next++)
      objs.set(id, p)
      return { id, ws: `ws://127.0.0.1:${port}/ws` }
    },
    'POST /ctl/proxy/set': async (b) => {
      const p = objs.get(b.id)
      if ('target' in b) p.target = b.target
      if ('mode' in b) p.mode = b.mode
      return {}
    },
    'POST /ctl/proxy/cut': async (b) => { objs.get(b.id).cut(); return {} },
    'POST /ctl/proxy/freeze': async (b) => { objs.get(b.id).freeze(); return {} },
    'POST /ctl/fake': async (b) => {
      const f = new Fake(b)
      const port = await f.listen()
      const id = String(next++)
      objs.set(id, f)
      return { id, ws: `ws://127.0.0.1:${port}/ws` }
    },
    'POST /ctl/fake/do': async (b) => objs.get(b.id).do(b) || {},
    'POST /ctl/reset': async (b) => {
      for (const id of b.ids || []) {
        const o = objs.get(id)
        objs.delete(id)
        if (o instanceof Gateway) o.stop()
        else if (o) o.close()
      }
      return {}
    },
    'POST /results': async (b) => {
      if (b.done) resolveResults(b.results)
      else progress.push(b)
      return {}
    }
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x')
    const route = routes[req.method + ' ' + url.pathname]
    try {
      if (route) {
        const out = await route(await body(req))
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify(out))
        return
      }
      if (req.method === 'GET') {
        const rel = url.pathname === '/wsgate.js' ? 'wsgate.js' : url.pathname.startsWith('/test/') ? url.pathname.slice(1) : null
        if (rel && !rel.includes('..')) {
          const data = await readFile(path.join(jsRoot, rel))
          res.writeHead(200, { 'Content-Type': types[path.extname(rel)] || 'application/octet-stream', 'Cache-Control': 'no-store' })
          res.end(data)
          return
        }
      }
      res.writeHead(404)
      res.end()
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ error: String(err && err.stack || err) }))
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`

  return {
    url,
    results,
    progress,
    async close () {
      for (const o of objs.values()) {
        if (o instanceof Gateway) o.stop()
        else o.close()
      }
      objs.clear()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

/** cleanupBuild removes the binary gatewayBinary built, if any. */
export async function cleanupBuild () {
  if (built && built.dir) await rm(built.dir, { recursive: true, force: true })
  built = null
}
