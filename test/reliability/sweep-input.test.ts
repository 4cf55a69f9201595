/**
 * Sweep, bad input (issue #19 classes 5 and 6): validation as skopeo does it, size limits, UTF-8, YAML aliases and
 * planted passwords, for every command a case applies to. Everything fails before any network use, or against a
 * black-hole registry with `--timeout 2`. See sweep-harness.ts for what each row asserts.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeOciLayout } from '../helpers/fixtures.js';
import { tmpDir } from '../helpers/tools.js';
import { blackHole } from './harness.js';
import { canvosYaml, project, SECRET, sweep, type SweepCase } from './sweep-harness.js';

interface Ctx {
  dir: string;
  fixture: string;
  hole: string;
  /** A project whose images are all at the black hole. */
  proj: string;
}
let ctx: Ctx;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const tmp = await tmpDir('canvos-sweep-input-');
  const hole = await blackHole();
  const dir = tmp.path;
  const fixture = join(dir, 'fixture');
  await makeOciLayout(fixture, { tag: 'v1', layerBytes: 2048 });
  const proj = await project(join(dir, 'proj'), { 'canvos.yaml': canvosYaml(hole.host) });
  await writeFile(join(dir, 'garbage.crt'), 'not a certificate\n');
  await mkdir(join(dir, 'certs', hole.host), { recursive: true });
  await writeFile(join(dir, 'certs', hole.host, 'ca.crt'), 'garbage\n');
  await symlink(join(dir, 'nowhere.json'), join(dir, 'dangling.json'));
  await writeFile(join(dir, 'a-file'), 'x');
  ctx = { dir, fixture, hole: hole.host, proj };
  cleanup = async () => {
    await hole.close();
    await tmp.cleanup();
  };
}, 60_000);
afterAll(() => cleanup?.());

const src = (c: Ctx): string => `oci:${c.fixture}:v1`;
const out = (c: Ctx, name: string): string => join(c.dir, 'out', name);
const long = 'a'.repeat(129);
/** A port nothing listens on: connections are refused at once. */
const CLOSED = '127.0.0.1:9';

/** Each command in its cheapest form that reads the given registry-access flags. */
const withFlags = (flags: (c: Ctx) => string[]): Record<string, (c: Ctx) => string[]> => ({
  copy: (c) => ['copy', ...flags(c), src(c), `oci:${out(c, 'x')}:v1`],
  'mirror plan': (c) => ['mirror', 'plan', ...flags(c), `${c.hole}/app:v1`],
  'mirror save': (c) => ['mirror', 'save', ...flags(c), `${c.hole}/app:v1`, '--to', out(c, 'm')],
  build: (c) => ['build', '--dry-run', ...flags(c), '--config', join(c.proj, 'canvos.yaml')],
  iso: (c) => ['iso', ...flags(c), '--config', join(c.proj, 'canvos.yaml'), '--output', out(c, 'iso')],
  'build-all': (c) => [
    'build-all',
    '--output',
    `oci:${out(c, 'ba')}`,
    ...flags(c),
    '--config',
    join(c.proj, 'canvos.yaml'),
  ],
  disk: (c) => ['disk', ...flags(c), '--config', join(c.proj, 'canvos.yaml'), '--output', out(c, 'disk')],
  'pull-artifact': (c) => ['pull-artifact', ...flags(c), `docker://${c.hole}/a:v1`, out(c, 'pa')],
});

const accessCases = (label: string, flags: (c: Ctx) => string[], code: number, message: RegExp): SweepCase<Ctx>[] =>
  Object.entries(withFlags(flags)).map(([cmd, args]) => ({
    name: `${cmd}: ${label} → ${code}`,
    args,
    code,
    message,
    withinMs: 5000,
  }));

