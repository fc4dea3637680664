'use strict';
// 5. Transactions: implicit (useImplicitTransactions), explicit (beginTransaction/commit,
//    pipeline.transaction(fn), client.transaction(fn)), newref references, and a
//    transaction whose later operation fails (PROTOCOL.md §4.8).

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

function conns(list) {
  return list.map((c) => `${c.source}>${c.sink}:${c.type}`).sort();
}

/** Wire messages (kurento-client side) logged since `mark` that are transaction requests. */
function transactionRequestsSince(mark) {
  return h.wire.slice(mark).filter((l) => l.includes(' kc→ ') && l.includes('"method":"transaction"'));
}

h.wireTest('implicit transactions (useImplicitTransactions) batch calls and they all succeed', async () => {
  const { client: ic } = await h.connectClient(fx.srv.uri, { useImplicitTransactions: true });
  try {
    const p = await ic.create('MediaPipeline');
    fx.pipelines.push(p);
    assert.match(p.id, h.PIPELINE_ID_RE);
    const mark = h.wire.length;
    // Queued in the same tick: the client sends them as one `transaction` request.
    const a = p.create('PassThrough');
    const b = p.create('PassThrough');
    const c = p.create('PassThrough');
    await Promise.all([a, b, c].map((o) => h.withTimeout(Promise.resolve(o.then((x) => x.id)), 10000, 'implicit create')));
    for (const o of [a, b, c]) assert.match(String(o.id), h.elementIdRe(p.id, 'PassThrough'));
    assert.ok(transactionRequestsSince(mark).length >= 1,
      'kurento-client was expected to send the three creates as one implicit "transaction" request');

    const mark2 = h.wire.length;
    const results = await Promise.all([
      h.cb(a, 'addTag', 'k', 'A'),
      h.cb(b, 'setName', 'bee'),
      h.cb(a, 'connect', b, 'VIDEO'),
    ]);
    for (const r of results) assert.equal(r.err, null, `implicit-transaction call failed: ${JSON.stringify(r.err)}`);
    assert.ok(transactionRequestsSince(mark2).length >= 1, 'expected an implicit "transaction" request for the three invokes');
    assert.equal(await h.ok(a, 'getTag', 'k'), 'A');
    assert.equal(await h.ok(b, 'getName'), 'bee');
    assert.deepEqual(conns(await h.ok(a, 'getSinkConnections')), [`${a.id}>${b.id}:VIDEO`]);
  } finally {
    h.closeClient(ic);
  }
});

h.wireTest('explicit: client.beginTransaction() ... commit() creates objects referencing each other', async () => {
  const mark = h.wire.length;
  const tx = fx.client.beginTransaction();
  // kurento-client 7.3.0: generated methods called with a transaction need an explicit
  // callback (otherwise the last argument is taken as the callback after the shift).
  const opErrors = [];
  const note = (what) => (err) => { if (err) opErrors.push(`${what}: ${JSON.stringify(err)}`); };
  const p = fx.client.create(tx, 'MediaPipeline');
  const a = p.create(tx, 'PassThrough');
  const b = p.create(tx, 'PassThrough');
  a.addTag(tx, 'role', 'source', note('addTag'));
  b.setName(tx, 'sink-b', note('setName'));
  assert.equal(p.id, undefined, 'nothing is created before commit');
  const txResult = await h.withTimeout(new Promise((resolve, reject) => {
    tx.commit((err, res) => (err ? reject(err) : resolve(res)));
  }), 15000, 'tx.commit');
  fx.pipelines.push(p);

  const sent = transactionRequestsSince(mark);
  assert.equal(sent.length, 1, 'one transaction request on the wire');
  assert.ok(sent[0].includes('newref:0'), `operations reference the pipeline by newref:0: ${sent[0]}`);
  assert.deepEqual(opErrors, [], 'operations inside the transaction succeeded');
  assert.ok(Array.isArray(txResult.value) && txResult.value.length === 5,
    `transaction result.value holds the 5 operation responses: ${JSON.stringify(txResult)}`);

  assert.match(String(p.id), h.PIPELINE_ID_RE);
  assert.match(String(a.id), h.elementIdRe(p.id, 'PassThrough'));
  assert.match(String(b.id), h.elementIdRe(p.id, 'PassThrough'));
  assert.equal(await h.ok(a, 'getTag', 'role'), 'source');
  assert.equal(await h.ok(b, 'getName'), 'sink-b');
  const children = await h.ok(p, 'getChildren');
  assert.deepEqual(children.map((c) => c.id).sort(), [a.id, b.id].sort());
});

