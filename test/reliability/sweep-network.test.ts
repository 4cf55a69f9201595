/**
 * Sweep, hostile servers and faults (issue #19 classes 1, 2, 4 and the hostile cases of the brief): a black-hole
 * registry, a fault proxy in front of one real docker-registry (stall before the status line or mid-body, corrupt
 * bytes, a redirect loop), a hostile registry (sweep-servers.ts: 2 GB / endless manifests, 10 MB and non-JSON tokens,
 * a file:// redirect, a foreign token realm, blobs longer or shorter than their descriptor) and signals, for every
 * command that reaches a registry. Every run uses `--timeout 2`. See sweep-harness.ts for what each row asserts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pushLayout } from '../helpers/push-layout.js';
import { blackHole, runBin, serveImage, type BinResult, type ServedImage } from './harness.js';
import { canvosYaml, project, SECRET, sweep, type SweepCase } from './sweep-harness.js';
import { startHostileRegistry, type HostileRegistry } from './sweep-servers.js';

interface Ctx {
  dir: string;
  /** The fault proxy in front of the registry serving app:v1. */
  proxy: ServedImage['proxy'];
  hole: string;
  hostile: string;
  /** The registry itself (`HOST:PORT`). */
  reg: string;
  /** A project whose images are all at the black hole. */
  proj: string;
}
let ctx: Ctx;
let served: ServedImage;
let hostile: HostileRegistry;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  served = await serveImage('canvos-sweep-net-', 256 * 1024);
  for (const repo of ['stall-body', 'corrupt', 'loop'])
    await pushLayout(join(served.dir, 'fixture'), served.reg, repo, { ref: 'v1', tag: 'v1' });
  const hole = await blackHole();
  hostile = await startHostileRegistry();
  const dir = served.dir;
  const proj = await project(join(dir, 'proj'), { 'canvos.yaml': canvosYaml(hole.host) });
  ctx = { dir, proxy: served.proxy, hole: hole.host, hostile: hostile.host, reg: served.reg.host, proj };
  cleanup = async () => {
    await Promise.all([hole.close(), hostile.close()]);
    await served.stop();
  };
}, 60_000);
afterAll(() => cleanup?.());

const T = ['--timeout', '2'];
const out = (c: Ctx, name: string): string => join(c.dir, 'out', name);
const cfg = (c: Ctx): string[] => ['--config', join(c.proj, 'canvos.yaml'), '--insecure-registry', c.hole];

/** Each command reading image `ref` (HOST/REPO:TAG) from a plain-http registry, writing into out/<name>. */
const readers = (
  ref: (c: Ctx) => string,
  name: string,
): [string, (c: Ctx) => string[], (c: Ctx) => string | undefined][] => [
  [
    'copy',
    (c) => ['copy', ...T, '--src-insecure', `docker://${ref(c)}`, `oci:${out(c, name)}:v1`],
    (c) => out(c, name),
  ],
  [
    'iso --base',
    (c) => ['iso', ...T, '--insecure', '--base', `docker://${ref(c)}`, '--output', `${out(c, name)}-iso`],
    (c) => `${out(c, name)}-iso`,
  ],
  ['mirror plan', (c) => ['mirror', 'plan', ...T, '--src-insecure', ref(c)], () => undefined],
  [
    'mirror save',
    (c) => ['mirror', 'save', ...T, '--src-insecure', ref(c), '--to', `${out(c, name)}-ms`],
    (c) => `${out(c, name)}-ms`,
  ],
  [
    'pull-artifact',
    (c) => ['pull-artifact', ...T, '--insecure', `docker://${ref(c)}`, out(c, name)],
    (c) => out(c, name),
  ],
];

