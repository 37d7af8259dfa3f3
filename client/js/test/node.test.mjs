// The client's cases under Node, with the ws package as the WebSocket
// (Node 20 has no global one), against the harness's real gateways.

import { test, before, after } from 'node:test'
import { WebSocket } from 'ws'
import { startHarness } from './harness.mjs'
import { makeCtl } from './ctl.mjs'
import { cases } from './cases.mjs'

let h
before(async () => { h = await startHarness() })
after(async () => { await h.close() })

for (const c of cases) {
  test(c.name, { timeout: 60000 }, async () => {
    const env = { WebSocket, ctl: makeCtl(h.url), node: true }
    try {
      await c.run(env)
    } finally {
      await env.ctl.reset()
    }
  })
}
