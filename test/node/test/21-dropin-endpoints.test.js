'use strict';
// 21. WebRtcEndpoint and RtpEndpoint as KMS 7.3 answers them through kurento-client:
//     - legacy offers (no mid + RTP/AVP, plan-B with two video m-lines, kurento-utils simulcast
//       munging) each get an answer, the m-lines the endpoint cannot serve rejected with port 0;
//     - DtlsConnectionStateChange NEW -> CONNECTING -> CONNECTED -> CLOSED, getDtlsConnectionState
//       [] before any DTLS event;
//     - getStats keys and types: the element's own entry under its object id (EndpointStats),
//       RTP streams, RTCPeerConnectionStats with data channels, nothing KMS never sends.
//     Media comes from a PlayerEndpoint playing a clip made with ffmpeg; the WebRTC peer of an
//     endpoint is another WebRtcEndpoint of the same server.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer, avClip } = require('../lib/fixture');

const fx = useServer({ pipeline: true, tmpDir: 'dropin-endpoints-', prepare: (f) => { f.clip = avClip(f.dir); } });

const mLines = (sdp) => sdp.split(/\r?\n/).filter((l) => l.startsWith('m='));
const rejected = (sdp) => mLines(sdp).map((l) => l.split(' ')[1] === '0');

const FP = 'sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00';
const legacyOffers = {
  'no mid, RTP/AVP 96 97 98, no ICE credentials nor fingerprint, recvonly': {
    sdp: ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0',
      'm=video 5004 RTP/AVP 96 97 98', 'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 H264/90000',
      'a=rtpmap:98 VP9/90000', 'a=recvonly', ''],
    want: [true],
  },
  'plan-B: two tracks in one video m-line, then a second video m-line, no mid': {
    sdp: ['v=0', 'o=- 2 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=ice-ufrag:abcd',
      'a=ice-pwd:abcdefghijklmnopqrstuvwx', `a=fingerprint:${FP}`,
      'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=setup:actpass',
      'a=sendrecv', 'a=rtpmap:111 opus/48000/2', 'a=ssrc:1001 cname:x', 'a=ssrc:1001 msid:s1 a1',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=setup:actpass',
      'a=sendrecv', 'a=rtpmap:96 VP8/90000', 'a=ssrc:2001 cname:x', 'a=ssrc:2001 msid:s1 v1',
      'a=ssrc:2002 cname:x', 'a=ssrc:2002 msid:s2 v2',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=setup:actpass',
      'a=sendonly', 'a=rtpmap:96 VP8/90000', 'a=ssrc:3001 cname:x', 'a=ssrc:3001 msid:s3 v3', ''],
    want: [false, false, true],
  },
  'kurento-utils-js simulcast munging (ssrc-group:SIM, x-google-flag:conference)': {
    sdp: ['v=0', 'o=- 3 3 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
      'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=rtcp-mux',
      'a=setup:actpass', 'a=sendonly', 'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
      `a=fingerprint:${FP}`, 'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 nack pli', 'a=rtpmap:97 rtx/90000',
      'a=fmtp:97 apt=96', 'a=x-google-flag:conference', 'a=ssrc-group:SIM 11 12 13',
      'a=ssrc-group:FID 11 21', 'a=ssrc-group:FID 12 22', 'a=ssrc-group:FID 13 23',
      ...[11, 12, 13, 21, 22, 23].flatMap((s) => [`a=ssrc:${s} cname:c`, `a=ssrc:${s} msid:s v`]), ''],
    want: [false],
  },
};

for (const [name, { sdp, want }] of Object.entries(legacyOffers)) {
  h.wireTest(`legacy offer gets an answer: ${name}`, async () => {
    const ep = await fx.pipeline.create('WebRtcEndpoint');
    const offer = sdp.join('\r\n');
    const answer = await h.ok(ep, 'processOffer', offer);
    assert.match(answer, /^v=0/);
    assert.deepEqual(rejected(answer), want, `rejected m-lines of the answer:\n${answer}`);
    if (!offer.includes('a=mid:')) assert.doesNotMatch(answer, /a=mid:|a=group:/, 'no mids where the offer had none');
    assert.equal(await h.ok(ep, 'getRemoteSessionDescriptor'), offer, 'the remote descriptor is the offer as sent');
    await h.ok(ep, 'gatherCandidates');
    await h.ok(ep, 'release');
  });
}

// Two WebRtcEndpoints of the server as each other's peer, with trickle ICE between them.
async function webrtcPair(opts = {}) {
  const a = await fx.pipeline.create('WebRtcEndpoint', opts);
  const b = await fx.pipeline.create('WebRtcEndpoint', opts);
  const events = { a: [], b: [] };
  for (const [name, ep] of [['a', a], ['b', b]]) {
    ep.on('DtlsConnectionStateChange', (ev) => events[name].push(ev));
  }
  a.on('IceCandidateFound', (ev) => b.addIceCandidate(ev.candidate));
  b.on('IceCandidateFound', (ev) => a.addIceCandidate(ev.candidate));
  await h.sleep(200); // the subscriptions reach the server
  const offer = await h.ok(a, 'generateOffer');
  const answer = await h.ok(b, 'processOffer', offer);
  await h.ok(a, 'processAnswer', answer);
  await h.ok(a, 'gatherCandidates');
  await h.ok(b, 'gatherCandidates');
  return { a, b, events };
}

