'use strict';
// 0. WebSocket transport as kurento-client uses it (PROTOCOL.md §1).
//    kurento-client 7.3.0 writes through websocket-stream 1.5 / ws 0.7.2, which turns every
//    JSON-RPC message into a Buffer and sends it as a *binary* frame; KMS answers it
//    (websocketpp hands over the payload whatever the opcode). A server that ignores
//    binary frames leaves every kurento-client call unanswered ("Request has timed out").

const assert = require('node:assert/strict');
const net = require('node:net');
const WebSocket = require('ws');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer({ client: false });

function exchange(uri, frames, wantReplies, ms = 3000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(uri);
    const replies = [];
    let closeInfo = null;
    const t = setTimeout(() => { ws.terminate(); resolve({ replies, closeInfo }); }, ms);
    ws.on('open', () => { for (const [data, binary] of frames) ws.send(data, { binary }); });
    ws.on('message', (data) => {
      // ws 7: text frames arrive as strings, binary frames as Buffers.
      replies.push({ text: data.toString(), isBinary: typeof data !== 'string' });
      if (replies.length >= wantReplies) { clearTimeout(t); ws.close(); resolve({ replies, closeInfo }); }
    });
    ws.on('close', (code, reason) => { closeInfo = { code, reason: reason.toString() }; });
    ws.on('error', reject);
  });
}

h.wireTest('requests in binary frames (as kurento-client 7.3.0 sends them) are answered', async () => {
  const ping = JSON.stringify({ jsonrpc: '2.0', method: 'ping', params: { interval: 5000 }, id: 0 });
  const describe = JSON.stringify({ jsonrpc: '2.0', method: 'describe', params: { object: 'manager_ServerManager' }, id: 1 });
  const { replies } = await exchange(fx.srv.uri, [[Buffer.from(ping), true], [Buffer.from(describe), true]], 2);
  assert.equal(replies.length, 2,
    `sent ping (id 0) and describe (id 1) as binary frames; got ${replies.length} replies: ${JSON.stringify(replies)}`);
  assert.deepEqual(JSON.parse(replies[0].text), { id: 0, jsonrpc: '2.0', result: { value: 'pong' } });
  const d = JSON.parse(replies[1].text);
  assert.equal(d.id, 1);
  assert.equal(d.result && d.result.type, 'ServerManager', replies[1].text);
});

h.wireTest('requests in text frames are answered in text frames', async () => {
  const ping = JSON.stringify({ jsonrpc: '2.0', method: 'ping', id: 7 });
  const { replies } = await exchange(fx.srv.uri, [[ping, false]], 1);
  assert.equal(replies.length, 1, 'one reply');
  assert.equal(replies[0].isBinary, false, 'replies are text frames');
  assert.deepEqual(JSON.parse(replies[0].text), { id: 7, jsonrpc: '2.0', result: { value: 'pong' } });
});

h.wireTest('a query string on the path is accepted; a wrong path is closed with 1002 "Invalid path"', async () => {
  const ping = JSON.stringify({ jsonrpc: '2.0', method: 'ping', id: 1 });
  const withQuery = await exchange(`${fx.srv.uri}?access_token=abc`, [[ping, false]], 1);
  assert.equal(withQuery.replies.length, 1, `kurento-client's ?access_token=... must not break the connection: ${JSON.stringify(withQuery)}`);

  const wrong = await exchange(fx.srv.uri.replace(/\/kurento$/, '/other'), [[ping, false]], 1, 2000);
  assert.equal(wrong.replies.length, 0, `no reply on a wrong path: ${JSON.stringify(wrong)}`);
  assert.deepEqual(wrong.closeInfo, { code: 1002, reason: 'Invalid path' });
});

h.wireTest('the server closes the TCP connection when the client ends it without a close frame', async () => {
  // A client that goes away with a FIN (ws 0.7.2 terminate() inside kurento-client does
  // exactly that and then waits up to 30 s for the server's FIN before reconnecting) must
  // not leave the server side in CLOSE-WAIT.
  const result = await new Promise((resolve, reject) => {
    const s = net.connect(fx.srv.port, '127.0.0.1', () => {
      s.write('GET /kurento HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    });
    let head = '';
    let finAt = 0;
    const t = setTimeout(() => { s.destroy(); resolve({ closedAfterMs: null, head }); }, 3000);
    s.on('data', (d) => {
      head += d.toString('latin1');
      if (!finAt && head.includes('\r\n\r\n')) { finAt = Date.now(); s.end(); }
    });
    s.on('end', () => { clearTimeout(t); resolve({ closedAfterMs: Date.now() - finAt, head }); s.destroy(); });
    s.on('error', reject);
  });
  assert.match(result.head, /^HTTP\/1\.1 101 /, `handshake: ${result.head}`);
  assert.notEqual(result.closedAfterMs, null,
    'after the WebSocket handshake the client sent FIN (no close frame); the server did not close its side within 3 s ' +
    '(connection left in CLOSE-WAIT)');
});
