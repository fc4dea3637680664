'use strict';
// Application server of the browser end-to-end tests (test/browser).
//
// This is the server logic of the official Kurento Node tutorials
// (Kurento/kurento-tutorial-node: kurento-hello-world/server.js and
// kurento-one2one-call/server.js), trimmed to what the tests need: no express, no https,
// no sessions. The browser pages (public/) talk to it over a WebSocket with the tutorials'
// messages; it drives the media server with the real kurento-client 7.3.0 from npm, in
// callback style as the tutorials do (so server errors are seen, see PROTOCOL.md §8).
//
//   node server.js --ws_uri=ws://127.0.0.1:8888/kurento [--port=0]
//
// Prints `LISTENING <port>` on stdout once the WebSocket server is up; every JSON-RPC message
// of kurento-client is logged as `kc→ …` / `kc← …`, the tutorial messages as `app→ …` / `app← …`.
// WebSocket paths: /helloworld, /one2one.

// kurento-client 7.3.0 calls require('domain').Domain without `new`, which Node 20 refuses in
// transactions; the tutorials' flows use none, but clear it as test/node/preload.js does.
delete require('domain').Domain;

const http = require('http');
const WebSocket = require('ws');
const kurento = require('kurento-client');
const JsonRPC = require('kurento-jsonrpc').packers.JsonRPC;

function arg(name, def) {
  const p = `--${name}=`;
  const a = process.argv.find((x) => x.startsWith(p));
  return a ? a.slice(p.length) : def;
}
const wsUri = arg('ws_uri', 'ws://127.0.0.1:8888/kurento');
const port = Number(arg('port', '0'));

const t0 = Date.now();
function log(...args) {
  const ms = String(Date.now() - t0).padStart(6);
  console.log(`${ms}ms ${args.join(' ')}`);
}
const clip = (s) => (s.length > 600 ? `${s.slice(0, 600)}…(${s.length} chars)` : s);

// Wire log of kurento-client's JSON-RPC messages.
{
  const origPack = JsonRPC.pack;
  const origUnpack = JsonRPC.unpack;
  JsonRPC.pack = function (...a) {
    const s = origPack.apply(this, a);
    log('kc→', clip(s));
    return s;
  };
  JsonRPC.unpack = function (message) {
    log('kc←', clip(typeof message === 'string' ? message : JSON.stringify(message)));
    return origUnpack.call(this, message);
  };
}

// An exception in a kurento-client callback would otherwise leave the page waiting: tell every
// page about it.
const sockets = new Set();
function crashed(what, err) {
  const text = `${what}: ${(err && err.stack) || err}`;
  log(text);
  for (const ws of sockets) send(ws, { id: 'error', message: `application server ${text}` });
}
process.on('uncaughtException', (err) => crashed('uncaughtException', err));
process.on('unhandledRejection', (err) => crashed('unhandledRejection', err));