h.wireTest('DtlsConnectionStateChange: NEW, CONNECTING, CONNECTED, then CLOSED when the peer leaves', async () => {
  const { a, b, events } = await webrtcPair({ useDataChannels: true });
  const states = (name) => events[name].map((e) => e.state);
  await h.waitFor(() => states('a').includes('CONNECTED') && states('b').includes('CONNECTED'), 20000, 'DTLS CONNECTED on both');
  for (const name of ['a', 'b']) {
    assert.deepEqual(states(name), ['NEW', 'CONNECTING', 'CONNECTED'], `DTLS events of ${name}`);
    const ev = events[name][0];
    for (const f of ['streamId', 'componentId', 'connectionId']) assert.equal(typeof ev[f], 'string', f);
  }
  const st = await h.ok(a, 'getDtlsConnectionState');
  assert.equal(st.length, 1);
  assert.equal(st[0].state, 'CONNECTED');
  await h.ok(b, 'release');
  await h.waitFor(() => states('a').includes('CLOSED'), 20000, 'DTLS CLOSED after the peer left');
  assert.deepEqual(states('a'), ['NEW', 'CONNECTING', 'CONNECTED', 'CLOSED']);
  assert.equal((await h.ok(a, 'getDtlsConnectionState'))[0].state, 'CLOSED');
  await h.ok(a, 'release');
});

h.wireTest('getDtlsConnectionState is [] before any DTLS event', async () => {
  const ep = await fx.pipeline.create('WebRtcEndpoint');
  assert.deepEqual(await h.ok(ep, 'getDtlsConnectionState'), []);
  await h.ok(ep, 'processOffer', h.browserOffer());
  assert.deepEqual(await h.ok(ep, 'getDtlsConnectionState'), [], 'no DTLS without ICE');
  await h.ok(ep, 'release');
});

const typeOf = (s) => s.type;
function checkReport(report, ownerId, allowed) {
  assert.ok(report[ownerId], `an entry under the object id ${ownerId}: ${Object.keys(report)}`);
  assert.equal(report[ownerId].type, 'endpoint');
  assert.equal(report[ownerId].id, ownerId);
  assert.ok(Array.isArray(report[ownerId].inputLatency) && Array.isArray(report[ownerId].E2ELatency));
  for (const [key, s] of Object.entries(report)) {
    assert.equal(s.id, key, 'each entry is keyed by its id');
    assert.ok(!key.endsWith('_element') && !key.endsWith('_endpoint'), key);
    assert.ok(allowed.includes(s.type), `type ${s.type} is not one KMS sends here`);
    assert.equal(typeof s.timestampMillis, 'number');
  }
  return Object.values(report).map(typeOf);
}

h.wireTest('getStats of WebRtcEndpoint, RtpEndpoint and RecorderEndpoint: keys and types as KMS', async () => {
  const player = await fx.pipeline.create('PlayerEndpoint', { uri: `file://${fx.clip}` });
  const { a, b } = await webrtcPair({ useDataChannels: true });
  const rtpA = await fx.pipeline.create('RtpEndpoint');
  const rtpB = await fx.pipeline.create('RtpEndpoint');
  const recorder = await fx.pipeline.create('RecorderEndpoint', { uri: `file://${fx.dir}/rec.webm` });
  const offer = await h.ok(rtpA, 'generateOffer');
  await h.ok(rtpA, 'processAnswer', await h.ok(rtpB, 'processOffer', offer));
  await h.ok(player, 'connect', a);
  await h.ok(player, 'connect', rtpA);
  await h.ok(b, 'connect', recorder);
  await h.ok(recorder, 'record');
  await h.ok(player, 'play');

  const webrtcTypes = ['endpoint', 'inboundrtp', 'outboundrtp', 'datachannel', 'session'];
  const rtpTypes = ['endpoint', 'inboundrtp', 'outboundrtp'];
  let types = {};
  const deadline = Date.now() + 30000;
  for (;;) {
    types = {
      a: checkReport(await h.ok(a, 'getStats'), a.id, webrtcTypes),
      b: checkReport(await h.ok(b, 'getStats'), b.id, webrtcTypes),
      rtpA: checkReport(await h.ok(rtpA, 'getStats'), rtpA.id, rtpTypes),
      rtpB: checkReport(await h.ok(rtpB, 'getStats'), rtpB.id, rtpTypes),
      rec: checkReport(await h.ok(recorder, 'getStats'), recorder.id, ['endpoint']),
    };
    const done = types.a.includes('outboundrtp') && types.b.includes('inboundrtp') &&
      types.rtpA.includes('outboundrtp') && types.rtpB.filter((t) => t === 'inboundrtp').length === 2;
    if (done) break;
    if (Date.now() > deadline) assert.fail(`RTP stats missing: ${JSON.stringify(types)}`);
    await h.sleep(500);
  }
  assert.ok(types.a.includes('session'), 'RTCPeerConnectionStats with data channels');
  const inbound = Object.values(await h.ok(rtpB, 'getStats')).filter((s) => s.type === 'inboundrtp');
  assert.ok(inbound.every((s) => s.packetsReceived > 0 && s.bytesReceived > 0 && /^\d+$/.test(s.ssrc)), JSON.stringify(inbound));
  const video = await h.ok(rtpB, 'getStats', 'VIDEO');
  const videoIn = Object.values(video).filter((s) => s.type === 'inboundrtp');
  assert.equal(videoIn.length, 1, `getStats(VIDEO): the video stream only: ${JSON.stringify(video)}`);
  const plain = await fx.pipeline.create('RtpEndpoint');
  assert.deepEqual(Object.values(await h.ok(plain, 'getStats')).map(typeOf), ['endpoint'], 'an RtpEndpoint without media has its EndpointStats only');
  for (const o of [player, a, b, rtpA, rtpB, recorder, plain]) await h.ok(o, 'release');
});
