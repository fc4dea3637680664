'use strict';
// 22. Simulcast offers and TURN settings as a kurento-client 7.3 application sees them:
//     - a rid simulcast offer (a=rid / a=simulcast, as browsers send with sendEncodings) is
//       answered with the layers accepted and the header extensions that name them;
//     - KMS_TURN_URL with coturn REST-API credentials (a user with ':', a base64 password) and
//       TCP transport is what getTurnUrl returns, and setTurnUrl takes the same form.
//     Media through the layers and through a real coturn: endpoints/webrtc TestSimulcast*,
//     TestTURNRelay.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const TURN = '1796523119:kurento:q+/Zx0=@127.0.0.1:3478?transport=tcp';

const fx = useServer({ server: { env: { KMS_TURN_URL: TURN } }, pipeline: true });

// A browser's offer with three simulcast layers on its video m-line.
function ridOffer() {
  const offer = h.browserOffer().split('\r\n').filter((l) => l !== 'a=ssrc:1002 cname:node');
  const at = offer.findIndex((l) => l.startsWith('a=rtpmap:96 '));
  offer.splice(at, 0, 'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
    'a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
    'a=rid:q send', 'a=rid:h send', 'a=rid:f send', 'a=simulcast:send q;h;f');
  return offer.join('\r\n');
}

h.wireTest('a rid simulcast offer is answered with its layers accepted', async () => {
  const ep = await fx.pipeline.create('WebRtcEndpoint');
  const answer = await h.ok(ep, 'processOffer', ridOffer());
  const video = answer.slice(answer.indexOf('m=video'));
  assert.doesNotMatch(video, /^m=video 0 /, `video rejected:\n${answer}`);
  assert.match(video, /a=simulcast:recv q;h;f/, `layers not accepted:\n${answer}`);
  assert.match(video, /a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id/);
  assert.match(video, /a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid/);
  await h.ok(ep, 'gatherCandidates');
  await h.ok(ep, 'release');
});

h.wireTest('KMS_TURN_URL with REST-API credentials and TCP is the turnUrl of new endpoints', async () => {
  const ep = await fx.pipeline.create('WebRtcEndpoint');
  assert.equal(await h.ok(ep, 'getTurnUrl'), TURN);
  const other = '1796523200:app:Zm9v/YmFy+=@127.0.0.1:3479';
  await h.ok(ep, 'setTurnUrl', other);
  assert.equal(await h.ok(ep, 'getTurnUrl'), other);
  // The endpoint negotiates with it (the TURN server is not there: host candidates still come).
  await h.ok(ep, 'processOffer', h.browserOffer());
  await h.ok(ep, 'gatherCandidates');
  await h.ok(ep, 'release');
});
