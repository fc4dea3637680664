'use strict';
// 9. Event subscriptions on the wire (raw WebSocket): one notification per
//    (session, object, event type) however many subscriptions (PROTOCOL.md §4.6),
//    notification shape (§5), unsubscribe, errors.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer({ client: false });

async function setup(rpc) {
  const p = await rpc.call('create', { type: 'MediaPipeline', properties: {} });
  const sessionId = p.sessionId;
  const mk = async () => (await rpc.call('create', {
    type: 'PassThrough', constructorParams: { mediaPipeline: p.value }, properties: {}, sessionId,
  })).value;
  return { sessionId, pipe: p.value, a: await mk(), b: await mk() };
}

h.wireTest('subscribing twice to the same event yields two ids but one notification per event', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const { sessionId, pipe, a, b } = await setup(rpc);
    const s1 = await rpc.call('subscribe', { object: a, type: 'ElementConnected', sessionId });
    const s2 = await rpc.call('subscribe', { object: a, type: 'ElementConnected', sessionId });
    assert.match(String(s1.value), h.UUID_RE, `subscription id: ${JSON.stringify(s1)}`);
    assert.match(String(s2.value), h.UUID_RE, `subscription id: ${JSON.stringify(s2)}`);
    assert.notEqual(s1.value, s2.value, 'each subscribe returns a new id');

    await rpc.call('invoke', { object: a, operation: 'connect', operationParams: { sink: b, mediaType: 'VIDEO' }, sessionId });
    await h.waitFor(() => rpc.events('ElementConnected').length >= 1, 5000, 'ElementConnected notification');
    await h.sleep(500);
    const evs = rpc.events('ElementConnected');
    assert.equal(evs.length, 1, `exactly one notification for one event despite two subscriptions:\n${rpc.transcript()}`);

    // Shape (PROTOCOL.md §5).
    const n = evs[0];
    assert.equal(n.jsonrpc, '2.0');
    assert.equal(n.method, 'onEvent');
    assert.ok(!('id' in n), 'notifications have no id');
    const v = n.params.value;
    assert.equal(v.object, a);
    assert.equal(v.type, 'ElementConnected');
    assert.deepEqual(Object.keys(v.data).sort(),
      ['mediaType', 'sink', 'sinkMediaDescription', 'source', 'sourceMediaDescription', 'tags', 'timestampMillis', 'type'],
      `data has all fields of ElementConnected and its ancestors: ${JSON.stringify(v.data)}`);
    assert.equal(v.data.source, a);
    assert.equal(v.data.sink, b);
    assert.equal(v.data.mediaType, 'VIDEO');
    assert.equal(v.data.type, 'ElementConnected');
    assert.equal(typeof v.data.timestampMillis, 'string');
    assert.deepEqual(v.data.tags, []);

    // Removing one of the two subscriptions keeps the notifications flowing.
    await rpc.call('unsubscribe', { object: a, subscription: s1.value, sessionId });
    await rpc.call('invoke', { object: a, operation: 'connect', operationParams: { sink: b, mediaType: 'AUDIO' }, sessionId });
    await h.waitFor(() => rpc.events('ElementConnected').length >= 2, 5000, 'ElementConnected after removing one of two subscriptions');
    await h.sleep(500);
    assert.equal(rpc.events('ElementConnected').length, 2, `still one notification per event:\n${rpc.transcript()}`);
    assert.equal(rpc.events('ElementConnected')[1].params.value.data.mediaType, 'AUDIO');

    // Removing the last one stops them.
    await rpc.call('unsubscribe', { object: a, subscription: s2.value, sessionId });
    await rpc.call('invoke', { object: a, operation: 'connect', operationParams: { sink: b, mediaType: 'DATA' }, sessionId });
    await h.sleep(700);
    assert.equal(rpc.events('ElementConnected').length, 2, `no notification after the last unsubscribe:\n${rpc.transcript()}`);

    await rpc.call('release', { object: pipe, sessionId });
  } finally {
    rpc.close();
  }
});

