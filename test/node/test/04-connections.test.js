'use strict';
// 4. connect/disconnect of PassThroughs: ElementConnected/ElementDisconnected events,
//    getSinkConnections/getSourceConnections, one source per sink pad (CONFIG.md §6.1).

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

async function setup(n) {
  const p = await fx.client.create('MediaPipeline');
  fx.pipelines.push(p);
  const els = [];
  for (let i = 0; i < n; i++) els.push(await p.create('PassThrough'));
  return { p, els };
}

const TYPES = ['AUDIO', 'DATA', 'VIDEO'];

function checkEvent(ev, name, source, sink) {
  const s = JSON.stringify(ev);
  assert.equal(ev.type, name, `data.type of ${name}: ${s}`);
  assert.equal(ev.source, source.id, `data.source of ${name}: ${s}`);
  assert.equal(ev.sink, sink.id, `data.sink of ${name}: ${s}`);
  assert.equal(ev.sourceMediaDescription, 'default', `sourceMediaDescription: ${s}`);
  assert.equal(ev.sinkMediaDescription, 'default', `sinkMediaDescription: ${s}`);
  assert.equal(typeof ev.timestampMillis, 'string', `timestampMillis must be a string (PROTOCOL.md §5): ${s}`);
  assert.match(ev.timestampMillis, /^\d{13}$/);
  assert.ok(Math.abs(Number(ev.timestampMillis) - Date.now()) < 60000, `timestampMillis is ms since epoch: ${s}`);
  assert.deepEqual(ev.tags, [], `tags: ${s}`);
}

function conns(list) {
  return list.map((c) => `${c.source}>${c.sink}:${c.type}:${c.sourceDescription}:${c.sinkDescription}`).sort();
}

h.wireTest('a.connect(b) emits ElementConnected for AUDIO, VIDEO and DATA on the source', async () => {
  const { els: [a, b] } = await setup(2);
  const connected = h.collect(a, 'ElementConnected');
  const connectedOnB = h.collect(b, 'ElementConnected');
  await h.ok(a, 'connect', b);
  await h.waitFor(() => connected.length >= 3, 5000, 'three ElementConnected events on a');
  await h.sleep(300); // no extra events
  assert.equal(connected.length, 3, `exactly three ElementConnected: ${JSON.stringify(connected)}`);
  assert.deepEqual(connected.map((e) => e.mediaType).sort(), TYPES);
  for (const ev of connected) checkEvent(ev, 'ElementConnected', a, b);
  assert.equal(connectedOnB.length, 0, 'the sink does not emit ElementConnected');
});

h.wireTest('getSinkConnections / getSourceConnections list ElementConnectionData', async () => {
  const { els: [a, b] } = await setup(2);
  await h.ok(a, 'connect', b);
  const sinkConns = await h.ok(a, 'getSinkConnections');
  const expected = TYPES.map((t) => `${a.id}>${b.id}:${t}:default:default`).sort();
  assert.deepEqual(conns(sinkConns), expected, `a.getSinkConnections(): ${JSON.stringify(sinkConns)}`);
  for (const c of sinkConns) assert.equal(c.__type__, 'ElementConnectionData', `__type__ on ${JSON.stringify(c)}`);
  const srcConns = await h.ok(b, 'getSourceConnections');
  assert.deepEqual(conns(srcConns), expected, `b.getSourceConnections(): ${JSON.stringify(srcConns)}`);
  assert.deepEqual(await h.ok(a, 'getSourceConnections'), [], 'nothing feeds a');
  assert.deepEqual(await h.ok(b, 'getSinkConnections'), [], 'b feeds nothing');

  const video = await h.ok(a, 'getSinkConnections', 'VIDEO');
  assert.deepEqual(conns(video), [`${a.id}>${b.id}:VIDEO:default:default`], 'filtered by mediaType');
  const videoDefault = await h.ok(b, 'getSourceConnections', 'VIDEO', 'default');
  assert.deepEqual(conns(videoDefault), [`${a.id}>${b.id}:VIDEO:default:default`], 'filtered by mediaType + description');
});