const cases: SweepCase<Ctx>[] = [
  ...accessCases(
    'a missing --authfile',
    (c) => ['--authfile', join(c.dir, 'none.json')],
    2,
    /--authfile .* does not exist/,
  ),
  ...accessCases('a dangling --authfile', (c) => ['--authfile', join(c.dir, 'dangling.json')], 2, /dangling/),
  ...accessCases('a missing --cert-dir', (c) => ['--cert-dir', join(c.dir, 'none')], 2, /--cert-dir .* does not exist/),
  ...accessCases(
    'a garbage ca.crt in --cert-dir',
    (c) => ['--cert-dir', join(c.dir, 'certs')],
    3,
    /ca\.crt: no PEM certificate/,
  ),
  ...Object.entries(withFlags(() => ['--project-dir', '/nonexistent']))
    .filter(([cmd]) => ['build', 'iso', 'disk', 'build-all'].includes(cmd))
    .map(([cmd, args]) => ({
      name: `${cmd}: --project-dir /nonexistent → 2`,
      args,
      code: 2,
      message: /--project-dir \/nonexistent is not an existing directory/,
      withinMs: 5000,
    })),
  ...Object.entries(withFlags(() => ['--timeout', '0']))
    .filter(([cmd]) => !['disk', 'pull-artifact'].includes(cmd))
    .map(([cmd, args]) => ({
      name: `${cmd}: --timeout 0 → 2`,
      args,
      code: 2,
      message: /--timeout must be a number of seconds/,
      withinMs: 5000,
    })),
  // --platform as skopeo: os/arch[/variant], an OS alone is the host's architecture, an empty value is no platform.
  ...[
    ['""', ''],
    ['linux/', 'linux/'],
    ['4 parts', 'linux/arm/v7/x'],
  ].flatMap(([label, p]) =>
    [
      (c: Ctx) => ['copy', '--platform', p!, src(c), `oci:${out(c, 'p')}:v1`],
      (c: Ctx) => ['mirror', 'plan', '--platform', p!, `${c.hole}/app:v1`],
    ].map((args, i) => ({
      name: `${i ? 'mirror plan' : 'copy'}: --platform ${label} → 2`,
      args,
      code: 2,
      message: /invalid platform/,
      withinMs: 5000,
    })),
  ),
  // oci: tag grammar, as a source and as a destination, in every command that takes an image reference.
  ...[
    ['a tag with a space', 'bad tag'],
    ['a 129-character tag', long],
  ].flatMap(([label, tag]) =>
    [
      ['copy (destination)', (c: Ctx) => ['copy', src(c), `oci:${out(c, 't')}:${tag}`]],
      ['copy (source)', (c: Ctx) => ['copy', `oci:${c.fixture}:${tag}`, `oci:${out(c, 't')}:v1`]],
      ['iso --base', (c: Ctx) => ['iso', '--base', `oci:${c.fixture}:${tag}`, '--output', out(c, 'iso')]],
      ['disk --base', (c: Ctx) => ['disk', '--base', `oci:${c.fixture}:${tag}`, '--output', out(c, 'disk')]],
      ['pull-artifact', (c: Ctx) => ['pull-artifact', `oci:${c.fixture}:${tag}`, out(c, 'pa')]],
      [
        'build --output',
        (c: Ctx) => ['build', '--output', `oci:${out(c, 'b')}:${tag}`, '--config', join(c.proj, 'canvos.yaml')],
      ],
    ].map(([cmd, args]) => ({
      name: `${cmd as string}: oci: ${label} → 4 or 2`,
      args: args as (c: Ctx) => string[],
      code: [4, 2],
      message: /tag|--output/,
      dest: (c: Ctx) => out(c, 't'),
      withinMs: 5000,
    })),
  ),
];

describe('sweep: validation', () => sweep(cases, () => ctx));

