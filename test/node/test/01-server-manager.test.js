'use strict';
// 1. kurentoClient(ws_uri) connects (strict module check passes); ServerManager getters.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const METADATA = { deployment: 'node-tests', zone: 'lab-1' };

const fx = useServer({ server: { config: { metadata: METADATA } } });

h.wireTest('kurentoClient(ws_uri) connects and adopts a server-generated UUID sessionId', async () => {
  // connectClient waited for the callback of kurentoClient(), which reports the strict-mode
  // module check (getInfo must list core/elements/filters) — an error would have thrown.
  assert.match(String(fx.client.sessionId), h.UUID_RE, 'client.sessionId should be the UUID the server generated');
});

h.wireTest('getServerManager() gives the manager_ServerManager proxy', async () => {
  const sm = await fx.client.getServerManager();
  assert.equal(sm.id, 'manager_ServerManager');
  assert.equal(typeof sm.getInfo, 'function', 'proxy should be a ServerManager (describe type/qualifiedType)');
});

h.wireTest('getInfo() lists modules core/elements/filters and capability "transactions"', async () => {
  const sm = await fx.client.getServerManager();
  const info = await h.ok(sm, 'getInfo');
  assert.equal(typeof info, 'object');
  assert.ok(Array.isArray(info.modules), `info.modules should be an array: ${JSON.stringify(info)}`);
  const names = info.modules.map((m) => m.name);
  for (const m of ['core', 'elements', 'filters']) {
    assert.ok(names.includes(m), `module "${m}" missing from getInfo().modules: ${JSON.stringify(names)}`);
  }
  assert.ok(Array.isArray(info.capabilities) && info.capabilities.includes('transactions'),
    `getInfo().capabilities should include "transactions": ${JSON.stringify(info.capabilities)}`);
  assert.equal(info.type, 'KMS');
  assert.equal(typeof info.version, 'string');
  const core = info.modules.find((m) => m.name === 'core');
  assert.ok(Array.isArray(core.factories) && core.factories.includes('MediaPipeline') && core.factories.includes('PassThrough'),
    `core factories should include MediaPipeline and PassThrough: ${JSON.stringify(core.factories)}`);
  assert.equal(typeof core.version, 'string');
  assert.equal(typeof core.generationTime, 'string', 'ModuleInfo.generationTime is a string (PROTOCOL.md §6)');
  assert.equal(info.__type__, 'ServerInfo', 'complex values carry __type__ (PROTOCOL.md §6)');
  assert.equal(info.__module__, 'kurento', 'complex values carry __module__ (PROTOCOL.md §6)');
});

h.wireTest('getPipelines() lists pipeline proxies; a new pipeline appears', async () => {
  const sm = await fx.client.getServerManager();
  const pipeline = await fx.client.create('MediaPipeline');
  try {
    const pipelines = await h.ok(sm, 'getPipelines');
    assert.ok(Array.isArray(pipelines), `getPipelines should give an array, got ${JSON.stringify(pipelines)}`);
    const ids = pipelines.map((p) => p && p.id);
    assert.ok(ids.includes(pipeline.id), `getPipelines ${JSON.stringify(ids)} lacks ${pipeline.id}`);
    // Promise style gives the same thing.
    const viaPromise = await sm.getPipelines();
    assert.ok(viaPromise.map((p) => p.id).includes(pipeline.id));
  } finally {
    await h.ok(pipeline, 'release');
  }
  const after = await h.ok(sm, 'getPipelines');
  assert.ok(!after.map((p) => p.id).includes(pipeline.id), 'released pipeline still listed by getPipelines');
});

h.wireTest('getSessions() lists this client session', async () => {
  const sm = await fx.client.getServerManager();
  const sessions = await h.ok(sm, 'getSessions');
  assert.ok(Array.isArray(sessions), `getSessions should give an array: ${JSON.stringify(sessions)}`);
  for (const s of sessions) assert.equal(typeof s, 'string');
  assert.ok(sessions.includes(fx.client.sessionId), `getSessions ${JSON.stringify(sessions)} lacks ${fx.client.sessionId}`);
});

h.wireTest('getCpuCount(), getUsedMemory() are positive numbers', async () => {
  const sm = await fx.client.getServerManager();
  const cpus = await h.ok(sm, 'getCpuCount');
  assert.ok(Number.isInteger(cpus) && cpus >= 1, `getCpuCount = ${JSON.stringify(cpus)}`);
  const mem = await h.ok(sm, 'getUsedMemory');
  assert.ok(typeof mem === 'number' && mem > 0, `getUsedMemory = ${JSON.stringify(mem)} (KiB)`);
});

h.wireTest('getUsedCpu(100) blocks about 100 ms and returns a percentage', async () => {
  const sm = await fx.client.getServerManager();
  const t0 = Date.now();
  const cpu = await h.ok(sm, 'getUsedCpu', 100);
  const elapsed = Date.now() - t0;
  assert.ok(typeof cpu === 'number' && Number.isFinite(cpu) && cpu >= 0, `getUsedCpu(100) = ${JSON.stringify(cpu)}`);
  assert.ok(elapsed >= 80, `getUsedCpu(100) answered after ${elapsed} ms; it measures over the interval`);
});

h.wireTest('getMetadata() returns the "metadata" subtree of kurento.conf.json as JSON text', async () => {
  const sm = await fx.client.getServerManager();
  const text = await h.ok(sm, 'getMetadata');
  assert.equal(typeof text, 'string');
  let parsed;
  assert.doesNotThrow(() => { parsed = JSON.parse(text); }, `getMetadata is not JSON text: ${JSON.stringify(text)}`);
  assert.deepEqual(parsed, METADATA);
});

h.wireTest("getKmd('core') returns the core kmd as JSON text; unknown module fails with 40500", async () => {
  const sm = await fx.client.getServerManager();
  const text = await h.ok(sm, 'getKmd', 'core');
  assert.equal(typeof text, 'string');
  let kmd;
  assert.doesNotThrow(() => { kmd = JSON.parse(text); }, `getKmd('core') is not JSON text: ${text.slice(0, 200)}`);
  assert.equal(kmd.name, 'core', 'kmd "name"');
  assert.ok(Array.isArray(kmd.remoteClasses), 'kmd has remoteClasses');
  const classNames = kmd.remoteClasses.map((c) => c.name);
  for (const c of ['MediaObject', 'ServerManager', 'MediaPipeline', 'PassThrough', 'MediaElement']) {
    assert.ok(classNames.includes(c), `core kmd remoteClasses lacks ${c}: ${JSON.stringify(classNames)}`);
  }

  const { err } = await h.cb(sm, 'getKmd', 'no-such-module');
  assert.ok(err, "getKmd('no-such-module') should fail");
  assert.equal(err.code, 40500, `getKmd('no-such-module') error code (api.json note: 40500): ${err.code} ${err.message}`);
});
