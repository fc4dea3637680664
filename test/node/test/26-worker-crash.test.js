'use strict';
// 24. A GStreamer element that crashes the process it runs in, as a kurento-client application sees
//     it (issue 12): a PlayerEndpoint feeds a GStreamerFilter whose element (crashtransform, from the
//     test plugin internal/testgstplugin/testdata/crash.c, compiled here with gcc and loaded with
//     GST_PLUGIN_PATH) writes through a NULL pointer after 30 frames. The filter's worker dies; the
//     application gets an Error event of type WORKER_CRASHED on the filter with KMS's Error fields,
//     the server and the player (another worker) go on, the filter can be released and recreated.
//     With KMS_GST_WORKER_RESTART=true (a second server), the filter is rebuilt in a new worker with
//     the property set by setElementProperty: WORKER_CRASHED, then WORKER_RESTARTED, media flows out
//     of it again and it does not crash again.
//     The Go tests in test/crash check the rest: bystander sessions' frames, timing, resources.

const { before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startServer } = require('../lib/kms');
const h = require('../lib/helpers');

const SOURCE = path.resolve(__dirname, '..', '..', '..', 'internal', 'testgstplugin', 'testdata', 'crash.c');

let srv;
let client;
let dir;
let skip = '';
let file;
let env;

// buildPlugin compiles the crashing plugin into dir, or says why it cannot.
function buildPlugin() {
  try {
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'gstreamer-1.0', 'gstreamer-base-1.0']).toString().trim().split(/\s+/);
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', path.join(dir, 'libgstkmscrashtest.so'), SOURCE, ...flags],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    return '';
  } catch (err) {
    return `crashing plugin not built (gcc, pkg-config, libgstreamer1.0-dev needed): ${err.message}`;
  }
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-crash-'));
  skip = buildPlugin();
  if (skip) return;
  // A KMSCRASH file whose decoder never reaches its crash: grey 320x240 frames for 100 s.
  file = path.join(dir, 'grey.kmscrash');
  const data = Buffer.alloc(4096 * 3000);
  data.write('KMSCRASH 1000000\n');
  fs.writeFileSync(file, data);
  env = { GST_PLUGIN_PATH: dir, GST_REGISTRY: path.join(dir, 'registry.bin') };
  // The registry cache with the plugin in it, made once here: scanning every plugin takes longer
  // on a busy machine than a request may.
  execFileSync('gst-inspect-1.0', ['crashtransform'], { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 120000 });
  srv = await startServer({ env });
  ({ client } = await h.connectClient(srv.uri));
});

after(async () => {
  h.closeClient(client);
  if (srv) await srv.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const idOf = (o) => (o && o.id) || o;

h.wireTest('a crashing filter element raises Error WORKER_CRASHED; the server and the player go on', async (t) => {
  if (skip) { t.skip(skip); return; }
  const pipeline = await h.ok(client, 'create', 'MediaPipeline');
  const player = await h.ok(pipeline, 'create', 'PlayerEndpoint', { uri: `file://${file}` });
  const filter = await h.ok(pipeline, 'create', 'GStreamerFilter', { command: 'crashtransform after=30', filterType: 'VIDEO' });
  const errors = h.collect(filter, 'Error');
  const playerErrors = h.collect(player, 'Error');
  await h.ok(player, 'connect', filter);
  await h.ok(player, 'play');

  const ev = await h.waitFor(() => errors.find((e) => e.type === 'WORKER_CRASHED'), 30000, 'Error WORKER_CRASHED on the filter');
  // KMS's Error event as kurento-client 7.3 hands it to the application.
  assert.equal(idOf(ev.source), filter.id);
  assert.equal(typeof ev.description, 'string');
  assert.ok(ev.description.length > 0, 'a description says why');
  assert.equal(typeof ev.errorCode, 'number');
  assert.ok(Array.isArray(ev.tags), 'tags');
  assert.match(String(ev.timestampMillis), /^\d+$/);

  // The server serves; the player, in a worker of its own, still plays.
  srv.assertAlive();
  assert.equal(await h.ok(player, 'getState'), 'START');
  assert.deepEqual(playerErrors.filter((e) => e.type === 'WORKER_CRASHED'), []);
  await h.ok(filter, 'release');
  const again = await h.ok(pipeline, 'create', 'GStreamerFilter', { command: 'videoflip method=horizontal-flip' });
  await h.ok(player, 'connect', again);
  await h.ok(pipeline, 'release');
});

h.wireTest('with KMS_GST_WORKER_RESTART the crashed filter is rebuilt: WORKER_CRASHED, then WORKER_RESTARTED, media flows again', async (t) => {
  if (skip) { t.skip(skip); return; }
  const rsrv = await startServer({ env: { ...env, KMS_GST_WORKER_RESTART: 'true' } });
  const { client: rc } = await h.connectClient(rsrv.uri);
  try {
    const marker = path.join(dir, 'crashed-once');
    const pipeline = await h.ok(rc, 'create', 'MediaPipeline');
    const player = await h.ok(pipeline, 'create', 'PlayerEndpoint', { uri: `file://${file}` });
    const filter = await h.ok(pipeline, 'create', 'GStreamerFilter', { command: 'crashtransform after=30', filterType: 'VIDEO' });
    // crashtransform crashes only while this file does not exist: the rebuilt element goes on if,
    // and only if, it got the property again.
    await h.ok(filter, 'setElementProperty', 'once', marker);
    const errors = h.collect(filter, 'Error');
    await h.ok(player, 'connect', filter);
    await h.ok(player, 'play');

    const crash = await h.waitFor(() => errors.find((e) => e.type === 'WORKER_CRASHED'), 30000, 'Error WORKER_CRASHED');
    const restarted = await h.waitFor(() => errors.find((e) => e.type === 'WORKER_RESTARTED'), 30000, 'Error WORKER_RESTARTED');
    assert.ok(errors.indexOf(crash) < errors.indexOf(restarted), 'WORKER_CRASHED comes first');
    assert.equal(idOf(restarted.source), filter.id);
    assert.equal(restarted.errorCode, crash.errorCode);
    assert.ok(typeof restarted.description === 'string' && restarted.description.length > 0);

    // Media flows out of the rebuilt filter, past the 30 frames a bare element would crash after.
    const since = Date.now();
    for (;;) {
      if (Date.now() - since > 3000 && await h.ok(filter, 'isMediaFlowingOut', 'VIDEO')) break;
      assert.ok(Date.now() - since < 30000, 'media flowing out of the rebuilt filter');
      await h.sleep(100);
    }
    assert.deepEqual(errors.map((e) => e.type), ['WORKER_CRASHED', 'WORKER_RESTARTED']);
    rsrv.assertAlive();
    await h.ok(pipeline, 'release');
  } finally {
    h.closeClient(rc);
    await rsrv.stop();
  }
});
