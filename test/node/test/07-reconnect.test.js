'use strict';
// 7. Sessions survive a dropped WebSocket: kurento-client reconnects by itself and sends
//    `connect {sessionId}`; a raw connection can re-attach to an old session with
//    `connect` (PROTOCOL.md §3, §4.2).

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer({ client: false });

h.wireTest('kurento-client auto-reconnects with connect {sessionId}; objects and subscriptions survive', async () => {
  const { client } = await h.connectClient(fx.srv.uri);
  let p;
  try {
    p = await client.create('MediaPipeline');
    const a = await p.create('PassThrough');
    const b = await p.create('PassThrough');
    await h.ok(a, 'setName', 'before-drop');
    const events = h.collect(a, 'ElementConnected');
    await h.ok(a, 'getName'); // subscription request answered before the drop
    const sessionId = client.sessionId;
    assert.match(sessionId, h.UUID_RE);

    const reconnected = new Promise((resolve) => client.once('reconnected', resolve));
    const mark = h.wire.length;
    // Drop the TCP connection under the client (as a network failure would): destroy the
    // net.Socket of its ws 0.7.2 WebSocket, so the client sees 'close' at once and reconnects.
    client._re._connection.socket._socket.destroy();
    const sameSession = await h.withTimeout(reconnected, 15000, "client 'reconnected' event");

    const connectReq = h.wire.slice(mark).find((l) => l.includes(' kc→ ') && l.includes('"method":"connect"'));
    assert.ok(connectReq, 'the client sent connect after reconnecting');
    assert.ok(connectReq.includes(sessionId), `connect carries the old sessionId: ${connectReq}`);
    assert.equal(sameSession, true, "reconnected(true): the server accepted the old session (reconnected(false) means 40007)");
    assert.equal(client.sessionId, sessionId, 'sessionId unchanged');

    assert.equal(await h.ok(a, 'getName'), 'before-drop', 'objects created before the drop are usable');
    const children = await h.ok(p, 'getChildren');
    assert.deepEqual(children.map((c) => c.id).sort(), [a.id, b.id].sort());

    // Subscriptions belong to the session: events arrive on the new socket without re-subscribing.
    await h.ok(a, 'connect', b, 'VIDEO');
    await h.waitFor(() => events.length >= 1, 5000, 'ElementConnected on the new connection (subscription made before the drop)');
    assert.equal(events[0].sink, b.id);
    await h.sleep(300);
    assert.equal(events.length, 1, `one event, not duplicated: ${JSON.stringify(events)}`);

    // New objects after the reconnection land in the same session.
    const c = await p.create('PassThrough');
    assert.match(c.id, h.elementIdRe(p.id, 'PassThrough'));
    const sm = await client.getServerManager();
    assert.ok((await h.ok(sm, 'getSessions')).includes(sessionId));
  } finally {
    if (p) await h.cb(p, 'release');
    h.closeClient(client);
  }
});

h.wireTest('raw: connect {sessionId} from a new socket returns the same session and can describe old objects', async () => {
  const first = await h.RawRpc.open(fx.srv.uri);
  const created = await first.call('create', { type: 'MediaPipeline', properties: {} });
  const sessionId = created.sessionId;
  const pipelineId = created.value;
  const el = await first.call('create', { type: 'PassThrough', constructorParams: { mediaPipeline: pipelineId }, properties: {}, sessionId });
  assert.match(sessionId, h.UUID_RE);
  first.terminate();
  await h.sleep(200);

  const second = await h.RawRpc.open(fx.srv.uri);
  try {
    const c = await second.call('connect', { sessionId });
    assert.equal(c.sessionId, sessionId, `connect must return the old sessionId: ${JSON.stringify(c)}`);
    assert.match(String(c.serverId), h.UUID_RE, `connect result carries serverId (uuid): ${JSON.stringify(c)}`);

    // No sessionId in params: the connection's session is injected (PROTOCOL.md §3).
    const d = await second.call('describe', { object: pipelineId });
    assert.equal(d.sessionId, sessionId, 'requests without sessionId use the session bound by connect');
    assert.equal(d.type, 'MediaPipeline');
    assert.equal(d.qualifiedType, 'kurento.MediaPipeline');
    assert.deepEqual(d.hierarchy, ['kurento.MediaObject']);
    const n = await second.call('invoke', { object: el.value, operation: 'getName', sessionId });
    assert.equal(n.value, el.value);

    // serverId is fixed for the process.
    const third = await h.RawRpc.open(fx.srv.uri);
    try {
      const c3 = await third.call('connect');
      assert.notEqual(c3.sessionId, sessionId, 'connect without params on a fresh socket gives a new session');
      assert.match(c3.sessionId, h.UUID_RE);
      assert.equal(c3.serverId, c.serverId, 'serverId is the same for every connect of this server process');
    } finally {
      third.close();
    }
    await second.call('release', { object: pipelineId, sessionId });
  } finally {
    second.close();
  }
});

h.wireTest('raw: connect to a live kurento-client session from another socket', async () => {
  const { client } = await h.connectClient(fx.srv.uri);
  try {
    const p = await client.create('MediaPipeline');
    const rpc = await h.RawRpc.open(fx.srv.uri);
    try {
      const c = await rpc.call('connect', { sessionId: client.sessionId });
      assert.equal(c.sessionId, client.sessionId);
      const d = await rpc.call('describe', { object: p.id, sessionId: client.sessionId });
      assert.equal(d.type, 'MediaPipeline');
      await rpc.call('release', { object: p.id, sessionId: client.sessionId });
    } finally {
      rpc.close();
    }
  } finally {
    h.closeClient(client);
  }
});

h.wireTest('raw: connect with an unknown sessionId fails with 40007 INVALID_SESSION', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const err = await rpc.callError('connect', { sessionId: '00000000-0000-4000-8000-000000000000' });
    assert.equal(err.code, 40007, err.reply);
    assert.equal(err.data && err.data.type, 'INVALID_SESSION', err.reply);
    // A failed connect binds nothing: a following connect gets a brand-new session.
    const c = await rpc.call('connect');
    assert.match(c.sessionId, h.UUID_RE);
    assert.notEqual(c.sessionId, '00000000-0000-4000-8000-000000000000');
  } finally {
    rpc.close();
  }
});

h.wireTest('raw: ping answers pong, with sessionId once the connection has a session', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const first = await rpc.request('ping', { interval: 5000 });
    assert.deepEqual(first.result, { value: 'pong' }, `first ping on a fresh connection: ${JSON.stringify(first)}`);
    const d = await rpc.call('describe', { object: 'manager_ServerManager' });
    const second = await rpc.request('ping');
    assert.deepEqual(second.result, { sessionId: d.sessionId, value: 'pong' }, `ping after describe: ${JSON.stringify(second)}`);
  } finally {
    rpc.close();
  }
});
