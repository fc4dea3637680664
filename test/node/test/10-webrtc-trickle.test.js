'use strict';
// 10. Trickle ICE of a WebRtcEndpoint driven by kurento-client: IceCandidateFound carries candidates
//     whose ports lie inside KMS_MIN_PORT..KMS_MAX_PORT, gatherCandidates works before and after
//     processOffer, IceGatheringDone follows the candidates (CONFIG.md §6.5).

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const MIN_PORT = 42300;
const MAX_PORT = 42360;

const fx = useServer({ server: { env: { KMS_MIN_PORT: String(MIN_PORT), KMS_MAX_PORT: String(MAX_PORT) } }, pipeline: true });

// "candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ..."
function candidatePort(line) {
  const f = line.replace(/^a=/, '').split(' ');
  return Number(f[5]);
}

async function gather(order) {
  const ep = await fx.pipeline.create('WebRtcEndpoint');
  const found = [];
  let doneAt = -1;
  ep.on('IceCandidateFound', (ev) => found.push(ev.candidate));
  ep.on('IceGatheringDone', () => { doneAt = found.length; });
  // Let the subscriptions reach the server before gathering starts.
  await h.sleep(200);
  let answer;
  if (order === 'before') {
    await h.ok(ep, 'gatherCandidates');
    answer = await h.ok(ep, 'processOffer', h.browserOffer());
  } else {
    answer = await h.ok(ep, 'processOffer', h.browserOffer());
    await h.ok(ep, 'gatherCandidates');
  }
  assert.match(answer, /^v=0/, 'processOffer returns an SDP answer');
  await h.waitFor(() => doneAt >= 0, 10000, 'IceGatheringDone');
  return { ep, found, doneAt };
}

for (const order of ['before', 'after']) {
  h.wireTest(`gatherCandidates ${order} processOffer: candidates in the port range, then IceGatheringDone`, async () => {
    const { ep, found, doneAt } = await gather(order);
    assert.ok(found.length > 0, 'at least one IceCandidateFound');
    assert.equal(doneAt, found.length, 'IceGatheringDone comes after every candidate');
    for (const c of found) {
      assert.equal(typeof c.candidate, 'string');
      assert.match(c.candidate, /^candidate:/);
      assert.equal(typeof c.sdpMid, 'string');
      assert.equal(typeof c.sdpMLineIndex, 'number');
      const port = candidatePort(c.candidate);
      if (/ udp /i.test(c.candidate)) {
        assert.ok(port >= MIN_PORT && port <= MAX_PORT,
          `candidate port ${port} outside KMS_MIN_PORT..KMS_MAX_PORT (${MIN_PORT}..${MAX_PORT}): ${c.candidate}`);
      }
    }
    const local = await h.ok(ep, 'getLocalSessionDescriptor');
    assert.match(local, /a=candidate:/, 'the local SDP lists the gathered candidates');
    await h.ok(ep, 'release');
  });
}
