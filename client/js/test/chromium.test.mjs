// The same cases in headless Chromium: the page (browser.html) runs them
// with the browser's own WebSocket against the harness's real gateways and
// POSTs its results back. A missing Chromium fails the test: CI installs
// it (.ci/run). $CHROMIUM overrides /usr/bin/chromium.

import { test } from 'node:test'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startHarness } from './harness.mjs'
import { cases } from './cases.mjs'

const chromium = process.env.CHROMIUM || '/usr/bin/chromium'

test('headless Chromium runs every client case', { timeout: 300000 }, async (t) => {
  if (!existsSync(chromium)) throw new Error(`${chromium} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM`)
  const h = await startHarness()
  const profile = await mkdtemp(path.join(tmpdir(), 'wsgate-chromium-'))
  const proc = spawn(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--user-data-dir=' + profile, h.url + '/test/browser.html'
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  let stderr = ''
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  let results
  let timer
  try {
    results = await Promise.race([
      h.results,
      exited.then((code) => { throw new Error(`chromium exited (${code}) before the page reported:\n${stderr}`) }),
      new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('no results from the page within 240 s; so far: ' + JSON.stringify(h.progress) + '\n' + stderr)), 240000) })
    ])
  } finally {
    clearTimeout(timer)
    try { process.kill(-proc.pid, 'SIGTERM') } catch {}
    let grace
    await Promise.race([exited, new Promise((resolve) => { grace = setTimeout(resolve, 5000) })])
    clearTimeout(grace)
    try { process.kill(-proc.pid, 'SIGKILL') } catch {}
    await h.close()
    await rm(profile, { recursive: true, force: true })
  }
  const byName = new Map(results.map((r) => [r.name, r]))
  for (const c of cases) {
    await t.test(c.name, () => {
      const r = byName.get(c.name)
      if (!r) throw new Error('the page did not run it')
      if (!r.ok) throw new Error(r.error)
    })
  }
})
