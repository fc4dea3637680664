'use strict';
// 20. Introspection and the hubs a client sees: getKmd in KMS's .kmd.json format (checked against the
//     kmd files kurento-client itself ships), getGstreamerDot, and the Mixer hub.

const assert = require('node:assert/strict');
const h = require('../lib/helpers');
const { useServer } = require('../lib/fixture');

const fx = useServer();

const byName = (list) => Object.fromEntries((list || []).map((x) => [x.name, x]));
const paramsOf = (list) => (list || []).map((p) => `${p.name}:${p.type}`);

for (const module of ['core', 'elements', 'filters']) {
  h.wireTest(`getKmd('${module}') has the structure and members of kurento-client's ${module}.kmd.json`, async () => {
    // The kmd kurento-client-<module> 7.3.0 was generated from: the reference of the format.
    const ref = require(`kurento-client-${module}/src/${module}.kmd.json`);
    const sm = await fx.client.getServerManager();
    const kmd = JSON.parse(await h.ok(sm, 'getKmd', module));
    assert.equal(kmd.name, module);
    for (const key of ['version', 'kurentoVersion', 'imports', 'code', 'remoteClasses', 'complexTypes', 'events']) {
      assert.ok(key in kmd, `kmd lacks "${key}"`);
    }
    assert.equal(kmd.code.api.js.nodeName, ref.code.api.js.nodeName);
    if (module !== 'core') {
      assert.ok(kmd.imports.some((i) => i.name === 'core' && typeof i.version === 'string'), `imports core: ${JSON.stringify(kmd.imports)}`);
    }

    const ours = byName(kmd.remoteClasses);
    for (const rc of ref.remoteClasses) {
      const c = ours[rc.name];
      assert.ok(c, `class ${rc.name} missing`);
      assert.equal(typeof c.doc, 'string', `${rc.name}.doc`);
      assert.ok(c.doc.length > 0, `${rc.name} has documentation`);
      assert.equal(c.extends, rc.extends, `${rc.name}.extends`);
      assert.equal(Boolean(c.abstract), Boolean(rc.abstract), `${rc.name}.abstract`);
      if (rc.constructor && rc.constructor.params) {
        assert.deepEqual(paramsOf(c.constructor.params), paramsOf(rc.constructor.params), `${rc.name} constructor params`);
      }
      const methods = byName(c.methods);
      for (const rm of rc.methods || []) {
        const m = methods[rm.name];
        assert.ok(m, `${rc.name}.${rm.name} missing`);
        assert.deepEqual(paramsOf(m.params), paramsOf(rm.params), `${rc.name}.${rm.name} params`);
        assert.equal(m.return && m.return.type, rm.return && rm.return.type, `${rc.name}.${rm.name} return type`);
        assert.equal(typeof m.doc, 'string');
      }
      const props = byName(c.properties);
      for (const rp of rc.properties || []) {
        assert.ok(props[rp.name], `${rc.name}.${rp.name} property missing`);
        assert.equal(props[rp.name].type, rp.type, `${rc.name}.${rp.name} type`);
        assert.equal(Boolean(props[rp.name].readOnly), Boolean(rp.readOnly), `${rc.name}.${rp.name} readOnly`);
      }
      assert.deepEqual([...(c.events || [])].sort(), [...(rc.events || [])].sort(), `${rc.name} events`);
    }

    const types = byName(kmd.complexTypes);
    for (const rt of ref.complexTypes) {
      const t = types[rt.name];
      assert.ok(t, `complex type ${rt.name} missing`);
      assert.equal(t.typeFormat, rt.typeFormat, `${rt.name}.typeFormat`);
      if (rt.typeFormat === 'ENUM') assert.deepEqual(t.values, rt.values, `${rt.name} values`);
      else assert.deepEqual(paramsOf(t.properties), paramsOf(rt.properties), `${rt.name} properties`);
    }
    const events = byName(kmd.events);
    for (const re of ref.events) {
      const e = events[re.name];
      assert.ok(e, `event ${re.name} missing`);
      assert.equal(e.extends, re.extends, `${re.name}.extends`);
      assert.deepEqual(paramsOf(e.properties), paramsOf(re.properties), `${re.name} properties`);
    }
  });
}

h.wireTest('getGstreamerDot: a pipeline, an element and a hub give DOT graphs; details are accepted', async () => {
  const p = await fx.client.create('MediaPipeline');
  const ep = await p.create('WebRtcEndpoint');
  const filter = await p.create('GStreamerFilter', { command: 'videoflip method=horizontal-flip' });
  await h.ok(ep, 'connect', filter);
  const whole = await h.ok(p, 'getGstreamerDot');
  assert.match(whole, /^digraph /);
  assert.ok(whole.includes(ep.id) && whole.includes(filter.id), 'the pipeline graph holds both elements');
  assert.ok(whole.includes('GstVideoFlip'), 'the filter\'s GStreamer pipeline is in it');
  const own = await h.ok(filter, 'getGstreamerDot', 'SHOW_MEDIA_TYPE');
  assert.match(own, /^digraph /);
  assert.ok(own.includes('GstVideoFlip'));
  assert.ok(!own.includes('pion PeerConnection'), 'an element\'s graph is its own part');
  const mixer = await p.create('Mixer');
  assert.match(await h.ok(mixer, 'getGstreamerDot'), /^digraph /);
  await h.ok(mixer, 'dumpGstreamerDot');
  await h.ok(p, 'release');
});

h.wireTest('Mixer: created, ports connected per media type; VIDEO disconnect and DATA refused as KMS does', async () => {
  const p = await fx.client.create('MediaPipeline');
  const mixer = await p.create('Mixer');
  const a = await h.ok(mixer, 'createHubPort');
  const b = await h.ok(mixer, 'createHubPort');
  await h.ok(mixer, 'connect', 'AUDIO', a, b);
  await h.ok(mixer, 'connect', 'VIDEO', a, b);
  await h.ok(mixer, 'disconnect', 'AUDIO', a, b);
  const video = await h.cb(mixer, 'disconnect', 'VIDEO', a, b);
  assert.ok(video.err, 'disconnect VIDEO fails (KMS: not implemented yet)');
  assert.equal(video.err.code, 40005, `${video.err.code} ${video.err.message}`);
  const data = await h.cb(mixer, 'connect', 'DATA', a, b);
  assert.ok(data.err, 'connect DATA fails');
  assert.equal(data.err.code, 40005, `${data.err.code} ${data.err.message}`);
  const other = await (await fx.client.create('MediaPipeline')).create('Mixer');
  const foreign = await h.ok(other, 'createHubPort');
  const bad = await h.cb(mixer, 'connect', 'AUDIO', foreign, b);
  assert.ok(bad.err, 'a port of another mixer is refused');
  await h.ok(p, 'release');
});