h.wireTest('explicit: pipeline.transaction(fn) creates, connects (newref) and tags elements', async () => {
  const p = await fx.client.create('MediaPipeline');
  fx.pipelines.push(p);
  let a;
  let b;
  const mark = h.wire.length;
  await h.withTimeout(new Promise((resolve, reject) => {
    p.transaction(function () {
      a = this.create('PassThrough');
      b = this.create('PassThrough');
      a.connect(b);
      a.addTag('k', 'v');
    }, (err, res) => (err ? reject(err) : resolve(res)));
  }), 15000, 'pipeline.transaction');
  const sent = transactionRequestsSince(mark);
  assert.equal(sent.length, 1, 'one transaction request on the wire');
  assert.ok(sent[0].includes('"newref:0"') && sent[0].includes('"newref:1"'), `connect uses newref ids: ${sent[0]}`);

  assert.match(String(a.id), h.elementIdRe(p.id, 'PassThrough'));
  assert.match(String(b.id), h.elementIdRe(p.id, 'PassThrough'));
  assert.deepEqual(conns(await h.ok(a, 'getSinkConnections')),
    ['AUDIO', 'DATA', 'VIDEO'].map((t) => `${a.id}>${b.id}:${t}`));
  assert.equal(await h.ok(a, 'getTag', 'k'), 'v');
});

h.wireTest('explicit: client.transaction(fn) creates a pipeline and an element in it', async () => {
  let p;
  let e;
  await h.withTimeout(new Promise((resolve, reject) => {
    fx.client.transaction(function () {
      p = this.create('MediaPipeline');
      e = p.create('PassThrough');
    }, (err, res) => (err ? reject(err) : resolve(res)));
  }), 15000, 'client.transaction');
  fx.pipelines.push(p);
  assert.match(String(p.id), h.PIPELINE_ID_RE);
  assert.match(String(e.id), h.elementIdRe(p.id, 'PassThrough'));
  assert.equal(await h.ok(e, 'getName'), e.id);
});

h.wireTest('a transaction whose later operation fails: earlier ones stay, later ones not executed', async () => {
  const tx = fx.client.beginTransaction();
  const got = {};
  const track = (name) => (err, value) => { got[name] = { err, value }; };
  const p = fx.client.create(tx, 'MediaPipeline', track('pipeline'));
  const a = p.create(tx, 'PassThrough', track('a'));
  a.getTag(tx, 'no-such-key', track('getTag'));
  const c = p.create(tx, 'PassThrough', track('c'));
  let commitErr = null;
  await h.withTimeout(new Promise((resolve) => {
    tx.commit((err) => { commitErr = err; resolve(); });
  }), 15000, 'tx.commit');
  if (p.id) fx.pipelines.push(p);
  await h.waitFor(() => Object.keys(got).length === 4, 5000, `all four operation callbacks (got ${Object.keys(got)})`);

  assert.equal(commitErr, null, `the transaction call itself succeeds (PROTOCOL.md §4.8): ${JSON.stringify(commitErr)}`);
  assert.equal(got.pipeline.err, null, `pipeline create: ${JSON.stringify(got.pipeline.err)}`);
  assert.equal(got.a.err, null, `element create: ${JSON.stringify(got.a.err)}`);
  assert.ok(got.getTag.err, 'getTag of a missing key must fail inside the transaction');
  assert.equal(got.getTag.err.code, 40110, `getTag error: ${JSON.stringify(got.getTag.err)}`);
  assert.ok(got.c.err, 'the operation after the failing one must not be executed');
  assert.match(String(got.c.err.message), /not executed/i, `c: ${got.c.err.message}`);

  assert.match(String(p.id), h.PIPELINE_ID_RE);
  assert.match(String(a.id), h.elementIdRe(p.id, 'PassThrough'));
  assert.equal(c.id, undefined, 'c never got an id');
  const children = await h.ok(p, 'getChildren');
  assert.deepEqual(children.map((x) => x.id), [a.id], 'no rollback of executed operations, nothing after the failure');
});

