'use strict';
// 6. release: a released pipeline takes its children with it; later use -> 40101
//    "... not found" (PROTOCOL.md §4.7).

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

function assertNotFound(err, what) {
  assert.ok(err, `${what}: expected an error, the call succeeded`);
  assert.equal(err.code, 40101, `${what}: code ${err.code} message ${JSON.stringify(err.message)}`);
  assert.ok(String(err.message).includes(' not found'), `${what}: message ${JSON.stringify(err.message)} should contain " not found"`);
  assert.equal(err.data && err.data.type, 'MEDIA_OBJECT_NOT_FOUND', `${what}: data ${JSON.stringify(err.data)}`);
}

h.wireTest('releasing a pipeline makes its children answer 40101', async () => {
  const p = await fx.client.create('MediaPipeline');
  const a = await p.create('PassThrough');
  const b = await p.create('PassThrough');
  await h.ok(a, 'connect', b);
  const released = [];
  a.once('release', () => released.push('a'));

  const { err } = await h.cb(p, 'release');
  assert.equal(err, null, `release: ${JSON.stringify(err)}`);
  assert.deepEqual(released, ['a'], 'the client also forgets cached children');

  assertNotFound((await h.cb(a, 'getName')).err, 'a.getName() after pipeline release');
  assertNotFound((await h.cb(b, 'addTag', 'k', 'v')).err, 'b.addTag() after pipeline release');
  assertNotFound((await h.cb(p, 'getName')).err, 'pipeline.getName() after release');

  const sm = await fx.client.getServerManager();
  const pipelines = await h.ok(sm, 'getPipelines');
  assert.ok(!pipelines.map((x) => x.id).includes(p.id), 'released pipeline not listed by getPipelines');
});

h.wireTest('releasing an element keeps the pipeline and its other elements', async () => {
  const p = await fx.client.create('MediaPipeline');
  try {
    const a = await p.create('PassThrough');
    const b = await p.create('PassThrough');
    const disc = h.collect(b, 'ElementDisconnected');
    await h.ok(b, 'connect', a);
    await h.ok(a, 'release');
    assertNotFound((await h.cb(a, 'getName')).err, 'released element');
    assert.equal(await h.ok(b, 'getName'), b.id);
    const children = await h.ok(p, 'getChildren');
    assert.deepEqual(children.map((c) => c.id), [b.id]);
    // Releasing an element disconnects it first (CONFIG.md §6.1).
    assert.deepEqual(await h.ok(b, 'getSinkConnections'), []);
    await h.waitFor(() => disc.length >= 3, 5000, `ElementDisconnected on b for its connections to a (got ${disc.length})`);
  } finally {
    await h.cb(p, 'release');
  }
});

h.wireTest('release is idempotent: releasing again / an unknown id succeeds (raw)', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const p = await rpc.call('create', { type: 'MediaPipeline', properties: {} });
    const sessionId = p.sessionId;
    const e = await rpc.call('create', { type: 'PassThrough', constructorParams: { mediaPipeline: p.value }, properties: {}, sessionId });
    await rpc.call('release', { object: p.value, sessionId });
    await rpc.call('release', { object: p.value, sessionId });
    await rpc.call('release', { object: 'no-such-object_kurento.MediaPipeline', sessionId });

    for (const id of [p.value, e.value]) {
      const err = await rpc.callError('describe', { object: id, sessionId });
      assert.equal(err.code, 40101, `describe of released ${id}: ${err.reply}`);
      assert.equal(err.data && err.data.type, 'MEDIA_OBJECT_NOT_FOUND', err.reply);
      assert.ok(err.message.includes(' not found'), err.reply);
      const err2 = await rpc.callError('invoke', { object: id, operation: 'getName', sessionId });
      assert.equal(err2.code, 40101, `invoke on released ${id}: ${err2.reply}`);
      assert.ok(err2.message.includes(' not found'), err2.reply);
    }
    // Creating inside a released pipeline -> 40101 as well.
    const err3 = await rpc.callError('create', { type: 'PassThrough', constructorParams: { mediaPipeline: p.value }, properties: {}, sessionId });
    assert.equal(err3.code, 40101, `create in a released pipeline: ${err3.reply}`);
  } finally {
    rpc.close();
  }
});

h.wireTest('a pipeline released by another client is gone for this client too', async () => {
  const p = await fx.client.create('MediaPipeline');
  const a = await p.create('PassThrough');
  const { client: other } = await h.connectClient(fx.srv.uri);
  try {
    const p2 = await h.ok(other, 'getMediaobjectById', p.id);
    await h.ok(p2, 'release');
  } finally {
    h.closeClient(other);
  }
  assertNotFound((await h.cb(a, 'getName')).err, 'element of a pipeline released by another session');
});
