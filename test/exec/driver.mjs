#!/usr/bin/env node
// Test driver for the RUN executor, run as the unprivileged test user (the whole library runs in this process, so
// the rootless claim is tested end to end). argv: <config.json>. Config: { layers: [tarPath], arch, tmpDir,
// layerDir?, failAfter? (bytes), steps: [RunStep without onOutput, + abortAfterMs?] }. Prints one JSON line per event on stdout
// ({event:'probe'|'warning'|'layer'|'error'|'done'}); the commands' output goes to stderr.
import { createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const lib = await import(fileURLToPath(new URL('../../dist/index.js', import.meta.url)));
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
emit({ event: 'probe', ...(await lib.probeUserNamespaces()) });
const ac = new AbortController();
// A source that breaks after `n` bytes (a registry connection dropping mid-layer).
function failing(p, n) {
  return Readable.from(
    (async function* () {
      let seen = 0;
      for await (const c of createReadStream(p)) {
        seen += c.length;
        if (seen > n) throw new Error('connection reset mid-layer');
        yield c;
      }
    })(),
  );
}
let ws;
try {
  ws = await lib.openWorkspace({
    layers: cfg.layers.map((p) => ({
      diffId: p,
      open: async () => (cfg.failAfter ? failing(p, cfg.failAfter) : createReadStream(p)),
    })),
    arch: cfg.arch ?? 'amd64',
    tmpDir: cfg.tmpDir,
    layerDir: cfg.layerDir,
    signal: ac.signal,
    onWarning: (code, message) => emit({ event: 'warning', code, message }),
  });
  for (const step of cfg.steps) {
    if (step.abortAfterMs) setTimeout(() => ac.abort(), step.abortAfterMs);
    try {
      const r = await ws.run({ ...step, onOutput: (c) => process.stderr.write(c) });
      emit({ event: 'layer', label: step.label, ...r });
    } catch (e) {
      emit({ event: 'error', label: step.label, code: e.code, message: e.message, hint: e.hint });
      if (e.code !== 'ERR_RUN_FAILED') break;
    }
  }
} catch (e) {
  emit({ event: 'error', code: e.code, message: e.message, hint: e.hint });
} finally {
  await ws?.close();
}
emit({ event: 'done' });
