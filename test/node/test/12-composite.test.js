'use strict';
// 12. Composite as applications build it with kurento-client: createHubPort, WebRtcEndpoints
//     connected to their ports both ways, getChildren of the pipeline and of the composite, release of everything.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

h.wireTest('Composite.createHubPort gives ports that WebRtcEndpoints connect to both ways', async () => {
  const p = await fx.client.create('MediaPipeline');
  const composite = await p.create('Composite');
  const ports = [];
  for (let i = 0; i < 3; i++) {
    const ep = await p.create('WebRtcEndpoint');
    const port = await h.ok(composite, 'createHubPort');
    await h.ok(ep, 'connect', port);
    await h.ok(port, 'connect', ep);
    ports.push({ ep, port });
  }
  const sinks = await h.ok(ports[0].port, 'getSinkConnections');
  assert.deepEqual([...new Set(sinks.map((c) => c.sink.id || c.sink))], [ports[0].ep.id], `port 0 feeds its endpoint: ${JSON.stringify(sinks)}`);
  const children = await h.ok(p, 'getChildren');
  assert.equal(children.length, 4, `the pipeline has the composite and 3 endpoints: ${children.map((c) => c.id)}`);
  const portsOf = await h.ok(composite, 'getChildren');
  assert.deepEqual(portsOf.map((c) => c.id).sort(), ports.map((x) => x.port.id).sort(), 'the ports are the composite\'s children');
  await h.ok(ports[1].port, 'release');
  await h.ok(composite, 'release');
  await h.ok(p, 'release');
});
