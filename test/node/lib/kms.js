'use strict';
// Starts the real server binary for a test file and gives kurento-client / raw
// WebSocket connections to it.
//
//   const { startServer } = require('../lib/kms');
//   const srv = await startServer();      // in before()
//   srv.uri                                // ws://127.0.0.1:<port>/kurento
//   await srv.stop();                      // in after()
//
// Binary: env KMS_BIN if set, else built once into a temp dir with
// `go build -o <tmp>/kurento-media-server ./cmd/kurento-media-server` from the repo root.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

let builtBin = null;

function serverBinary() {
  if (process.env.KMS_BIN) {
    const bin = path.resolve(process.env.KMS_BIN);
    if (!fs.existsSync(bin)) throw new Error(`KMS_BIN=${bin} does not exist`);
    return bin;
  }
  if (builtBin) return builtBin;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kms-node-bin-'));
  const bin = path.join(dir, 'kurento-media-server');
  try {
    execFileSync('go', ['build', '-o', bin, './cmd/kurento-media-server'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10 * 60 * 1000,
    });
  } catch (err) {
    const out = `${err.stdout || ''}${err.stderr || ''}`;
    throw new Error(`go build ./cmd/kurento-media-server failed:\n${out || err.message}`);
  }
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  builtBin = bin;
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tryWebSocket(uri, timeoutMs) {
  return new Promise((resolve) => {
    let done = false;
    const ws = new WebSocket(uri);
    const t = setTimeout(() => finish(false), timeoutMs);
    function finish(ok) {
      if (done) return;
      done = true;
      clearTimeout(t);
      try { ws.terminate(); } catch (_) { /* ignore */ }
      resolve(ok);
    }
    ws.on('open', () => finish(true));
    ws.on('error', () => finish(false));
    ws.on('close', () => finish(false));
  });
}

/**
 * Start a server. options.config is deep-merged into the generated kurento.conf.json
 * (e.g. {metadata: {...}}); options.env adds environment variables (e.g. KMS_MIN_PORT).
 * With KMS_CLUSTER=1 in the environment, the "server" is a cluster: a redis-server, two media
 * nodes and a router in front of them (docs/CLUSTER.md); uri is the router's.
 */
async function startServer(options = {}) {
  return process.env.KMS_CLUSTER === '1' ? startCluster(options) : startProcess(options);
}

async function startProcess(options = {}) {
  const bin = serverBinary();
  const port = options.port || await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kms-node-run-'));
  const extra = options.config || {};
  const conf = {
    ...extra,
    mediaServer: { ...(extra.mediaServer || {}), net: { websocket: { port, path: 'kurento' } } },
  };
  const confFile = path.join(dir, 'kurento.conf.json');
  fs.writeFileSync(confFile, JSON.stringify(conf, null, 2));

  const child = spawn(bin, ['-f', confFile], {
    cwd: dir,
    env: { ...process.env, GST_DEBUG: '2', GST_DEBUG_NO_COLOR: '1', ...(options.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d) => {
    output += d.toString();
    if (output.length > 200000) output = output.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.on('error', (err) => {
      exited = { code: null, signal: null, error: err };
      resolve(exited);
    });
  });
  // Never leave a server behind, even if the test process dies or is forced to exit.
  const killOnExit = () => { try { child.kill('SIGKILL'); } catch (_) { /* ignore */ } };
  process.on('exit', killOnExit);

  const uri = `ws://127.0.0.1:${port}/kurento`;
  const deadline = Date.now() + 30000;
  let up = false;
  while (Date.now() < deadline) {
    if (exited) break;
    // options.probeQuery: what the readiness probe adds to the URL (a token when access control is on).
    if (await tryWebSocket(uri + (options.probeQuery || ''), 1000)) { up = true; break; }
    await sleep(100);
  }
  if (!up) {
    killOnExit();
    const why = exited ? `exited early (${JSON.stringify(exited)})` : 'did not accept a WebSocket within 30 s';
    throw new Error(`server ${bin} ${why}; output:\n${output}`);
  }

  return {
    uri,
    port,
    confFile,
    dir,
    get output() { return output; },
    get exited() { return exited; },
    /** Throws (with the server output) if the server process died on its own. */
    assertAlive() {
      if (exited) {
        throw new Error(`server process exited during the tests (${JSON.stringify(exited)}); last output:\n${output.slice(-20000)}`);
      }
    },
    async stop() {
      const diedByItself = exited;
      if (!exited) {
        child.kill('SIGTERM');
        const r = await Promise.race([exitPromise, sleep(5000).then(() => null)]);
        if (!r) {
          child.kill('SIGKILL');
          await exitPromise;
        }
      }
      process.removeListener('exit', killOnExit);
      fs.rmSync(dir, { recursive: true, force: true });
      if (diedByItself) {
        throw new Error(`server process exited during the tests (${JSON.stringify(diedByItself)}); last output:\n${output.slice(-20000)}`);
      }
      return exited;
    },
  };
}

function startRedis() {
  return freePort().then(async (port) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no'], { stdio: 'ignore' });
    const killOnExit = () => { try { child.kill('SIGKILL'); } catch (_) { /* ignore */ } };
    process.on('exit', killOnExit);
    const deadline = Date.now() + 10000;
    for (;;) {
      const up = await new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await sleep(50);
    }
    return { url: `redis://127.0.0.1:${port}/0`, stop() { killOnExit(); process.removeListener('exit', killOnExit); } };
  });
}

// startCluster starts redis, two nodes and a router, and looks like one server to the tests.
async function startCluster(options = {}) {
  const redis = await startRedis();
  const env = { ...(options.env || {}), KMS_CLUSTER_STORE: redis.url };
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    nodes.push(await startProcess({ ...options, port,
      env: { ...env, KMS_CLUSTER_ADVERTISE: `ws://127.0.0.1:${port}/kurento` } }));
  }
  const router = await startProcess({ ...options, env: { ...env, KMS_ROUTER: 'true' } });
  const all = [router, ...nodes];
  return {
    uri: router.uri,
    port: router.port,
    confFile: router.confFile,
    dir: router.dir,
    nodes,
    get output() { return all.map((p) => p.output).join('\n--- next process ---\n'); },
    get exited() { return all.map((p) => p.exited).find((e) => e) || null; },
    assertAlive() { all.forEach((p) => p.assertAlive()); },
    async stop() {
      let failure = null;
      for (const p of all) {
        try { await p.stop(); } catch (err) { failure = failure || err; }
      }
      redis.stop();
      if (failure) throw failure;
    },
  };
}

module.exports = { startServer, serverBinary, freePort, sleep, REPO_ROOT };
