'use strict';
// 13. Access control: kurento-client with a valid token (access_token in the URL) works end to end; a
//     missing, expired or wrongly signed token is refused at the upgrade with HTTP 401; a read token
//     cannot create.

const { before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startServer } = require('../lib/kms');
const h = require('../lib/helpers');

// A cluster router applies no tokens (README): this file tests a single server.
if (process.env.KMS_CLUSTER === '1') return;

const secret = 'a node test secret, long enough';
let srv;

// jwt signs HS256 claims, as any JWT library would.
function jwt(claims, key = secret) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${crypto.createHmac('sha256', key).update(body).digest('base64url')}`;
}
const now = () => Math.floor(Date.now() / 1000);

// upgradeStatus is the HTTP status of a WebSocket handshake to the server.
function upgradeStatus(query) {
  const u = new URL(srv.uri + query);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(101); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kms-node-auth-')), 'secret');
  fs.writeFileSync(file, secret + '\n');
  srv = await startServer({
    env: { KMS_AUTH_SECRET_FILE: file },
    probeQuery: `?access_token=${jwt({ exp: now() + 300, scope: 'read' })}`,
  });
});

after(async () => {
  if (srv) await srv.stop();
});

h.wireTest('a valid token: create, connect, describe, release', async () => {
  const token = jwt({ exp: now() + 300, scope: 'create', tenant: 'node' });
  const { client } = await h.connectClient(`${srv.uri}?access_token=${token}`);
  try {
    const pipeline = await client.create('MediaPipeline');
    const a = await pipeline.create('PassThrough');
    const b = await pipeline.create('PassThrough');
    await a.connect(b);
    assert.equal((await pipeline.getChildren()).length, 2);
    await pipeline.release();
  } finally {
    h.closeClient(client);
  }
});

h.wireTest('missing, expired and wrongly signed tokens: HTTP 401 at the upgrade', async () => {
  assert.equal(await upgradeStatus(''), 401);
  assert.equal(await upgradeStatus(`?access_token=${jwt({ exp: now() - 60 })}`), 401);
  assert.equal(await upgradeStatus(`?access_token=${jwt({ exp: now() + 60 }, 'not the secret at all')}`), 401);
  assert.equal(await upgradeStatus(`?access_token=${jwt({ exp: now() + 60 })}`), 101);
});

h.wireTest('a read token cannot create', async () => {
  const { client } = await h.connectClient(`${srv.uri}?access_token=${jwt({ exp: now() + 300, scope: 'read' })}`);
  try {
    await assert.rejects(client.create('MediaPipeline'), (err) => /Forbidden/.test(err.message));
  } finally {
    h.closeClient(client);
  }
});
