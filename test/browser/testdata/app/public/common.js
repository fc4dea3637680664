'use strict';
// Shared by the test pages: reporting to the Go test (POST /report on the page's origin,
// which is the test's HTTP server), console forwarding and a getStats() summary.
//
// Report body: {run, kind, data}; kinds: log (console and page messages), error (the flow
// failed: the test stops at once), sdp (descriptions, for failure reports), stats
// ({<label>: summary} every 500 ms).

const params = new URLSearchParams(location.search);
const RUN = params.get('run') || '';
const t0 = performance.now();

function report(kind, data) {
  const body = JSON.stringify({ run: RUN, kind, data });
  return fetch('/report', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    .catch(() => {});
}

function fmt(a) {
  if (a instanceof Error) return `${a.name}: ${a.message}`;
  if (typeof a === 'string') return a;
  try { return JSON.stringify(a); } catch (_) { return String(a); }
}

for (const level of ['log', 'info', 'warn', 'error']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    orig(...args);
    const ms = String(Math.round(performance.now() - t0)).padStart(6);
    report('log', `${ms}ms ${level}: ${args.map(fmt).join(' ')}`);
  };
}
window.addEventListener('error', (e) => fail(`uncaught: ${e.message} (${e.filename}:${e.lineno})`));
window.addEventListener('unhandledrejection', (e) => fail(`unhandled rejection: ${fmt(e.reason)}`));

let failed = false;
function fail(message) {
  console.error(message);
  if (!failed) { failed = true; report('error', String(message)); }
}

// Summary of one RTCPeerConnection's stats: inbound/outbound RTP per kind and the selected
// candidate pair.
async function summarize(pc) {
  const stats = await pc.getStats();
  const byId = new Map();
  stats.forEach((s) => byId.set(s.id, s));
  const out = {
    signalingState: pc.signalingState,
    iceConnectionState: pc.iceConnectionState,
    iceGatheringState: pc.iceGatheringState,
    connectionState: pc.connectionState,
    inbound: {},
    outbound: {},
    pair: null,
  };
  const codec = (s) => { const c = s.codecId && byId.get(s.codecId); return c ? c.mimeType : ''; };
  stats.forEach((s) => {
    const kind = s.kind || s.mediaType;
    if (s.type === 'inbound-rtp') {
      const prev = out.inbound[kind];
      const cur = {
        ssrc: s.ssrc, codec: codec(s),
        packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0,
        packetsLost: s.packetsLost || 0,
      };
      if (kind === 'video') {
        Object.assign(cur, {
          framesDecoded: s.framesDecoded || 0, framesReceived: s.framesReceived || 0,
          frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
          keyFramesDecoded: s.keyFramesDecoded || 0, pliCount: s.pliCount || 0,
          nackCount: s.nackCount || 0, decoder: s.decoderImplementation || '',
        });
      }
      // Keep the busiest stream of a kind.
      if (!prev || (cur.packetsReceived > prev.packetsReceived)) out.inbound[kind] = cur;
    } else if (s.type === 'outbound-rtp') {
      const cur = {
        ssrc: s.ssrc, codec: codec(s), packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0,
      };
      if (kind === 'video') {
        Object.assign(cur, {
          framesEncoded: s.framesEncoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
          pliCount: s.pliCount || 0, nackCount: s.nackCount || 0,
          qualityLimitationReason: s.qualityLimitationReason || '',
        });
      }
      const prev = out.outbound[kind];
      if (!prev || (cur.packetsSent > prev.packetsSent)) out.outbound[kind] = cur;
    } else if (s.type === 'transport' && s.selectedCandidatePairId) {
      const p = byId.get(s.selectedCandidatePairId);
      if (p) {
        const c = (id) => {
          const x = byId.get(id);
          return x ? `${x.protocol} ${x.address || x.ip}:${x.port} ${x.candidateType}` : '';
        };
        out.pair = { state: p.state, local: c(p.localCandidateId), remote: c(p.remoteCandidateId) };
      }
      out.dtlsState = s.dtlsState;
    }
  });
  return out;
}

// Reports {label: summary} for every labelled peer connection every 500 ms.
function reportStatsForever(pcs) {
  const tick = async () => {
    const data = {};
    for (const [label, pc] of Object.entries(pcs)) {
      if (pc) {
        try { data[label] = await summarize(pc); } catch (e) { data[label] = { error: fmt(e) }; }
      }
    }
    await report('stats', data);
    setTimeout(tick, 500);
  };
  tick();
}

function logPeerConnection(label, pc) {
  pc.addEventListener('iceconnectionstatechange', () => console.log(`${label}: iceConnectionState ${pc.iceConnectionState}`));
  pc.addEventListener('connectionstatechange', () => console.log(`${label}: connectionState ${pc.connectionState}`));
  pc.addEventListener('icegatheringstatechange', () => console.log(`${label}: iceGatheringState ${pc.iceGatheringState}`));
  pc.addEventListener('track', (e) => console.log(`${label}: remote ${e.track.kind} track`));
}

// A WebSocket to the application server with the tutorials' JSON messages.
function signaling(url, label, onMessage) {
  const ws = new WebSocket(url);
  const opened = new Promise((resolve, reject) => {
    ws.onopen = () => { console.log(`${label}: signaling open ${url}`); resolve(); };
    ws.onerror = () => reject(new Error(`${label}: signaling WebSocket ${url} failed`));
  });
  ws.onclose = () => console.log(`${label}: signaling closed`);
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    const brief = { ...msg };
    if (brief.sdpAnswer) brief.sdpAnswer = `<${brief.sdpAnswer.length} chars>`;
    console.log(`${label}: app→ ${JSON.stringify(brief)}`);
    Promise.resolve(onMessage(msg)).catch((err) => fail(`${label}: handling ${msg.id}: ${fmt(err)}`));
  };
  return {
    opened,
    send(msg) {
      const brief = { ...msg };
      if (brief.sdpOffer) brief.sdpOffer = `<${brief.sdpOffer.length} chars>`;
      console.log(`${label}: app← ${JSON.stringify(brief)}`);
      ws.send(JSON.stringify(msg));
    },
  };
}

// A kurento-utils-like WebRtcPeer (sendrecv), on a plain RTCPeerConnection: generateOffer,
// processAnswer, addIceCandidate (queued until the answer is set), onicecandidate → send.
function webRtcPeer(label, stream, onIceCandidate) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  logPeerConnection(label, pc);
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  pc.onicecandidate = (e) => {
    if (e.candidate) onIceCandidate(e.candidate.toJSON());
  };
  let answered;
  const answerSet = new Promise((resolve) => { answered = resolve; });
  return {
    pc,
    async generateOffer() {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      report('sdp', { label: `${label} offer`, sdp: pc.localDescription.sdp });
      return pc.localDescription.sdp;
    },
    async processAnswer(sdp) {
      report('sdp', { label: `${label} answer`, sdp });
      await pc.setRemoteDescription({ type: 'answer', sdp });
      answered();
    },
    async addIceCandidate(candidate) {
      await answerSet;
      try {
        await pc.addIceCandidate(candidate);
      } catch (e) {
        console.error(`${label}: addIceCandidate(${JSON.stringify(candidate)}): ${fmt(e)}`);
      }
    },
  };
}
