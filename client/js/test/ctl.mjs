// ctl is the test cases' handle on the harness's control API, the same
// over fetch from Node and from a Chromium page. reset() closes the
// clients a case made and stops the gateways, proxies and fakes it
// started.

export function makeCtl (base) {
  const ids = []
  const clients = []
  async function call (p, b = {}) {
    const r = await fetch(base + p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(b) })
    const j = await r.json()
    if (r.status !== 200) throw new Error(`${p}: ${j.error}`)
    return j
  }
  const made = async (p, b) => { const o = await call(p, b); ids.push(o.id); return o }
  return {
    gateway: (args = []) => made('/ctl/gateway', { args }),
    drain: (g) => call('/ctl/gateway/drain', { id: g.id }),
    push: (g, body) => call('/ctl/gateway/push', { id: g.id, body }),
    proxy: (target) => made('/ctl/proxy', { target }),
    setProxy: (p, o) => call('/ctl/proxy/set', { id: p.id, ...o }),
    cut: (p) => call('/ctl/proxy/cut', { id: p.id }),
    freeze: (p) => call('/ctl/proxy/freeze', { id: p.id }),
    fake: (o) => made('/ctl/fake', o),
    fakeDo: (f, action, o = {}) => call('/ctl/fake/do', { id: f.id, action, ...o }),
    track (c) { clients.push(c); return c },
    async reset () {
      for (const c of clients.splice(0)) { try { c.close() } catch {} }
      await call('/ctl/reset', { ids: ids.splice(0) })
    }
  }
}
