'use strict';
// 25. MediaElement setVideoFormat/setAudioFormat and MediaPipeline latencyStats through
//     kurento-client 7.3:
//     - a PlayerEndpoint playing VP8 + Opus, told setVideoFormat({H264, 15/1}) and
//       setAudioFormat({PCMU}), feeds an RtpEndpoint whose peer (a UDP socket here) offered VP8
//       before H264 and Opus before PCMU: the answer takes H264 and PCMU and the peer receives
//       H.264 (payload type 103, IDR NAL units) and PCMU (payload type 0) only;
//     - with latencyStats on, getStats of that RtpEndpoint lists inputLatency and E2ELatency
//       averages between 0 and 1 s (nanoseconds); off, both lists are empty.

const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const h = require('../lib/helpers');
const { useServer, avClip } = require('../lib/fixture');

const fx = useServer({ pipeline: true, tmpDir: 'formats-', prepare: (f) => { f.clip = avClip(f.dir); } });

// rtpPeer is a UDP socket on loopback counting the RTP packets it receives by payload type.
async function rtpPeer() {
  const sock = dgram.createSocket('udp4');
  const peer = { sock, pts: {}, idr: 0 };
  sock.on('message', (b) => {
    if (b.length < 14 || (b[0] >> 6) !== 2) return;
    const pt = b[1] & 0x7f;
    peer.pts[pt] = (peer.pts[pt] || 0) + 1;
    const off = 12 + 4 * (b[0] & 0x0f) + ((b[0] & 0x10) ? 4 + 4 * b.readUInt16BE(12 + 4 * (b[0] & 0x0f) + 2) : 0);
    const nal = b[off] & 0x1f;
    if (nal === 5 || (nal === 28 && (b[off + 1] & 0x1f) === 5)) peer.idr++;
  });
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  peer.port = sock.address().port;
  return peer;
}

h.wireTest('setVideoFormat(H264) and setAudioFormat(PCMU): the RtpEndpoint peer receives H264 and PCMU; latencyStats fill getStats', async () => {
  const player = await fx.pipeline.create('PlayerEndpoint', { uri: `file://${fx.clip}` });
  const errors = h.collect(player, 'Error');
  await h.ok(player, 'setVideoFormat', { codec: 'H264', framerate: { numerator: 15, denominator: 1 } });
  await h.ok(player, 'setAudioFormat', { codec: 'PCMU', bitrate: 64000 });
  const rtp = await fx.pipeline.create('RtpEndpoint');
  await h.ok(player, 'connect', rtp);
  const audio = await rtpPeer();
  const video = await rtpPeer();
  try {
    const offer = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio ${audio.port} RTP/AVP 111 0`, 'a=rtpmap:111 opus/48000/2', 'a=rtpmap:0 PCMU/8000', 'a=recvonly',
      `m=video ${video.port} RTP/AVP 96 103`, 'a=rtpmap:96 VP8/90000', 'a=rtpmap:103 H264/90000',
      'a=fmtp:103 packetization-mode=1;profile-level-id=42e01f', 'a=recvonly', ''].join('\r\n');
    const answer = await h.ok(rtp, 'processOffer', offer);
    assert.match(answer, /H264\/90000/);
    assert.match(answer, /PCMU\/8000/);
    await h.ok(player, 'play');
    await h.waitFor(() => video.idr > 0 && (video.pts[103] || 0) > 50 && (audio.pts[0] || 0) > 50, 30000,
      'H.264 keyframes and PCMU at the RTP peer');
    assert.deepEqual(Object.keys(video.pts), ['103'], `video payload types ${JSON.stringify(video.pts)}`);
    assert.deepEqual(Object.keys(audio.pts), ['0'], `audio payload types ${JSON.stringify(audio.pts)}`);
    assert.equal(errors.length, 0, `no Error event: ${JSON.stringify(errors)}`);

    const own = async () => (await h.ok(rtp, 'getStats'))[rtp.id];
    assert.equal(await h.ok(fx.pipeline, 'getLatencyStats'), false);
    let st = await own();
    assert.deepEqual([st.inputLatency, st.E2ELatency], [[], []], 'latencyStats off: empty lists');
    await h.ok(fx.pipeline, 'setLatencyStats', true);
    const plausible = (list) => list.length > 0 && list.every((l) => l.avg > 0 && l.avg < 1e9 &&
      ['AUDIO', 'VIDEO'].includes(l.type) && typeof l.name === 'string' && l.name !== '');
    const deadline = Date.now() + 20000;
    for (st = await own(); !(plausible(st.inputLatency) && plausible(st.E2ELatency)); st = await own()) {
      if (Date.now() > deadline) assert.fail(`latency lists in getStats: ${JSON.stringify(st)}`);
      await h.sleep(200);
    }
    await h.ok(fx.pipeline, 'setLatencyStats', false);
    st = await own();
    assert.deepEqual([st.inputLatency, st.E2ELatency], [[], []], 'latencyStats off again: empty lists');
  } finally {
    audio.sock.close();
    video.sock.close();
  }
  for (const o of [player, rtp]) await h.ok(o, 'release');
});
