/**
 * Where the floor of a warm-destination copy is, per image (issue #13): paired, interleaved runs of
 *   - `node -e 0`: Node's own start and exit;
 *   - `node --liftoff-only lib/warm-floor-client.mjs`: the least a Node client can do for the copy (undici alone, the
 *     same requests as ours, nothing validated or remembered; it mounts from the first build's warm-up repository);
 *   - `canvos-lite copy --all-platforms` of one or more CLI builds (`NAME=path/to/bin/canvos-lite.js`, default this
 *     checkout's);
 *   - `skopeo copy --all`.
 * One image (2 platforms × 5 layers of 64 KiB: 12 blobs; `--layers N` per platform) in a source registry; every side first copies it into its
 * own warm-up repository of the destination registry (warming canvos-lite's blob-location cache and skopeo's
 * blob-info cache), then each round copies it into a fresh repository, every blob mounted. Prints the medians of wall
 * time, client CPU (user+sys from wait4, through python3) and peak RSS, with the load average, and the requests the
 * destination saw in one more copy per side through a counting proxy (not timed). Not in run.mjs's list.
 *
 *   node bench/warm-floor.mjs [--rounds N] [--layers N] [NAME=path/to/bin/canvos-lite.js ...]   (NAME: letters, digits, _)
 */
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { addImage } from './lib/layout.mjs';
import { runMeasured } from './lib/proc.mjs';
import { startCountingProxy } from './lib/proxy.mjs';
import { startRegistry } from './lib/registry.mjs';
import { ROOT, tmp } from './lib/util.mjs';

const argv = process.argv.slice(2);
const at = argv.indexOf('--rounds');
const rounds = at >= 0 ? Number(argv[at + 1]) : 15;
const lat = argv.indexOf('--layers');
const layers = lat >= 0 ? Number(argv[lat + 1]) : 5;
const builds = argv
  .filter((a) => /^[A-Za-z_]\w*=/.test(a))
  .map((a) => ({ name: a.slice(0, a.indexOf('=')), bin: a.slice(a.indexOf('=') + 1) }));
if (!builds.length) builds.push({ name: 'canvos-lite', bin: join(ROOT, 'bin', 'canvos-lite.js') });
// GNU time reports CPU in 10 ms steps, a third of the gaps measured here: wait4's rusage (precise user+sys) instead,
// and the wall time from fork to exit (python3's own start is not counted).
const WAIT4 = [
  'import os, sys, time',
  't = time.monotonic()',
  'pid = os.fork()',
  'if pid == 0: os.execvp(sys.argv[2], sys.argv[2:])',
  '_, status, ru = os.wait4(pid, 0)',
  't = (time.monotonic() - t) * 1000',
  "open(sys.argv[1], 'w').write(f'{(ru.ru_utime + ru.ru_stime) * 1000:.2f} {ru.ru_maxrss} {t:.2f}')",
  'sys.exit(os.waitstatus_to_exitcode(status))',
].join('\n');
async function measure(cmd, args, opts) {
  const file = join(work.path, 'rusage');
  await runMeasured('python3', ['-c', WAIT4, file, cmd, ...args], opts);
  const [cpu, rssKb, ms] = (await readFile(file, 'utf8')).split(' ').map(Number);
  return { ms, cpu, rss: rssKb / 1024 };
}
const slug = (name) => name.replace(/\W+/g, '-');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const work = await tmp('warm-floor');
const src = await startRegistry();
const dst = await startRegistry();
const proxy = await startCountingProxy(dst.url);
try {
  const layout = join(work.path, 'layout');
  await addImage(layout, { tag: 'img', platforms: ['linux/amd64', 'linux/arm64'], layers, layerBytes: 64 * 1024 });
  await runMeasured('skopeo', [
    'copy',
    '--all',
    '--quiet',
    '--dest-tls-verify=false',
    `oci:${layout}:img`,
    `docker://${src.host}/bench/img:1`,
  ]);
  const env = { ...process.env, HOME: work.path };
  const from = `docker://${src.host}/bench/img:1`;
  const ours = (bin) => (to, host) => [
    process.execPath,
    [bin, 'copy', '--all-platforms', '--src-insecure', '--dest-insecure', from, `docker://${host}/${to}:1`],
  ];
  const sides = [
    { name: 'node -e 0', argsFor: () => [process.execPath, ['-e', '0']], requests: false },
    {
      name: 'undici floor client',
      argsFor: (to, host) => [
        process.execPath,
        [
          '--liftoff-only',
          join(ROOT, 'bench', 'lib', 'warm-floor-client.mjs'),
          `${src.host}/bench/img:1`,
          `${host}/${to}:1`,
          `warm/${builds[0].name}`,
        ],
      ],
    },
    ...builds.map((b) => ({ name: b.name, argsFor: ours(b.bin) })),
    {
      name: 'skopeo',
      argsFor: (to, host) => [
        'skopeo',
        [
          'copy',
          '--all',
          '--quiet',
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          from,
          `docker://${host}/${to}:1`,
        ],
      ],
    },
  ];
  // Warm-up: every tool's memory of where the blobs are (the floor client mounts from canvos-lite's copy).
  // Both tools key their memory by registry host: warm the registry under both names (direct and the proxy).
  // Other repositories under each name: a repository that holds the image already is not copied into again.
  for (const [host, dir] of [
    [dst.host, 'warm'],
    [proxy.host, 'warm-proxied'],
  ]) {
    for (const b of builds) await runMeasured(...ours(b.bin)(`${dir}/${b.name}`, host), { env });
    await runMeasured(...sides.at(-1).argsFor(`${dir}/skopeo`, host), { env });
  }
  // Counted right after the warm-up: the cache keeps a few locations per blob, the timed runs' would push these out.
  const requests = {};
  for (const side of sides) {
    if (side.requests === false) continue;
    proxy.reset();
    await runMeasured(...side.argsFor(`counted/${slug(side.name)}`, proxy.host), { env });
    requests[side.name] = proxy.requests.length;
  }
  const runs = Object.fromEntries(sides.map((s) => [s.name, []]));
  const loads = [];
  for (let r = 0; r < rounds; r++) {
    loads.push(loadavg()[0]);
    for (const side of sides) {
      runs[side.name].push(await measure(...side.argsFor(`y/${slug(side.name)}-${r}`, dst.host), { env }));
    }
  }
  console.log(
    `warm copy floor: ${rounds} rounds, one image (${2 * layers + 2} blobs), load average (1 min) ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
  );
  console.log('| per image | wall ms | client CPU ms | peak RSS MiB | requests to the destination |');
  console.log('|---|---|---|---|---|');
  for (const side of sides) {
    const xs = runs[side.name];
    const col = (k, d = 0) => median(xs.map((x) => x[k])).toFixed(d);
    console.log(`| ${side.name} | ${col('ms')} | ${col('cpu')} | ${col('rss', 1)} | ${requests[side.name] ?? '–'} |`);
  }
} finally {
  await proxy.stop();
  await Promise.all([src.stop(), dst.stop()]);
  await work.cleanup?.();
}
