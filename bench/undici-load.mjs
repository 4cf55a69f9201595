/**
 * `node bench/undici-load.mjs [N]` (after `npm run build`): the start-up cost src/http/undici.ts saves. Paired runs
 * of a fresh `node --liftoff-only` (as the CLI) that loads undici's Agent, EnvHttpProxyAgent and request either
 * through our direct file imports (dist/http/undici.js) or through undici's public index; prints the medians of
 * CPU time (user+sys), peak RSS and wall time. Needs GNU time (/usr/bin/time).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const variants = {
  'direct files': "await import('./dist/http/undici.js')",
  'public index': "const u = await import('undici'); void [u.Agent, u.EnvHttpProxyAgent, u.request]",
};
const n = Number(process.argv[2] ?? 20);
const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let i = 0; i < n; i++) {
  for (const [name, code] of Object.entries(variants)) {
    const args = ['-f', '%U %S %M %e', process.execPath, '--liftoff-only', '--input-type=module', '-e', code];
    const r = spawnSync('/usr/bin/time', args, { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    const [u, s, kb, e] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    runs[name].push({ cpu: (u + s) * 1000, rss: kb / 1024, wall: e * 1000 });
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [name, r] of Object.entries(runs)) {
  const cpu = Math.round(median(r.map((x) => x.cpu)));
  const rss = median(r.map((x) => x.rss)).toFixed(1);
  console.log(`${name}: cpu ${cpu} ms, peak rss ${rss} MiB, wall ${Math.round(median(r.map((x) => x.wall)))} ms`);
}
