'use strict';
// Helpers shared by the test files: kurento-client connections, callback-style calls,
// event collection, a raw JSON-RPC WebSocket client and a wire log that is appended to
// the message of a failing test.

const crypto = require('node:crypto');
const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

if (require('domain').Domain !== undefined) {
  throw new Error('run the tests with `node -r ./preload.js` (see run.sh): kurento-client ' +
    'transactions need require("domain").Domain cleared before the client is loaded');
}

const kurentoClient = require('kurento-client');
const JsonRPC = require('kurento-jsonrpc').packers.JsonRPC;

// ---------------------------------------------------------------------------------------
// Wire log of every kurento-client message (both directions), for failure reports.

const wire = [];
const clip = (s) => (s.length > 1500 ? `${s.slice(0, 1500)}…(${s.length} chars)` : s);
function logWire(dir, text) {
  wire.push(`${new Date().toISOString().slice(11, 23)} ${dir} ${clip(String(text))}`);
  if (wire.length > 5000) wire.splice(0, 1000);
}
{
  const origPack = JsonRPC.pack;
  const origUnpack = JsonRPC.unpack;
  JsonRPC.pack = function (...args) {
    const s = origPack.apply(this, args);
    logWire('kc→', s);
    return s;
  };
  JsonRPC.unpack = function (message) {
    logWire('kc←', typeof message === 'string' ? message : JSON.stringify(message));
    return origUnpack.call(this, message);
  };
}

/** test() that appends the wire messages exchanged during the test to a failure. */
function wireTest(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  return test(name, opts, async (t) => {
    const mark = wire.length;
    const base = wire.length > 0 ? wire[wire.length - 1] : null;
    try {
      await fn(t);
    } catch (err) {
      // Indexes shift when the log is trimmed; find our start again.
      let start = base === null ? 0 : wire.lastIndexOf(base) + 1;
      if (start <= 0) start = Math.max(0, Math.min(mark, wire.length));
      const lines = wire.slice(start);
      const shown = lines.slice(-60);
      const note = `\n--- wire log of this test (${lines.length} messages${lines.length > shown.length ? ', last 60 shown' : ''}) ---\n${shown.join('\n')}`;
      if (err && typeof err === 'object') {
        try { err.message = `${err.message}${note}`; } catch (_) { /* read-only */ }
        throw err;
      }
      throw new Error(`${err}${note}`);
    }
  });
}

// ---------------------------------------------------------------------------------------
// kurento-client

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/**
 * kurentoClient(uri, options, callback) with the strict-mode module check; resolves
 * {client} (wrapped: the client object is itself a thenable).
 */
function connectClient(uri, options = {}) {
  const mark = wire.length;
  let client;
  return withTimeout(new Promise((resolve, reject) => {
    client = kurentoClient(uri, { request_timeout: 10000, ...options }, (err) => {
      if (err) return reject(err);
      resolve({ client });
    });
  }), 15000, `kurentoClient(${uri}) + module check`).catch((err) => {
    closeClient(client);
    const lines = wire.slice(mark).slice(-30);
    const e = new Error(`kurentoClient(${uri}) failed: ${err && err.message}` +
      `${err && err.request ? `\nrequest without reply: ${err.request}` : ''}` +
      `\n--- wire log of the connection attempt (${lines.length} messages) ---\n${lines.join('\n')}`);
    e.cause = err;
    throw e;
  });
}

function closeClient(client) {
  if (!client) return;
  try { client.close(); } catch (_) { /* ignore */ }
}

/**
 * Callback-style call obj[method](...args, cb); resolves {err, value} (never rejects).
 * Promise-style calls of kurento-client 7.3.0 do not reject on server errors, so error
 * replies are checked through this.
 */
function cb(obj, method, ...args) {
  return withTimeout(new Promise((resolve) => {
    obj[method](...args, (err, value) => resolve({ err, value }));
  }), 15000, `callback of ${method}(${args.map((a) => (a && a.id) || JSON.stringify(a)).join(', ')})`);
}

/** Callback-style call that must succeed; returns the value. */
async function ok(obj, method, ...args) {
  const { err, value } = await cb(obj, method, ...args);
  if (err) {
    assert.fail(`${method}(${args.map((a) => (a && a.id) || JSON.stringify(a)).join(', ')}) failed: ` +
      `code=${err.code} message=${JSON.stringify(err.message)} data=${JSON.stringify(err.data)}`);
  }
  return value;
}

/** Subscribe obj.on(event) and collect the event data objects. */
function collect(obj, event) {
  const list = [];
  obj.on(event, (data) => list.push(data));
  return list;
}