function errText(error) {
  if (!error) return '';
  if (typeof error === 'string') return error;
  const parts = [error.message || String(error)];
  if (error.code !== undefined) parts.push(`code=${error.code}`);
  if (error.data !== undefined) parts.push(`data=${JSON.stringify(error.data)}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------
// Kurento client (one per process, as in the tutorials).

let kurentoClient = null;
function getKurentoClient(callback) {
  if (kurentoClient !== null) return callback(null, kurentoClient);
  kurento(wsUri, { failAfter: 3, request_timeout: 8000 }, (error, _kurentoClient) => {
    if (error) {
      log(`Could not find media server at address ${wsUri}`);
      return callback(`Could not find media server at address ${wsUri}. Exiting with error ${errText(error)}`);
    }
    kurentoClient = _kurentoClient;
    callback(null, kurentoClient);
  });
}

function send(ws, message) {
  const text = JSON.stringify(message);
  log('app→', clip(text));
  if (ws.readyState === WebSocket.OPEN) ws.send(text);
}

// ---------------------------------------------------------------------------------------
// hello-world (kurento-hello-world/server.js)

let nextSessionId = 1;

function helloWorld(ws) {
  const sessionId = nextSessionId++;
  const session = { pipeline: null, webRtcEndpoint: null, candidatesQueue: [] };

  ws.on('close', () => stop(session));
  ws.on('message', (_message) => {
    const message = JSON.parse(_message);
    log(`app← [hello-world ${sessionId}]`, clip(String(_message)));
    switch (message.id) {
      case 'start':
        start(session, ws, message.sdpOffer, (error, sdpAnswer) => {
          if (error) return send(ws, { id: 'error', message: errText(error) });
          send(ws, { id: 'startResponse', sdpAnswer });
        });
        break;
      case 'stop':
        stop(session);
        break;
      case 'onIceCandidate':
        onIceCandidate(session, message.candidate);
        break;
      default:
        send(ws, { id: 'error', message: `Invalid message ${message.id}` });
    }
  });
}

function start(session, ws, sdpOffer, callback) {
  getKurentoClient((error, client) => {
    if (error) return callback(error);
    client.create('MediaPipeline', (error, pipeline) => {
      if (error) return callback(`create MediaPipeline: ${errText(error)}`);
      session.pipeline = pipeline;
      pipeline.create('WebRtcEndpoint', (error, webRtcEndpoint) => {
        if (error) { stop(session); return callback(`create WebRtcEndpoint: ${errText(error)}`); }
        session.webRtcEndpoint = webRtcEndpoint;
        while (session.candidatesQueue.length) {
          const candidate = session.candidatesQueue.shift();
          webRtcEndpoint.addIceCandidate(candidate, logError('addIceCandidate (queued)'));
        }
        webRtcEndpoint.on('IceCandidateFound', (event) => {
          const candidate = kurento.getComplexType('IceCandidate')(event.candidate);
          send(ws, { id: 'iceCandidate', candidate });
        });
        webRtcEndpoint.connect(webRtcEndpoint, (error) => {
          if (error) { stop(session); return callback(`connect: ${errText(error)}`); }
          webRtcEndpoint.processOffer(sdpOffer, (error, sdpAnswer) => {
            if (error) { stop(session); return callback(`processOffer: ${errText(error)}`); }
            callback(null, sdpAnswer);
          });
          webRtcEndpoint.gatherCandidates((error) => {
            if (error) { stop(session); return callback(`gatherCandidates: ${errText(error)}`); }
          });
        });
      });
    });
  });
}

function onIceCandidate(session, _candidate) {
  const candidate = kurento.getComplexType('IceCandidate')(_candidate);
  if (session.webRtcEndpoint) {
    session.webRtcEndpoint.addIceCandidate(candidate, logError('addIceCandidate'));
  } else {
    session.candidatesQueue.push(candidate);
  }
}

function stop(session) {
  if (session.pipeline) {
    log('Releasing pipeline');
    session.pipeline.release(logError('release'));
  }
  session.pipeline = null;
  session.webRtcEndpoint = null;
  session.candidatesQueue = [];
}

function logError(what) {
  return (error) => { if (error) log(`ERROR ${what}: ${errText(error)}`); };
}

// ---------------------------------------------------------------------------------------
// one2one-call (kurento-one2one-call/server.js)

const registry = new Map(); // name -> user
let nextUserId = 1;
const pipelines = new Map(); // user id -> CallMediaPipeline

class UserSession {
  constructor(id, name, ws) {
    this.id = id;
    this.name = name;
    this.ws = ws;
    this.peer = null;
    this.sdpOffer = null;
    this.candidatesQueue = [];
  }
  sendMessage(message) { send(this.ws, message); }
}

class CallMediaPipeline {
  constructor() {
    this.pipeline = null;
    this.webRtcEndpoint = {};
  }

  createPipeline(callerId, calleeId, callback) {
    getKurentoClient((error, client) => {
      if (error) return callback(error);
      client.create('MediaPipeline', (error, pipeline) => {
        if (error) return callback(`create MediaPipeline: ${errText(error)}`);
        this.pipeline = pipeline;
        const makeEndpoint = (userId, next) => {
          pipeline.create('WebRtcEndpoint', (error, ep) => {
            if (error) return next(`create WebRtcEndpoint: ${errText(error)}`);
            const user = userById(userId);
            while (user.candidatesQueue.length) {
              ep.addIceCandidate(user.candidatesQueue.shift(), logError('addIceCandidate (queued)'));
            }
            ep.on('IceCandidateFound', (event) => {
              const candidate = kurento.getComplexType('IceCandidate')(event.candidate);
              user.sendMessage({ id: 'iceCandidate', candidate });
            });
            this.webRtcEndpoint[userId] = ep;
            next(null, ep);
          });
        };
        makeEndpoint(callerId, (error, callerEp) => {
          if (error) { pipeline.release(); return callback(error); }
          makeEndpoint(calleeId, (error, calleeEp) => {
            if (error) { pipeline.release(); return callback(error); }
            callerEp.connect(calleeEp, (error) => {
              if (error) { pipeline.release(); return callback(`connect caller→callee: ${errText(error)}`); }
              calleeEp.connect(callerEp, (error) => {
                if (error) { pipeline.release(); return callback(`connect callee→caller: ${errText(error)}`); }
                callback(null);
              });
            });
          });
        });
      });
    });
  }

  generateSdpAnswer(id, sdpOffer, callback) {
    const ep = this.webRtcEndpoint[id];
    ep.processOffer(sdpOffer, (error, answer) => {
      if (error) return callback(`processOffer: ${errText(error)}`);
      callback(null, answer);
    });
    ep.gatherCandidates((error) => { if (error) return callback(`gatherCandidates: ${errText(error)}`); });
  }

  release() {
    if (this.pipeline) this.pipeline.release(logError('release'));
    this.pipeline = null;
  }
}

const usersById = new Map();
function userById(id) { return usersById.get(id); }

function one2one(ws) {
  const id = nextUserId++;
  ws.on('close', () => { stopCall(id); const u = usersById.get(id); if (u) registry.delete(u.name); usersById.delete(id); });
  ws.on('message', (_message) => {
    const message = JSON.parse(_message);
    log(`app← [one2one ${id}]`, clip(String(_message)));
    switch (message.id) {
      case 'register': {
        const name = message.name;
        if (!name || registry.has(name)) {
          return send(ws, { id: 'registerResponse', response: 'rejected ', message: `bad or taken name ${name}` });
        }
        const user = new UserSession(id, name, ws);
        registry.set(name, user);
        usersById.set(id, user);
        send(ws, { id: 'registerResponse', response: 'accepted' });
        break;
      }
      case 'call': call(id, message.to, message.from, message.sdpOffer); break;
      case 'incomingCallResponse': incomingCallResponse(id, message.from, message.callResponse, message.sdpOffer, ws); break;
      case 'stop': stopCall(id); break;
      case 'onIceCandidate': onUserIceCandidate(id, message.candidate); break;
      default: send(ws, { id: 'error', message: `Invalid message ${message.id}` });
    }
  });
}

function call(callerId, to, from, sdpOffer) {
  const caller = userById(callerId);
  const callee = registry.get(to);
  if (!callee) {
    return caller.sendMessage({ id: 'callResponse', response: 'rejected: ', message: `Unknown user ${to}` });
  }
  caller.sdpOffer = sdpOffer;
  callee.peer = from;
  caller.peer = to;
  callee.sendMessage({ id: 'incomingCall', from });
}

function incomingCallResponse(calleeId, from, callResponse, calleeSdp, ws) {
  const callee = userById(calleeId);
  const caller = registry.get(from);
  if (!caller || !callee) return send(ws, { id: 'error', message: 'unknown peer' });
  if (callResponse !== 'accept') {
    return caller.sendMessage({ id: 'callResponse', response: 'rejected', message: 'user declined' });
  }
  const onError = (error) => {
    const message = errText(error);
    log('ERROR one2one:', message);
    caller.sendMessage({ id: 'callResponse', response: 'rejected', message });
    callee.sendMessage({ id: 'stopCommunication', message });
  };
  const pipeline = new CallMediaPipeline();
  pipelines.set(caller.id, pipeline);
  pipelines.set(callee.id, pipeline);
  pipeline.createPipeline(caller.id, callee.id, (error) => {
    if (error) return onError(error);
    pipeline.generateSdpAnswer(caller.id, caller.sdpOffer, (error, callerSdpAnswer) => {
      if (error) return onError(error);
      pipeline.generateSdpAnswer(callee.id, calleeSdp, (error, calleeSdpAnswer) => {
        if (error) return onError(error);
        callee.sendMessage({ id: 'startCommunication', sdpAnswer: calleeSdpAnswer });
        caller.sendMessage({ id: 'callResponse', response: 'accepted', sdpAnswer: callerSdpAnswer });
      });
    });
  });
}

function onUserIceCandidate(userId, _candidate) {
  const candidate = kurento.getComplexType('IceCandidate')(_candidate);
  const user = userById(userId);
  const p = pipelines.get(userId);
  if (p && p.webRtcEndpoint && p.webRtcEndpoint[userId]) {
    p.webRtcEndpoint[userId].addIceCandidate(candidate, logError('addIceCandidate'));
  } else if (user) {
    user.candidatesQueue.push(candidate);
  }
}

function stopCall(id) {
  const p = pipelines.get(id);
  if (!p) return;
  pipelines.delete(id);
  p.release();
  const user = userById(id);
  const peer = user && user.peer ? registry.get(user.peer) : null;
  if (peer) {
    pipelines.delete(peer.id);
    peer.sendMessage({ id: 'stopCommunication', message: 'remote user hanged out' });
  }
}

// ---------------------------------------------------------------------------------------

const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocket.Server({ server });
wss.on('connection', (ws, req) => {
  sockets.add(ws);
  ws.on('close', () => sockets.delete(ws));
  ws.on('error', (err) => log('ws error:', err && err.message));
  if (req.url.startsWith('/helloworld')) return helloWorld(ws);
  if (req.url.startsWith('/one2one')) return one2one(ws);
  log('unknown path', req.url);
  ws.close();
});
server.listen(port, '127.0.0.1', () => {
  log(`kurento ws_uri ${wsUri}`);
  console.log(`LISTENING ${server.address().port}`);
});
