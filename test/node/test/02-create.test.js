'use strict';
// 2. create MediaPipeline / PassThrough by simple and qualified type names; id shapes
//    of PROTOCOL.md §4.3.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

for (const pipelineType of ['MediaPipeline', 'kurento.MediaPipeline']) {
  for (const elementType of ['PassThrough', 'kurento.PassThrough']) {
    h.wireTest(`create('${pipelineType}') then pipeline.create('${elementType}')`, async () => {
      const pipeline = await fx.client.create(pipelineType);
      fx.pipelines.push(pipeline);
      assert.match(String(pipeline.id), h.PIPELINE_ID_RE,
        'pipeline id must be <uuid>_kurento.MediaPipeline (PROTOCOL.md §4.3)');
      assert.ok(pipeline.id.endsWith('_kurento.MediaPipeline'));

      const element = await pipeline.create(elementType);
      assert.ok(String(element.id).startsWith(`${pipeline.id}/`),
        `element id ${element.id} must start with the pipeline id + "/"`);
      assert.match(element.id, h.elementIdRe(pipeline.id, 'PassThrough'),
        'element id must be <pipelineId>/<uuid>_kurento.PassThrough (PROTOCOL.md §4.3)');

      // The objects are usable: the server knows them.
      assert.equal(await h.ok(pipeline, 'getName'), pipeline.id);
      assert.equal(await h.ok(element, 'getName'), element.id);
      const children = await h.ok(pipeline, 'getChildren');
      assert.deepEqual(children.map((c) => c.id), [element.id]);
    });
  }
}

h.wireTest('ids are unique across creations', async () => {
  const p1 = await fx.client.create('MediaPipeline');
  const p2 = await fx.client.create('MediaPipeline');
  fx.pipelines.push(p1, p2);
  assert.notEqual(p1.id, p2.id);
  const a = await p1.create('PassThrough');
  const b = await p1.create('PassThrough');
  assert.notEqual(a.id, b.id);
});

h.wireTest('a second client can describe objects by id (getMediaobjectById) and gets the right proxy class', async () => {
  const pipeline = await fx.client.create('MediaPipeline');
  fx.pipelines.push(pipeline);
  const element = await pipeline.create('PassThrough');
  const { client: other } = await h.connectClient(fx.srv.uri);
  try {
    const p2 = await h.ok(other, 'getMediaobjectById', pipeline.id);
    const e2 = await h.ok(other, 'getMediaobjectById', element.id);
    assert.equal(p2.id, pipeline.id);
    assert.equal(e2.id, element.id);
    assert.equal(typeof p2.create, 'function', 'describe of a pipeline must yield a MediaPipeline proxy');
    assert.equal(typeof e2.connect, 'function', 'describe of a PassThrough must yield a MediaElement proxy');
    assert.equal(e2.constructor.name, 'PassThrough');
    assert.equal(await h.ok(e2, 'getName'), element.id);
  } finally {
    h.closeClient(other);
  }
});

h.wireTest('raw create and describe wire shapes; unknown type -> 40108', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const d = await rpc.call('describe', { object: 'manager_ServerManager' });
    assert.equal(d.type, 'ServerManager');
    assert.equal(d.qualifiedType, 'kurento.ServerManager');
    assert.deepEqual(d.hierarchy, ['kurento.MediaObject']);
    assert.match(d.sessionId, h.UUID_RE);

    // kurento-client omits constructorParams for MediaPipeline and always sends properties.
    const p = await rpc.call('create', { type: 'MediaPipeline', properties: {}, sessionId: d.sessionId });
    assert.match(p.value, h.PIPELINE_ID_RE);
    assert.equal(p.sessionId, d.sessionId);
    const e = await rpc.call('create', {
      type: 'kurento.PassThrough',
      constructorParams: { mediaPipeline: p.value },
      properties: {},
      sessionId: d.sessionId,
    });
    assert.match(e.value, h.elementIdRe(p.value, 'PassThrough'));
    const de = await rpc.call('describe', { object: e.value, sessionId: d.sessionId });
    assert.equal(de.type, 'PassThrough');
    assert.equal(de.qualifiedType, 'kurento.PassThrough');
    assert.deepEqual(de.hierarchy, ['kurento.MediaElement', 'kurento.MediaObject']);

    const err = await rpc.callError('create', {
      type: 'NoSuchElement',
      constructorParams: { mediaPipeline: p.value },
      properties: {},
      sessionId: d.sessionId,
    });
    assert.equal(err.code, 40108, `unknown factory -> 40108 (PROTOCOL.md §4.3); got ${err.reply}`);
    assert.equal(err.data && err.data.type, 'MEDIA_OBJECT_NOT_AVAILABLE');

    await rpc.call('release', { object: p.value, sessionId: d.sessionId });
  } finally {
    rpc.close();
  }
});
