'use strict';
// 3. MediaObject properties: name, tags, sendTagsInEvents, creationTime, parent,
//    mediaPipeline, children.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer({ pipeline: true });

const tagPairs = (tags) => tags.map((t) => ({ key: t.key, value: t.value }))
  .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));

h.wireTest('getName defaults to the id; setName/getName round trip', async () => {
  const el = await fx.pipeline.create('PassThrough');
  assert.equal(await h.ok(fx.pipeline, 'getName'), fx.pipeline.id);
  assert.equal(await h.ok(el, 'getName'), el.id);
  await h.ok(el, 'setName', 'my passthrough ✓');
  assert.equal(await h.ok(el, 'getName'), 'my passthrough ✓');
  await h.ok(fx.pipeline, 'setName', 'room-1');
  assert.equal(await h.ok(fx.pipeline, 'getName'), 'room-1');
  assert.equal(await h.ok(el, 'getName'), 'my passthrough ✓', 'names are per object');
});

h.wireTest('tags: addTag/getTag/getTags/removeTag; missing key -> 40110', async () => {
  const el = await fx.pipeline.create('PassThrough');
  assert.deepEqual(await h.ok(el, 'getTags'), [], 'no tags initially');

  await h.ok(el, 'addTag', 'room', 'r1');
  await h.ok(el, 'addTag', 'user', 'alice');
  assert.equal(await h.ok(el, 'getTag', 'room'), 'r1');
  assert.equal(await h.ok(el, 'getTag', 'user'), 'alice');

  const tags = await h.ok(el, 'getTags');
  assert.ok(Array.isArray(tags), `getTags should be an array: ${JSON.stringify(tags)}`);
  assert.deepEqual(tagPairs(tags), [{ key: 'room', value: 'r1' }, { key: 'user', value: 'alice' }]);
  for (const t of tags) {
    assert.equal(t.__type__, 'Tag', `Tag values carry __type__ (PROTOCOL.md §6): ${JSON.stringify(t)}`);
    assert.equal(t.__module__, 'kurento', `Tag values carry __module__ (PROTOCOL.md §6): ${JSON.stringify(t)}`);
  }

  await h.ok(el, 'addTag', 'room', 'r2'); // overwrites
  assert.equal(await h.ok(el, 'getTag', 'room'), 'r2');
  assert.equal((await h.ok(el, 'getTags')).length, 2, 'addTag of an existing key overwrites, no duplicate');

  await h.ok(el, 'removeTag', 'room');
  assert.deepEqual(tagPairs(await h.ok(el, 'getTags')), [{ key: 'user', value: 'alice' }]);
  await h.ok(el, 'removeTag', 'never-set'); // silent when missing

  const { err, value } = await h.cb(el, 'getTag', 'room');
  assert.ok(err, `getTag of a removed key must fail, got value ${JSON.stringify(value)}`);
  assert.equal(err.code, 40110, `getTag missing key: code ${err.code} message ${err.message}`);
  assert.equal(err.data && err.data.type, 'MEDIA_OBJECT_TAG_KEY_NOT_FOUND');

  // Tags are per object.
  const { err: err2 } = await h.cb(fx.pipeline, 'getTag', 'user');
  assert.equal(err2 && err2.code, 40110);
});

h.wireTest('sendTagsInEvents: default false, settable, tags then appear in event data', async () => {
  const a = await fx.pipeline.create('PassThrough');
  const b = await fx.pipeline.create('PassThrough');
  assert.equal(await h.ok(a, 'getSendTagsInEvents'), false);
  await h.ok(a, 'addTag', 'who', 'a');

  const events = h.collect(a, 'ElementConnected');
  await h.ok(a, 'connect', b, 'VIDEO');
  await h.waitFor(() => events.length >= 1, 5000, 'ElementConnected (VIDEO)');
  assert.deepEqual(events[0].tags, [], 'tags empty in events while sendTagsInEvents=false');

  await h.ok(a, 'setSendTagsInEvents', true);
  assert.equal(await h.ok(a, 'getSendTagsInEvents'), true);
  await h.ok(a, 'connect', b, 'AUDIO');
  await h.waitFor(() => events.length >= 2, 5000, 'ElementConnected (AUDIO)');
  assert.deepEqual(tagPairs(events[1].tags), [{ key: 'who', value: 'a' }],
    `event tags with sendTagsInEvents=true: ${JSON.stringify(events[1])}`);
});

h.wireTest('getCreationTime is the creation time in epoch seconds', async () => {
  const before = Math.floor(Date.now() / 1000);
  const el = await fx.pipeline.create('PassThrough');
  const after = Math.ceil(Date.now() / 1000);
  const t = await h.ok(el, 'getCreationTime');
  assert.ok(Number.isInteger(t), `getCreationTime should be an integer, got ${JSON.stringify(t)}`);
  assert.ok(t >= before - 2 && t <= after + 2, `getCreationTime ${t} not within [${before}, ${after}] (epoch seconds)`);
  const tp = await h.ok(fx.pipeline, 'getCreationTime');
  assert.ok(Number.isInteger(tp) && tp <= t + 1 && tp > before - 600, `pipeline creation time ${tp}`);
});

h.wireTest('getParent / getMediaPipeline / getChildren navigate the tree', async () => {
  const p = await fx.client.create('MediaPipeline');
  try {
    const a = await p.create('PassThrough');
    const b = await p.create('PassThrough');

    const parent = await h.ok(a, 'getParent');
    assert.equal(parent && parent.id, p.id, 'getParent of an element is its pipeline');
    const mp = await h.ok(a, 'getMediaPipeline');
    assert.equal(mp && mp.id, p.id, 'getMediaPipeline of an element is its pipeline');
    const mpSelf = await h.ok(p, 'getMediaPipeline');
    assert.equal(mpSelf && mpSelf.id, p.id, 'getMediaPipeline of a pipeline is itself');

    const children = await h.ok(p, 'getChildren');
    assert.deepEqual(children.map((c) => c.id).sort(), [a.id, b.id].sort());
    const none = await h.ok(a, 'getChildren');
    assert.deepEqual(none, [], 'an element has no children');

    // The raw value of getParent of a pipeline is null (PROTOCOL.md §4.5).
    const rpc = await h.RawRpc.open(fx.srv.uri);
    try {
      const r = await rpc.call('invoke', { object: p.id, operation: 'getParent' });
      assert.equal(r.value, null, `getParent of a pipeline: ${JSON.stringify(r)}`);
      const r2 = await rpc.call('invoke', { object: a.id, operation: 'getParent', sessionId: r.sessionId });
      assert.equal(r2.value, p.id, 'object-typed returns are ids');
      const r3 = await rpc.call('invoke', { object: p.id, operation: 'getChildren', sessionId: r.sessionId });
      assert.deepEqual([...r3.value].sort(), [a.id, b.id].sort(), 'arrays of objects are arrays of ids');
    } finally {
      rpc.close();
    }
  } finally {
    await h.cb(p, 'release');
  }
});
