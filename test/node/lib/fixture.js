'use strict';
// The set-up most test files share, as node:test hooks: a server of the file's own, one
// kurento-client connection and, on request, a MediaPipeline and a temporary directory, all
// released after the file's tests whatever they left behind.

const { before, after } = require('node:test');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startServer } = require('./kms');
const h = require('./helpers');

/**
 * useServer registers the file's before/after hooks and returns the fixture they fill in:
 * {srv, client, pipeline, pipelines, dir}. Options:
 *   server:   startServer options, or a function of the fixture returning them (after prepare);
 *   client:   false for files that open their own connections (default true);
 *   pipeline: true for one MediaPipeline made up front (fx.pipeline);
 *   tmpDir:   a prefix: fx.dir is a new temporary directory, removed afterwards;
 *   prepare:  an async function of the fixture run before the server starts (clips, files).
 * Every pipeline pushed on fx.pipelines is released at the end.
 */
function useServer({ server = {}, client = true, pipeline = false, tmpDir = null, prepare = null } = {}) {
  const fx = { srv: null, client: null, pipeline: null, pipelines: [], dir: null };
  before(async () => {
    if (tmpDir) fx.dir = fs.mkdtempSync(path.join(os.tmpdir(), tmpDir));
    if (prepare) await prepare(fx);
    fx.srv = await startServer(typeof server === 'function' ? server(fx) : server);
    if (client) ({ client: fx.client } = await h.connectClient(fx.srv.uri));
    if (pipeline) {
      fx.pipeline = await fx.client.create('MediaPipeline');
      fx.pipelines.push(fx.pipeline);
    }
  });
  after(async () => {
    for (const p of fx.pipelines) await h.cb(p, 'release').catch(() => {});
    h.closeClient(fx.client);
    if (fx.srv) await fx.srv.stop();
    if (fx.dir) fs.rmSync(fx.dir, { recursive: true, force: true });
  });
  return fx;
}

/**
 * avClip writes a 20 s WebM clip of a moving test picture (VP8, 320x240 at 15 fps, 300 kb/s)
 * and a 440 Hz tone (Opus) into dir and returns its path: media for a PlayerEndpoint.
 */
function avClip(dir) {
  const clip = path.join(dir, 'clip.webm');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=15',
    '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '20', '-c:v', 'libvpx', '-deadline', 'realtime',
    '-b:v', '300k', '-c:a', 'libopus', clip]);
  return clip;
}

module.exports = { useServer, avClip };