h.wireTest('events are delivered per session: two sessions subscribed to the same object each get one', async () => {
  const r1 = await h.RawRpc.open(fx.srv.uri);
  const r2 = await h.RawRpc.open(fx.srv.uri);
  try {
    const { sessionId, pipe, a, b } = await setup(r1);
    const d2 = await r2.call('describe', { object: a });
    assert.notEqual(d2.sessionId, sessionId);
    await r1.call('subscribe', { object: a, type: 'ElementDisconnected', sessionId });
    await r2.call('subscribe', { object: a, type: 'ElementDisconnected', sessionId: d2.sessionId });
    await r2.call('subscribe', { object: a, type: 'ElementDisconnected', sessionId: d2.sessionId });
    await r1.call('invoke', { object: a, operation: 'disconnect', operationParams: { sink: b, mediaType: 'VIDEO' }, sessionId });
    await h.waitFor(() => r1.events('ElementDisconnected').length >= 1 && r2.events('ElementDisconnected').length >= 1, 5000,
      'ElementDisconnected on both connections');
    await h.sleep(500);
    assert.equal(r1.events('ElementDisconnected').length, 1, r1.transcript());
    assert.equal(r2.events('ElementDisconnected').length, 1, r2.transcript());
    await r1.call('release', { object: pipe, sessionId });
  } finally {
    r1.close();
    r2.close();
  }
});

h.wireTest('ServerManager ObjectCreated / ObjectDestroyed notifications', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const d = await rpc.call('describe', { object: 'manager_ServerManager' });
    const sessionId = d.sessionId;
    await rpc.call('subscribe', { object: 'manager_ServerManager', type: 'ObjectCreated', sessionId });
    await rpc.call('subscribe', { object: 'manager_ServerManager', type: 'ObjectDestroyed', sessionId });
    const p = await rpc.call('create', { type: 'MediaPipeline', properties: {}, sessionId });
    await h.waitFor(() => rpc.events('ObjectCreated').some((n) => n.params.value.data.object === p.value), 5000,
      `ObjectCreated for ${p.value}`);
    const created = rpc.events('ObjectCreated').find((n) => n.params.value.data.object === p.value).params.value;
    assert.equal(created.object, 'manager_ServerManager');
    assert.equal(created.data.source, 'manager_ServerManager');
    assert.ok(!('type' in created.data), `ObjectCreated data has no "type" (RaiseBase only, PROTOCOL.md §5): ${JSON.stringify(created)}`);
    assert.equal(typeof created.data.timestampMillis, 'string');
    await rpc.call('release', { object: p.value, sessionId });
    await h.waitFor(() => rpc.events('ObjectDestroyed').some((n) => n.params.value.data.objectId === p.value), 5000,
      `ObjectDestroyed with data.objectId = ${p.value}`);
  } finally {
    rpc.close();
  }
});

h.wireTest('subscribe errors: unsupported event -> 40106, unknown object -> 40101; unsubscribe unknown succeeds', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const { sessionId, pipe, a } = await setup(rpc);
    const e1 = await rpc.callError('subscribe', { object: a, type: 'EndOfStream', sessionId });
    assert.equal(e1.code, 40106, `PassThrough has no EndOfStream event: ${e1.reply}`);
    const e2 = await rpc.callError('subscribe', { object: `${pipe}/00000000-0000-4000-8000-000000000000_kurento.PassThrough`, type: 'ElementConnected', sessionId });
    assert.equal(e2.code, 40101, e2.reply);
    await rpc.call('unsubscribe', { object: a, subscription: '00000000-0000-4000-8000-000000000000', sessionId });
    // Events of ancestors are accepted (Error is declared by MediaObject).
    await rpc.call('subscribe', { object: a, type: 'Error', sessionId });
    await rpc.call('release', { object: pipe, sessionId });
  } finally {
    rpc.close();
  }
});