async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out after ${ms} ms waiting for ${what}` });
    await sleep(20);
  }
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const UUID_RE = new RegExp(`^${UUID}$`);
const PIPELINE_ID_RE = new RegExp(`^${UUID}_kurento\\.MediaPipeline$`);
const elementIdRe = (pipelineId, cls) =>
  new RegExp(`^${pipelineId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${UUID}_kurento\\.${cls}$`);

// ---------------------------------------------------------------------------------------
// Raw JSON-RPC over WebSocket.

class RawRpc {
  static open(uri) {
    return withTimeout(new Promise((resolve, reject) => {
      const ws = new WebSocket(uri);
      ws.once('open', () => resolve(new RawRpc(ws)));
      ws.once('error', reject);
    }), 5000, `raw WebSocket open ${uri}`);
  }

  constructor(ws) {
    this.ws = ws;
    this.tag = `#${++RawRpc.count}`;
    this.nextId = 1;
    this.pending = new Map();
    this.notifications = [];
    this.log = [];
    this.closed = false;
    ws.on('message', (data) => {
      const text = data.toString();
      this.log.push(`← ${clip(text)}`);
      logWire(`raw${this.tag}←`, text);
      let msg;
      try { msg = JSON.parse(text); } catch (e) { this.log.push(`!! unparseable frame`); return; }
      if (msg && msg.id !== undefined && msg.id !== null && this.pending.has(msg.id)) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p(msg);
      } else if (msg && msg.method !== undefined && msg.id === undefined) {
        this.notifications.push(msg);
      } else {
        this.log.push('!! unexpected frame (no pending request with this id)');
      }
    });
    ws.on('close', () => { this.closed = true; });
  }

  /** Send a request; resolves the whole response message. Checks the envelope. */
  request(method, params, timeoutMs = 10000) {
    const id = this.nextId++;
    const req = { jsonrpc: '2.0', id, method };
    if (params !== undefined) req.params = params;
    const text = JSON.stringify(req);
    this.log.push(`→ ${clip(text)}`);
    logWire(`raw${this.tag}→`, text);
    const p = new Promise((resolve) => this.pending.set(id, resolve));
    this.ws.send(text);
    return withTimeout(p, timeoutMs, `reply to ${text}`).then((msg) => {
      const hasResult = Object.prototype.hasOwnProperty.call(msg, 'result');
      const hasError = Object.prototype.hasOwnProperty.call(msg, 'error');
      assert.ok(hasResult !== hasError,
        `PROTOCOL.md §2: a response must contain exactly one of result/error.\nsent: ${text}\ngot:  ${JSON.stringify(msg)}`);
      assert.equal(msg.jsonrpc, '2.0', `response without "jsonrpc":"2.0"\nsent: ${text}\ngot:  ${JSON.stringify(msg)}`);
      msg.sent = text;
      return msg;
    });
  }

  /** Request that must succeed; returns result (checks sessionId presence, §3). */
  async call(method, params) {
    const msg = await this.request(method, params);
    assert.ok(!msg.error, `${method} failed\nsent: ${msg.sent}\ngot:  ${JSON.stringify(msg)}`);
    if (method !== 'closeSession') {
      assert.equal(typeof (msg.result && msg.result.sessionId), 'string',
        `PROTOCOL.md §3: every successful result carries "sessionId"\nsent: ${msg.sent}\ngot:  ${JSON.stringify(msg)}`);
    }
    return msg.result;
  }

  /** Request that must fail; returns the error object. */
  async callError(method, params) {
    const msg = await this.request(method, params);
    assert.ok(msg.error, `${method} was expected to fail\nsent: ${msg.sent}\ngot:  ${JSON.stringify(msg)}`);
    msg.error.sent = msg.sent;
    msg.error.reply = JSON.stringify(msg);
    return msg.error;
  }

  events(type, object) {
    return this.notifications.filter((n) => n.method === 'onEvent' && n.params && n.params.value &&
      (type === undefined || n.params.value.type === type) &&
      (object === undefined || n.params.value.object === object));
  }

  transcript() { return this.log.slice(-60).join('\n'); }

  close() {
    if (!this.closed) {
      try { this.ws.close(); } catch (_) { /* ignore */ }
    }
    this.closed = true;
  }

  terminate() {
    try { this.ws.terminate(); } catch (_) { /* ignore */ }
    this.closed = true;
  }
}

RawRpc.count = 0;

// A browser-shaped offer: BUNDLE of Opus and VP8, DTLS fingerprint, trickle ICE.
function browserOffer() {
  const fingerprint = crypto.randomBytes(32).toString('hex').toUpperCase().match(/../g).join(':');
  const ufrag = crypto.randomBytes(3).toString('hex');
  const pwd = crypto.randomBytes(12).toString('hex');
  const common = (mid) => [
    'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0', `a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`,
    'a=ice-options:trickle', `a=fingerprint:sha-256 ${fingerprint}`, 'a=setup:actpass', `a=mid:${mid}`,
    'a=sendrecv', 'a=rtcp-mux',
  ];
  return [
    'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', ...common(0),
    'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'a=ssrc:1001 cname:node',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', ...common(1),
    'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli', 'a=ssrc:1002 cname:node',
    '',
  ].join('\r\n');
}

module.exports = {
  browserOffer,
  kurentoClient,
  wire,
  wireTest,
  connectClient,
  closeClient,
  cb,
  ok,
  collect,
  waitFor,
  sleep,
  withTimeout,
  RawRpc,
  UUID_RE,
  PIPELINE_ID_RE,
  elementIdRe,
};