/** A project dir with one bad file; `cmd` runs in it. */
const fileCase = (
  name: string,
  files: Record<string, string | Buffer>,
  args: string[],
  message: RegExp,
  code = 3,
): SweepCase<Ctx> => ({
  name,
  setup: async (c) => {
    const d = join(c.dir, 'files', name.replace(/\W+/g, '-'));
    const base: Record<string, string> = '.arg' in files ? {} : { 'canvos.yaml': canvosYaml(c.hole) };
    const withHost = (v: string | Buffer): string | Buffer => (typeof v === 'string' ? v.replace('{hole}', c.hole) : v);
    await project(d, Object.fromEntries(Object.entries({ ...base, ...files }).map(([k, v]) => [k, withHost(v)])));
  },
  cwd: (c) => join(c.dir, 'files', name.replace(/\W+/g, '-')),
  args: (c) => args.map((a) => a.replace('{hole}', c.hole)),
  code,
  message,
  withinMs: 5000,
});

const bigYaml = (n: number): string => Array.from({ length: n }, (_, i) => `K${i}: v`).join('\n');
const latin1 = Buffer.from('#cloud-config\nhostname: caf\xe9\n', 'latin1');

const fileCases: SweepCase<Ctx>[] = [
  fileCase(
    'canvos.yaml with 80k keys',
    { 'canvos.yaml': bigYaml(80_000) },
    ['build', '--dry-run'],
    /larger than the limit/,
  ),
  fileCase(
    'mirror.yaml with 80k keys',
    { 'mirror.yaml': `images:\n${bigYaml(80_000)}` },
    ['mirror', 'plan', '--config', 'mirror.yaml'],
    /larger than the limit/,
  ),
  fileCase(
    '.arg over the limit',
    { '.arg': `X=${'a'.repeat(70_000)}\n`, 'canvos.yaml': '' },
    ['build', '--dry-run'],
    /\.arg.*larger than the limit/,
  ),
  fileCase(
    'k8s_version.json over the limit',
    { 'k8s_version.json': `{"k3s":["${'1'.repeat(70_000)}"]}` },
    ['build', '--dry-run', '--set', 'K8S_VERSION='],
    /k8s_version\.json.*larger than the limit/,
  ),
  fileCase(
    'user-data over the limit (iso)',
    { 'user-data': `#cloud-config\n#${'a'.repeat(1_100_000)}\n` },
    ['iso', '--output', 'o'],
    /user-data.*larger than the limit/,
  ),
  fileCase(
    'user-data over the limit (disk)',
    { ud: `#cloud-config\n#${'a'.repeat(1_100_000)}\n` },
    ['disk', '--user-data', 'ud', '--output', 'o'],
    /larger than the limit/,
  ),
  fileCase(
    'non-UTF-8 canvos.yaml',
    { 'canvos.yaml': Buffer.from('OS_DISTRIBUTION: caf\xe9\n', 'latin1') },
    ['build', '--dry-run'],
    /not UTF-8.*offset 20/,
  ),
  fileCase(
    'non-UTF-8 .arg',
    { '.arg': Buffer.from('CUSTOM_TAG=caf\xe9\n', 'latin1') },
    ['build', '--dry-run'],
    /not UTF-8.*offset 14/,
  ),
  fileCase(
    'non-UTF-8 mirror.yaml',
    { 'mirror.yaml': Buffer.from('images:\n  - caf\xe9\n', 'latin1') },
    ['mirror', 'plan', '--config', 'mirror.yaml'],
    /not UTF-8/,
  ),
  fileCase('non-UTF-8 user-data (iso)', { 'user-data': latin1 }, ['iso', '--output', 'o'], /not UTF-8.*offset 27/),
  fileCase(
    'non-UTF-8 user-data (disk)',
    { ud: latin1 },
    ['disk', '--user-data', 'ud', '--output', 'o'],
    /not UTF-8.*offset 27/,
  ),
  fileCase('non-UTF-8 user-data (build-all)', { 'user-data': latin1 }, ['build-all', '--output', 'oci:o'], /not UTF-8/),
  fileCase(
    'an undefined alias in canvos.yaml',
    { 'canvos.yaml': 'ISO_NAME: *nope\n' },
    ['build', '--dry-run'],
    /Unresolved alias "nope"/,
  ),
  fileCase(
    'an undefined alias in mirror.yaml',
    { 'mirror.yaml': 'images:\n  - *nope\n' },
    ['mirror', 'plan', '--config', 'mirror.yaml'],
    /Unresolved alias "nope"/,
  ),
  fileCase(
    'an undefined alias in user-data (iso)',
    { 'user-data': '#cloud-config\nusers: *nope\n' },
    ['iso', '--output', 'o'],
    /Unresolved alias "nope"/,
  ),
  fileCase(
    'an undefined alias in user-data (disk)',
    { ud: '#cloud-config\nusers: *nope\n' },
    ['disk', '--user-data', 'ud', '--output', 'o'],
    /Unresolved alias "nope"/,
  ),
  fileCase(
    'a 60 kB CUSTOM_TAG is echoed cut short',
    { 'canvos.yaml': `CUSTOM_TAG: ${'t'.repeat(60_000)}\n` },
    ['build', '--dry-run'],
    /^canvos-lite: .{0,300}$/,
  ),
  fileCase(
    'a password in IMAGE_REGISTRY',
    { '.arg': `IMAGE_REGISTRY=bob:${SECRET}@{hole}/edge\n` },
    ['build', '--dry-run'],
    /IMAGE_REGISTRY/,
  ),
  fileCase(
    'a password in BASE_IMAGE',
    { '.arg': `BASE_IMAGE=bob:${SECRET}@{hole}/base:v1\n` },
    ['build', '--dry-run'],
    /BASE_IMAGE/,
  ),
  {
    // A scalar alias is a value: the run gets past validation and ends at the black hole (10), not 3.
    ...fileCase('ISO_NAME: *t is a value', {}, ['build', '--dry-run', '--timeout', '2'], /unavailable/, 10),
    setup: async (c) => {
      const d = join(c.dir, 'files', 'ISO_NAME-t-is-a-value');
      await project(d, { 'canvos.yaml': canvosYaml(CLOSED, ['CUSTOM_TAG: &t demo', 'ISO_NAME: *t']) });
    },
    withinMs: 20_000,
    check: (r) => expect(r.stdout).toMatch(/k3s-1\.30\.4-v4\.9\.38-demo/),
  },
];

