// Interop client: the npm package ws (the version pinned in package.json)
// against a running wsgate with the echo app.
//
// Usage: node echo_client.mjs ws://127.0.0.1:PORT/ws
//
// Exits non-zero with a message on the first failure.

import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const { version } = createRequire(import.meta.url)('ws/package.json');
const NAME = `echo_client.mjs (ws ${version})`;
const MIB = 1 << 20;

// The Sec-WebSocket-Extensions answer to ws's default offer
// ("permessage-deflate; client_max_window_bits") for each gateway mode.
const EXPECT = {
  on: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  context: 'permessage-deflate; client_max_window_bits=12',
  off: '',
}[process.env.WSGATE_COMPRESSION || 'on'];

class Failure extends Error {}

function check(cond, what) {
  if (!cond) throw new Failure(what);
}

// Client turns ws's events into a queue that the test reads in order.
class Client {
  static open(url) {
    return new Promise((resolve, reject) => {
      // perMessageDeflate stays offered (ws's default); the server answers
      // as WSGATE_COMPRESSION says (EXPECT). threshold 0: ws compresses
      // every message, fragments too.
      const ws = new WebSocket(url, { maxPayload: 2 * MIB, handshakeTimeout: 10000, perMessageDeflate: { threshold: 0 } });
      const c = new Client(ws);
      ws.once('upgrade', (res) => { c.extensions = res.headers['sec-websocket-extensions'] || ''; });
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_, res) => reject(new Failure(`upgrade answered ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.events = [];
    this.waiting = null;
    ws.on('message', (data, isBinary) => this.push({ type: 'message', data, isBinary }));
    ws.on('pong', (data) => this.push({ type: 'pong', data }));
    ws.on('close', (code, reason) => this.push({ type: 'close', code, reason: reason.toString() }));
    ws.on('error', (error) => this.push({ type: 'error', error }));
  }

  push(ev) {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(ev);
    } else {
      this.events.push(ev);
    }
  }

  // next returns the next event, which must be of the given type.
  async next(type, what) {
    const ev = this.events.length > 0 ? this.events.shift() : await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Failure(`timed out waiting for ${what}`)), 10000);
      this.waiting = (e) => { clearTimeout(timer); resolve(e); };
    });
    if (ev.type === 'error') throw new Failure(`${what}: ${ev.error.message}`);
    check(ev.type === type, `${what}: got a ${ev.type} event ${ev.type === 'close' ? ev.code : ''}`);
    return ev;
  }
}

async function echo(url) {
  const c = await Client.open(url);
  check(c.extensions === EXPECT, `extensions answer ${JSON.stringify(c.ws.extensions)}, want ${JSON.stringify(EXPECT)}`);

  // Text.
  const text = 'Hello, wsgate! κόσμε € 😀';
  c.ws.send(text);
  let ev = await c.next('message', 'text echo');
  check(!ev.isBinary && ev.data.toString() === text, `text echo: got ${JSON.stringify(ev.data.toString())}`);

  // 1 MiB of binary: the server's default limit, which is inclusive.
  const data = randomBytes(MIB);
  c.ws.send(data);
  ev = await c.next('message', '1 MiB binary echo');
  check(ev.isBinary && data.equals(ev.data), `1 MiB binary echo: got ${ev.data.length} bytes, binary=${ev.isBinary}`);

  // 1 MiB of compressible text, twice (context takeover refers back).
  let big = '';
  for (let i = 0; big.length < MIB; i++) big += `{"seq":${i},"user":"u${i % 13}","text":"hello"},`;
  big = big.slice(0, MIB);
  for (let i = 0; i < 2; i++) {
    c.ws.send(big);
    ev = await c.next('message', '1 MiB text echo');
    check(!ev.isBinary && ev.data.toString() === big, `1 MiB text echo: got ${ev.data.length} bytes`);
  }

  // A fragmented message: fin:false sends a frame with FIN clear, and the
  // sends that follow are continuations until one has fin:true.
  c.ws.send('frag', { fin: false });
  c.ws.send('mented ', { fin: false });
  c.ws.send('', { fin: false });
  c.ws.send('κόσμε', { fin: true });
  ev = await c.next('message', 'fragmented text echo');
  check(!ev.isBinary && ev.data.toString() === 'fragmented κόσμε', `fragmented text echo: got ${JSON.stringify(ev.data.toString())}`);
  const parts = [Buffer.from([0, 1]), Buffer.alloc(0), Buffer.alloc(2000, 0xfe)];
  parts.forEach((p, i) => c.ws.send(p, { binary: true, fin: i === parts.length - 1 }));
  ev = await c.next('message', 'fragmented binary echo');
  check(ev.isBinary && Buffer.concat(parts).equals(ev.data), `fragmented binary echo: got ${ev.data.length} bytes`);

  // Ping: the pong must carry the ping's payload (RFC 6455 §5.5.3).
  const payload = Buffer.from('\x00ping \xff\x80 payload', 'latin1');
  c.ws.ping(payload);
  ev = await c.next('pong', 'pong');
  check(payload.equals(ev.data), `pong payload ${ev.data.toString('hex')}, want ${payload.toString('hex')}`);

  // Close with 1000: the server must answer with 1000.
  c.ws.close(1000, 'done');
  ev = await c.next('close', 'the close answer');
  check(ev.code === 1000, `close: server answered ${ev.code} ${JSON.stringify(ev.reason)}, want 1000`);
}

async function tooBig(url) {
  // One byte over the default 1 MiB limit: the server closes with 1009.
  const c = await Client.open(url);
  c.ws.send(Buffer.alloc(MIB + 1));
  const ev = await c.next('close', '1 MiB + 1 byte');
  check(ev.code === 1009, `1 MiB + 1 byte: closed with ${ev.code}, want 1009`);
}

const url = process.argv[2];
if (!url) {
  console.error('usage: node echo_client.mjs ws://HOST:PORT/ws');
  process.exit(2);
}
const deadline = setTimeout(() => {
  console.error(`${NAME}: FAIL: did not finish in 60 s`);
  process.exit(1);
}, 60000);
try {
  await echo(url);
  await tooBig(url);
  clearTimeout(deadline);
  console.log(`${NAME}: ok`);
} catch (e) {
  console.error(`${NAME}: FAIL: ${e instanceof Failure ? e.message : e.stack}`);
  process.exit(1);
}
