'use strict';
// 24. Stored bandwidth and packet-size settings are in effect, as a plain RTP peer (a UDP socket of
//     this test) sees them through an RtpEndpoint:
//     - setMtu(500): no RTP packet above 500 bytes from a PlayerEndpoint whose VP8 comes in
//       packets of up to 1200 (the default mtu lets those through);
//     - setMaxVideoRecvBandwidth / setRembParams: b=AS in the answer, the first REMB the peer gets
//       is rembOnConnect and none is above maxVideoRecvBandwidth.

const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

// Keyframes of a detailed picture: VP8 packets of the player's full 1200 bytes.
const fx = useServer({
  pipeline: true,
  tmpDir: 'bandwidth-',
  prepare: (f) => {
    f.clip = path.join(f.dir, 'clip.webm');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15', '-t', '4',
      '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1500k', '-g', '15', f.clip]);
  },
});

const isRTCP = (b) => b.length >= 2 && b[1] >= 192 && b[1] <= 223;

/** A UDP socket on loopback standing for an RTP peer: it keeps RTP sizes and REMB bitrates. */
async function rtpPeer() {
  const sock = dgram.createSocket('udp4');
  const peer = { sock, sizes: [], rembs: [] };
  sock.on('message', (b) => {
    if (!isRTCP(b)) {
      peer.sizes.push(b.length);
      return;
    }
    // A compound packet: look for PSFB (206) FMT 15 with the 'REMB' identifier.
    for (let off = 0; off + 4 <= b.length;) {
      const len = (b.readUInt16BE(off + 2) + 1) * 4;
      if (b[off + 1] === 206 && (b[off] & 0x1f) === 15 && b.toString('latin1', off + 12, off + 16) === 'REMB') {
        const exp = b[off + 17] >> 2;
        const mantissa = ((b[off + 17] & 3) << 16) | b.readUInt16BE(off + 18);
        peer.rembs.push(mantissa * 2 ** exp);
      }
      off += len;
    }
  });
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  peer.port = sock.address().port;
  return peer;
}

const offerTo = (port, dir, extra = []) => ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  `m=video ${port} RTP/AVPF 96`, 'a=rtpmap:96 VP8/90000', ...extra, 'a=rtcp-mux', `a=${dir}`, ''].join('\r\n');

h.wireTest('setMtu: the RTP peer of an RtpEndpoint receives no packet above the mtu', async () => {
  const player = await fx.pipeline.create('PlayerEndpoint', { uri: `file://${fx.clip}` });
  const small = await fx.pipeline.create('RtpEndpoint');
  const normal = await fx.pipeline.create('RtpEndpoint');
  await h.ok(small, 'setMtu', 500);
  assert.equal(await h.ok(small, 'getMtu'), 500);
  const peers = { small: await rtpPeer(), normal: await rtpPeer() };
  try {
    await h.ok(small, 'processOffer', offerTo(peers.small.port, 'recvonly'));
    await h.ok(normal, 'processOffer', offerTo(peers.normal.port, 'recvonly'));
    await h.ok(player, 'connect', small, 'VIDEO');
    await h.ok(player, 'connect', normal, 'VIDEO');
    await h.ok(player, 'play');
    await h.waitFor(() => peers.small.sizes.length >= 300 && peers.normal.sizes.length >= 100, 30000, 'video at both peers');
    const largest = (p) => Math.max(...p.sizes);
    assert.ok(largest(peers.small) <= 500, `mtu 500: the peer received a ${largest(peers.small)}-byte packet`);
    assert.ok(largest(peers.normal) > 500, `default mtu: packets of ${largest(peers.normal)} bytes at most, want the player's larger ones`);
  } finally {
    for (const p of Object.values(peers)) p.sock.close();
    for (const o of [player, small, normal]) await h.ok(o, 'release');
  }
});

h.wireTest('maxVideoRecvBandwidth and rembParams: b=AS in the answer, REMBs from rembOnConnect within the bound', async () => {
  const rtp = await fx.pipeline.create('RtpEndpoint');
  await h.ok(rtp, 'setMaxVideoRecvBandwidth', 400);
  await h.ok(rtp, 'setRembParams', { rembOnConnect: 250000 });
  assert.equal((await h.ok(rtp, 'getRembParams')).rembOnConnect, 250000);
  const peer = await rtpPeer();
  let timer;
  try {
    const answer = await h.ok(rtp, 'processOffer', offerTo(peer.port, 'sendonly', ['a=rtcp-fb:96 goog-remb']));
    assert.match(answer, /\r\nb=AS:400\r\n/, answer);
    const port = Number(/m=video (\d+) /.exec(answer)[1]);
    // 1000-byte VP8 packets every 10 ms: 800 kbit/s, twice maxVideoRecvBandwidth.
    let seq = 0;
    const pkt = Buffer.alloc(1012);
    pkt[0] = 0x80;
    pkt[1] = 0x80 | 96;
    pkt.writeUInt32BE(77, 8);
    pkt[12] = 0x10;
    timer = setInterval(() => {
      seq = (seq + 1) & 0xffff;
      pkt.writeUInt16BE(seq, 2);
      pkt.writeUInt32BE((seq * 900) >>> 0, 4);
      peer.sock.send(pkt, port, '127.0.0.1');
    }, 10);
    await h.waitFor(() => peer.rembs.length >= 4, 30000, 'four REMBs');
    assert.equal(peer.rembs[0], 250000, `REMBs ${peer.rembs}: the first is not rembOnConnect`);
    assert.ok(peer.rembs.every((r) => r <= 400000), `REMBs ${peer.rembs}: above maxVideoRecvBandwidth 400 kbit/s`);
    assert.ok(peer.rembs.some((r) => r !== 250000), `REMBs ${peer.rembs}: never follow what arrives`);
  } finally {
    clearInterval(timer);
    peer.sock.close();
    await h.ok(rtp, 'release');
  }
});