describe('sweep: input files', () => sweep(fileCases, () => ctx));

const secretCases: SweepCase<Ctx>[] = [
  ['copy destination', (c: Ctx) => ['copy', src(c), `docker://bob:${SECRET}@${c.hole}/x:v1`]],
  ['copy source', (c: Ctx) => ['copy', `docker://bob:${SECRET}@${c.hole}/x:v1`, `oci:${out(c, 's')}:v1`]],
  [
    '--dest-creds',
    (c: Ctx) => ['copy', '--dest-insecure', '--dest-creds', `bob:${SECRET}`, src(c), `docker://${c.hole}/x:v1`],
  ],
  ['mirror REF', (c: Ctx) => ['mirror', 'plan', `bob:${SECRET}@${c.hole}/x:v1`]],
  ['iso --base', (c: Ctx) => ['iso', '--base', `docker://bob:${SECRET}@${c.hole}/x:v1`, '--output', out(c, 'iso')]],
  ['disk --base', (c: Ctx) => ['disk', '--base', `docker://bob:${SECRET}@${c.hole}/x:v1`, '--output', out(c, 'disk')]],
  ['pull-artifact', (c: Ctx) => ['pull-artifact', `docker://bob:${SECRET}@${c.hole}/x:v1`, out(c, 'pa')]],
  [
    'pull-artifact --creds',
    (c: Ctx) => ['pull-artifact', '--insecure', '--creds', `bob:${SECRET}`, `docker://${c.hole}/x:v1`, out(c, 'pa')],
  ],
].map(([label, args]) => ({
  name: `a password in the ${label as string} is never echoed, also under --debug`,
  args: (c: Ctx) => ['--debug', ...(args as (c: Ctx) => string[])({ ...c, hole: CLOSED })],
  // Refused (4) or failing at a closed port (10, 16 for mirror): never 0 or 1, never the password.
  code: [4, 10, 16],
  debug: true,
  withinMs: 20_000,
}));

describe('sweep: secrets', () => sweep(secretCases, () => ctx));
