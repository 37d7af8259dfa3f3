// Runs every case in this page with the browser's own WebSocket and
// POSTs the results to the harness, which chromium.test.mjs reads.

import { cases } from './cases.mjs'
import { makeCtl } from './ctl.mjs'

const log = document.getElementById('log')
const post = (b) => fetch('/results', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(b) })

const results = []
for (const c of cases) {
  const env = { WebSocket, ctl: makeCtl(''), node: false }
  const r = { name: c.name, ok: true, error: '' }
  try {
    await c.run(env)
  } catch (e) {
    r.ok = false
    r.error = String(e && e.stack || e)
  }
  try { await env.ctl.reset() } catch (e) { if (r.ok) { r.ok = false; r.error = 'reset: ' + e } }
  results.push(r)
  log.textContent += `${r.ok ? 'ok' : 'FAIL'} ${r.name}\n`
  await post(r)
}
await post({ done: true, results })
