// A node ws client for TestDeflatePeers: it connects with
// perMessageDeflate, sends messages of every kind and checks each echo.
// Exits non-zero on the first failure.
//
// Usage: WS_MODULE=/abs/path/to/node_modules/ws node peer_client.cjs ws://127.0.0.1:PORT/
'use strict';
const WebSocket = require(process.env.WS_MODULE);

function text(n, seed) {
  const words = ['message', 'gateway', 'window', 'the', 'of', 'compression', 'subscriber', 'event', 'json', 'a'];
  let s = '';
  let x = seed;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += words[x % words.length] + ' ';
  }
  return s.slice(0, n);
}

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}

const ws = new WebSocket(process.argv[2], { perMessageDeflate: true, maxPayload: 4 << 20 });
const timer = setTimeout(() => fail('timeout'), 30000);
ws.on('error', (e) => fail(e.message));

const msgs = [
  JSON.stringify({ type: 'chat', text: text(1000, 1) }),
  JSON.stringify({ type: 'chat', text: text(2000, 2) }),
  text(64 << 10, 3),
  text(1 << 20, 4),
  Buffer.from(Array.from({ length: 100000 }, (_, i) => (i * 7919) & 0xff)),
  'h\u00e9llo \u20ac \u{1F600}'.repeat(100),
];
const fragments = [text(3000, 5), text(5, 6), text(70000, 7)];

ws.on('open', async () => {
  if (!('permessage-deflate' in ws._extensions)) fail('permessage-deflate not negotiated: ' + ws.extensions);
  console.log('agreed ' + ws.extensions);
  const next = () => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve([data, isBinary])));
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i];
    const reply = next();
    ws.send(m);
    if (i === 2) ws.ping('between');
    const [data, isBinary] = await reply;
    const want = Buffer.isBuffer(m) ? m : Buffer.from(m);
    if (isBinary !== Buffer.isBuffer(m) || !want.equals(data)) fail(`echo of message ${i} differs (${data.length} bytes of ${want.length})`);
  }
  // A fragmented message: RSV1 on the first frame only.
  const reply = next();
  fragments.forEach((f, i) => ws.send(f, { fin: i === fragments.length - 1 }));
  const [data] = await reply;
  if (data.toString() !== fragments.join('')) fail('echo of the fragmented message differs');
  ws.close(1000);
});
ws.on('close', (code) => {
  clearTimeout(timer);
  if (code !== 1000) fail('closed with ' + code);
  console.log('OK');
});