h.wireTest("a.connect(b, 'VIDEO') emits one ElementConnected", async () => {
  const { els: [a, b] } = await setup(2);
  const connected = h.collect(a, 'ElementConnected');
  await h.ok(a, 'connect', b, 'VIDEO');
  await h.waitFor(() => connected.length >= 1, 5000, 'ElementConnected');
  await h.sleep(300);
  assert.equal(connected.length, 1, `exactly one event: ${JSON.stringify(connected)}`);
  checkEvent(connected[0], 'ElementConnected', a, b);
  assert.equal(connected[0].mediaType, 'VIDEO');
  assert.deepEqual(conns(await h.ok(a, 'getSinkConnections')), [`${a.id}>${b.id}:VIDEO:default:default`]);
});

h.wireTest('disconnect emits ElementDisconnected and removes the connections', async () => {
  const { els: [a, b] } = await setup(2);
  const disconnected = h.collect(a, 'ElementDisconnected');
  await h.ok(a, 'connect', b);
  await h.ok(a, 'disconnect', b, 'AUDIO');
  await h.waitFor(() => disconnected.length >= 1, 5000, 'ElementDisconnected (AUDIO)');
  assert.equal(disconnected[0].mediaType, 'AUDIO');
  checkEvent(disconnected[0], 'ElementDisconnected', a, b);
  assert.deepEqual(conns(await h.ok(a, 'getSinkConnections')),
    ['DATA', 'VIDEO'].map((t) => `${a.id}>${b.id}:${t}:default:default`));

  await h.ok(a, 'disconnect', b);
  await h.waitFor(() => disconnected.length >= 3, 5000, 'ElementDisconnected for the remaining types');
  await h.sleep(300);
  const types = disconnected.slice(1).map((e) => e.mediaType).sort();
  // disconnect() without type covers AUDIO, VIDEO and DATA; KMS emits the event even for
  // the already disconnected AUDIO (CONFIG.md §6.1), so accept 2 or 3 more events.
  assert.ok(types.includes('VIDEO') && types.includes('DATA'), `ElementDisconnected types: ${JSON.stringify(types)}`);
  for (const ev of disconnected) checkEvent(ev, 'ElementDisconnected', a, b);
  assert.deepEqual(await h.ok(a, 'getSinkConnections'), []);
  assert.deepEqual(await h.ok(b, 'getSourceConnections'), []);
});

h.wireTest('connecting c to b replaces a as the source of b (a emits ElementDisconnected)', async () => {
  const { els: [a, b, c] } = await setup(3);
  const aDisc = h.collect(a, 'ElementDisconnected');
  const cConn = h.collect(c, 'ElementConnected');
  await h.ok(a, 'connect', b);
  await h.ok(c, 'connect', b);
  await h.waitFor(() => aDisc.length >= 3 && cConn.length >= 3, 5000,
    `3 ElementDisconnected on a (got ${aDisc.length}) and 3 ElementConnected on c (got ${cConn.length})`);
  assert.deepEqual(aDisc.map((e) => e.mediaType).sort(), TYPES);
  for (const ev of aDisc) checkEvent(ev, 'ElementDisconnected', a, b);
  for (const ev of cConn) checkEvent(ev, 'ElementConnected', c, b);
  assert.deepEqual(conns(await h.ok(b, 'getSourceConnections')),
    TYPES.map((t) => `${c.id}>${b.id}:${t}:default:default`), 'b is fed by c only');
  assert.deepEqual(await h.ok(a, 'getSinkConnections'), [], 'a feeds nothing any more');
});

h.wireTest('one source may feed several sinks', async () => {
  const { els: [a, b, c] } = await setup(3);
  await h.ok(a, 'connect', b, 'VIDEO');
  await h.ok(a, 'connect', c, 'VIDEO');
  assert.deepEqual(conns(await h.ok(a, 'getSinkConnections')),
    [`${a.id}>${b.id}:VIDEO:default:default`, `${a.id}>${c.id}:VIDEO:default:default`].sort());
});

h.wireTest('connecting elements of different pipelines fails with 40004', async () => {
  const { els: [a] } = await setup(1);
  const { els: [x] } = await setup(1);
  const { err } = await h.cb(a, 'connect', x);
  assert.ok(err, 'connect across pipelines must fail');
  assert.equal(err.code, 40004, `code ${err.code} message ${err.message}`);
});
