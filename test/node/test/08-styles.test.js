'use strict';
// 8. The same calls in promise style and callback style give the same results.
//    (Promise-style calls of kurento-client 7.3.0 do not reject on server errors, so
//    errors are only checked callback-style.)

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

h.wireTest('create: promise style and callback style', async () => {
  const p1 = await fx.client.create('MediaPipeline');
  fx.pipelines.push(p1);
  const p2 = await h.ok(fx.client, 'create', 'MediaPipeline');
  fx.pipelines.push(p2);
  assert.match(p1.id, h.PIPELINE_ID_RE);
  assert.match(p2.id, h.PIPELINE_ID_RE);

  const e1 = await p1.create('PassThrough');
  const e2 = await h.ok(p1, 'create', 'PassThrough');
  assert.match(e1.id, h.elementIdRe(p1.id, 'PassThrough'));
  assert.match(e2.id, h.elementIdRe(p1.id, 'PassThrough'));
});

h.wireTest('getters and setters: promise style and callback style agree', async () => {
  const p = await fx.client.create('MediaPipeline');
  fx.pipelines.push(p);
  const e = await p.create('PassThrough');

  assert.equal(await e.getName(), e.id);
  assert.equal(await h.ok(e, 'getName'), e.id);

  await e.setName('promise-name');
  assert.equal(await h.ok(e, 'getName'), 'promise-name');
  await h.ok(e, 'setName', 'callback-name');
  assert.equal(await e.getName(), 'callback-name');

  await e.addTag('p', '1');
  await h.ok(e, 'addTag', 'c', '2');
  assert.equal(await e.getTag('c'), '2');
  assert.equal(await h.ok(e, 'getTag', 'p'), '1');
  const tagsP = (await e.getTags()).map((t) => `${t.key}=${t.value}`).sort();
  const tagsC = (await h.ok(e, 'getTags')).map((t) => `${t.key}=${t.value}`).sort();
  assert.deepEqual(tagsP, ['c=2', 'p=1']);
  assert.deepEqual(tagsC, tagsP);

  const tp = await e.getCreationTime();
  const tc = await h.ok(e, 'getCreationTime');
  assert.equal(tp, tc);
  assert.ok(Number.isInteger(tp));

  const parentP = await e.getParent();
  const parentC = await h.ok(e, 'getParent');
  assert.equal(parentP.id, p.id);
  assert.equal(parentC.id, p.id);

  const childrenP = await p.getChildren();
  const childrenC = await h.ok(p, 'getChildren');
  assert.deepEqual(childrenP.map((c) => c.id), [e.id]);
  assert.deepEqual(childrenC.map((c) => c.id), [e.id]);
});

h.wireTest('ServerManager calls: promise style and callback style agree', async () => {
  const smP = await fx.client.getServerManager();
  const smC = await h.ok(fx.client, 'getServerManager');
  assert.equal(smP.id, 'manager_ServerManager');
  assert.equal(smC.id, smP.id);
  const infoP = await smP.getInfo();
  const infoC = await h.ok(smP, 'getInfo');
  assert.deepEqual(infoP, infoC);
  assert.equal(await smP.getCpuCount(), await h.ok(smP, 'getCpuCount'));
  const sessionsP = await smP.getSessions();
  assert.ok(sessionsP.includes(fx.client.sessionId), `getSessions (promise) ${JSON.stringify(sessionsP)}`);
});

h.wireTest('connect / disconnect / release: promise style and callback style', async () => {
  const p = await fx.client.create('MediaPipeline');
  const a = await p.create('PassThrough');
  const b = await p.create('PassThrough');
  await a.connect(b, 'AUDIO');
  await h.ok(a, 'connect', b, 'VIDEO');
  const types = (await a.getSinkConnections()).map((c) => c.type).sort();
  assert.deepEqual(types, ['AUDIO', 'VIDEO']);
  await a.disconnect(b, 'AUDIO');
  await h.ok(a, 'disconnect', b, 'VIDEO');
  assert.deepEqual(await a.getSinkConnections(), []);

  await b.release();
  const { err } = await h.cb(b, 'getName');
  assert.equal(err && err.code, 40101, 'b released (promise style)');
  await h.ok(p, 'release');
  const { err: err2 } = await h.cb(a, 'getName');
  assert.equal(err2 && err2.code, 40101, 'pipeline released (callback style) with its element');
});

h.wireTest('errors reach callback-style callers with code, message and data', async () => {
  const p = await fx.client.create('MediaPipeline');
  fx.pipelines.push(p);
  const e = await p.create('PassThrough');
  const { err, value } = await h.cb(e, 'getTag', 'absent');
  assert.ok(err, `expected an error, got ${JSON.stringify(value)}`);
  assert.equal(err.code, 40110);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0);
  assert.deepEqual(err.data, { type: 'MEDIA_OBJECT_TAG_KEY_NOT_FOUND' });
});