h.wireTest('raw transaction: newref substitution, stop at first failure, outer success', async () => {
  const rpc = await h.RawRpc.open(fx.srv.uri);
  try {
    const { sessionId } = await rpc.call('describe', { object: 'manager_ServerManager' });
    const ops = [
      { jsonrpc: '2.0', id: 0, method: 'create', params: { type: 'MediaPipeline', properties: {} } },
      { jsonrpc: '2.0', id: 1, method: 'create', params: { type: 'PassThrough', constructorParams: { mediaPipeline: 'newref:0' }, properties: {} } },
      { jsonrpc: '2.0', id: 2, method: 'create', params: { type: 'kurento.PassThrough', constructorParams: { mediaPipeline: 'newref:0' }, properties: {} } },
      { jsonrpc: '2.0', id: 3, method: 'invoke', params: { object: 'newref:1', operation: 'connect', operationParams: { sink: 'newref:2', mediaType: 'VIDEO' } } },
      { jsonrpc: '2.0', id: 4, method: 'invoke', params: { object: 'newref:1', operation: 'getTag', operationParams: { key: 'missing' } } },
      { jsonrpc: '2.0', id: 5, method: 'create', params: { type: 'PassThrough', constructorParams: { mediaPipeline: 'newref:0' }, properties: {} } },
    ];
    const res = await rpc.call('transaction', { sessionId, operations: ops });
    const v = res.value;
    const show = JSON.stringify(res);
    assert.ok(Array.isArray(v), `result.value must be the array of responses: ${show}`);
    assert.equal(v.length, 5, `responses up to and including the failing one (5), got ${v.length}: ${show}`);
    for (let i = 0; i < 4; i++) {
      assert.equal(v[i].id, i, `response ${i} id: ${show}`);
      assert.ok(v[i].result && !('error' in v[i]), `response ${i} succeeded: ${show}`);
      assert.equal(v[i].result.sessionId, sessionId, `response ${i} carries the transaction sessionId: ${show}`);
    }
    const pipe = v[0].result.value;
    assert.match(pipe, h.PIPELINE_ID_RE);
    assert.match(v[1].result.value, h.elementIdRe(pipe, 'PassThrough'));
    assert.match(v[2].result.value, h.elementIdRe(pipe, 'PassThrough'));
    assert.equal(v[3].result.value, null, `void invoke -> value null: ${show}`);
    assert.equal(v[4].id, 4);
    assert.ok(v[4].error && !('result' in v[4]), `response 4 is the error: ${show}`);
    assert.equal(v[4].error.code, 40110, show);

    const children = await rpc.call('invoke', { object: pipe, operation: 'getChildren', sessionId });
    assert.deepEqual([...children.value].sort(), [v[1].result.value, v[2].result.value].sort(), 'op 5 not executed, no rollback');
    const sinks = await rpc.call('invoke', { object: v[1].result.value, operation: 'getSinkConnections', sessionId });
    assert.deepEqual(sinks.value.map((c) => `${c.source}>${c.sink}:${c.type}`),
      [`${v[1].result.value}>${v[2].result.value}:VIDEO`], 'connect via newref ids');

    // Operation ids must be 0..n-1.
    const bad = await rpc.callError('transaction', {
      sessionId,
      operations: [{ jsonrpc: '2.0', id: 7, method: 'create', params: { type: 'MediaPipeline', properties: {} } }],
    });
    assert.equal(bad.code, 40008, `operation id 7 at index 0 -> 40008 MALFORMED_TRANSACTION; got ${bad.reply}`);

    // A newref id outside a transaction.
    const outside = await rpc.callError('create', {
      type: 'PassThrough', constructorParams: { mediaPipeline: 'newref:0' }, properties: {}, sessionId,
    });
    assert.equal(outside.code, 40109, `newref outside a transaction -> 40109; got ${outside.reply}`);

    await rpc.call('release', { object: pipe, sessionId });
  } finally {
    rpc.close();
  }
});