/** Rows for `readers` expecting `code` (mirror: 16, its code for failed images). */
const readerRows = (
  label: string,
  ref: (c: Ctx) => string,
  code: number,
  message?: RegExp,
  blobFault = false,
): SweepCase<Ctx>[] =>
  readers(ref, label.replace(/\W+/g, '-'))
    // A fault in the blobs: mirror plan reads no blob, and pull-artifact refuses the image (not an artifact) first.
    .filter(([cmd]) => !blobFault || (cmd !== 'mirror plan' && cmd !== 'pull-artifact'))
    .map(([cmd, args, dest]) => ({
      name: `${cmd}: ${label} → ${cmd.startsWith('mirror') ? 16 : code}`,
      args,
      code: cmd.startsWith('mirror') ? 16 : code,
      message: cmd.startsWith('mirror') ? undefined : message,
      dest: (c: Ctx) => dest(c) ?? out(c, 'none'),
      withinMs: 12_000,
    }));

const hostileRef = (repo: string) => (c: Ctx) => `${c.hostile}/${repo}:v1`;

const cases: SweepCase<Ctx>[] = [
  ...readerRows('a black-hole registry', (c) => `${c.hole}/app:v1`, 10, /no response within 2 s/),
  {
    name: 'copy: a black-hole destination → 10',
    args: (c) => ['copy', ...T, '--dest-insecure', `oci:${join(c.dir, 'fixture')}:v1`, `docker://${c.hole}/x:v1`],
    code: 10,
    withinMs: 12_000,
  },
  {
    name: 'mirror load: a black-hole destination → 10',
    setup: async (c) => {
      const r = await runBin(['mirror', 'save', '--src-insecure', `${c.reg}/app:v1`, '--to', join(c.dir, 'arch.tar')]);
      expect(r.code, r.stderr).toBe(0);
    },
    args: (c) => ['mirror', 'load', ...T, '--dest-insecure', '--from', join(c.dir, 'arch.tar'), '--to', c.hole],
    code: [10, 16],
    withinMs: 12_000,
  },
  ...[
    [
      'disk --base',
      (c: Ctx) => ['disk', ...T, '--insecure', '--base', `docker://${c.hole}/app:v1`, '--output', out(c, 'd')],
    ],
    [
      'uki iso --base',
      (c: Ctx) => ['uki', 'iso', ...T, '--insecure', '--base', `docker://${c.hole}/app:v1`, '--output', out(c, 'u')],
    ],
  ].map(([cmd, args]) => ({
    name: `${cmd as string}: a black-hole registry → 10`,
    args: args as (c: Ctx) => string[],
    code: 10,
    message: /no response within 2 s/,
    dest: (c: Ctx) => out(c, cmd === 'disk --base' ? 'd' : 'u'),
    withinMs: 12_000,
  })),
  {
    name: 'mirror save: the archive manifest path is a directory (EISDIR on the rename) → 20',
    setup: (c) => mkdir(join(c.dir, 'eisdir.manifest.json'), { recursive: true }).then(() => undefined),
    args: (c) => ['mirror', 'save', '--src-insecure', `${c.reg}/app:v1`, '--to', join(c.dir, 'eisdir.tar')],
    code: 20,
    message: /EISDIR/,
    dest: (c) => join(c.dir, 'eisdir.tar'),
  },
  ...[
    ['build --dry-run', (c: Ctx) => ['build', '--dry-run', ...T, ...cfg(c)]],
    ['build --output', (c: Ctx) => ['build', '--output', `oci:${out(c, 'b')}`, ...T, ...cfg(c)]],
    ['iso', (c: Ctx) => ['iso', ...T, ...cfg(c), '--output', out(c, 'b')]],
    [
      'build-all',
      (c: Ctx) => ['build-all', '--output', `oci:${out(c, 'b')}`, ...T, ...cfg(c), '--iso-output', out(c, 'b')],
    ],
  ].map(([cmd, args]) => ({
    name: `${cmd as string}: every image at a black hole → 10`,
    args: args as (c: Ctx) => string[],
    code: 10,
    dest: (c: Ctx) => out(c, 'b'),
    withinMs: 15_000,
  })),
  ...readerRows(
    'a body that stalls mid-way',
    (c) => `${c.proxy.host}/stall-body:v1`,
    10,
    /stalled|no response|within 2 s/,
    true,
  ),
  ...readerRows('a corrupting proxy', (c) => `${c.proxy.host}/corrupt:v1`, 7, /does not match|digest|corrupt/, true),
  ...readerRows('a redirect loop', (c) => `${c.proxy.host}/loop:v1`, 9, /redirects/, true),
  ...readerRows('a 2 GB Content-Length manifest', hostileRef('huge-manifest'), 5, /larger than 4194304 bytes/),
  ...readerRows('an endless chunked manifest', hostileRef('endless-manifest'), 5, /larger than 4194304 bytes/),
  ...readerRows('a 10 MB token', hostileRef('big-token'), 8, /answered more than 1 MiB/),
  ...readerRows('a token that is not JSON', hostileRef('bad-token'), 8, /not JSON/),
  ...readerRows('a redirect to file://', hostileRef('file-redirect'), 9, /unsupported scheme file:/, true),
  ...readerRows('a blob longer than its descriptor', hostileRef('long-blob'), 7, /announces 100\d+ bytes/, true),
  ...readerRows('a blob shorter than its descriptor', hostileRef('short-blob'), 7, /announces \d+ bytes for a/, true),
  // Signals while a command waits on the black hole: 130 / 143 within 2 s of the signal, nothing left.
  ...(
    [
      ['copy', (c: Ctx, d: string) => ['copy', '--src-insecure', `docker://${c.hole}/app:v1`, `oci:${d}:v1`]],
      ['build', (c: Ctx, d: string) => ['build', '--output', `oci:${d}`, ...cfg(c)]],
      ['iso', (c: Ctx, d: string) => ['iso', ...cfg(c), '--output', d]],
      ['mirror save', (c: Ctx, d: string) => ['mirror', 'save', '--src-insecure', `${c.hole}/app:v1`, '--to', d]],
    ] as const
  ).flatMap(([cmd, args]) =>
    (
      [
        ['SIGINT', 130],
        ['SIGTERM', 143],
      ] as const
    ).map(([signal, code]) => {
      const dest = (c: Ctx): string => out(c, `sig-${cmd}-${signal}`.replace(/\W+/g, '-'));
      return {
        name: `${cmd}: ${signal} while the registry never answers → ${code}`,
        args: (c: Ctx) => args(c, dest(c)),
        code,
        kill: { signal, after: 2000 },
        dest,
        hint: false,
        withinMs: 10_000,
        check: (r: BinResult) => {
          expect(r.afterSignalMs, r.stderr).toBeLessThan(2500);
        },
      };
    }),
  ),
];

beforeAll(() => {
  const p = ctx.proxy;
  // The proxy serves app:v1 under other repository names, each with its fault.
  const faulty = (repo: string, path: RegExp, action: Parameters<typeof p.addRule>[0]['action']): void =>
    p.addRule({ path: new RegExp(`/v2/${repo}/${path.source}`), times: Infinity, action });
  faulty('stall-body', /blobs\/sha256:/, { kind: 'stall-mid-body', afterBytes: 10_000 });
  faulty('corrupt', /blobs\/sha256:/, { kind: 'corrupt', offset: 1000 });
  faulty('loop', /blobs\/sha256:/, { kind: 'status', status: 302, headers: { location: '/v2/loop/blobs/sha256:0' } });
});

describe('sweep: hostile servers and faults', () => sweep(cases, () => ctx));

describe('sweep: credentials', () => {
  it('a Bearer realm on another plain-http host never receives the password', async () => {
    const r = await runBin([
      'copy',
      ...T,
      '--src-insecure',
      '--src-creds',
      `bob:${SECRET}`,
      `docker://${ctx.hostile}/other-realm:v1`,
      `oci:${out(ctx, 'realm')}:v1`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(hostile.realmAuth).toEqual([]);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  }, 30_000);
});
