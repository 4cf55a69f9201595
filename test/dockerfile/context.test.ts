import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  globContext,
  isIgnored,
  parseDockerignore,
  walkContext,
  type BuildContext,
} from '../../src/dockerfile/context.js';
import { copyLayerSpec, resolveChown } from '../../src/dockerfile/copy-spec.js';
import type { CopyStep } from '../../src/dockerfile/evaluate.js';
import type { Instruction } from '../../src/dockerfile/parse.js';

describe('.dockerignore', () => {
  const rules = parseDockerignore(
    '# comment\n*.log\n!keep.log\nbuild/\n**/node_modules\ndocs/**/*.tmp\n/abs\n  spaced  \n',
  );
  it.each([
    ['a.log', true],
    ['keep.log', false],
    ['sub/a.log', false], // * does not cross directories
    ['build', true],
    ['build/x/y', true], // below an ignored directory
    ['node_modules', true],
    ['a/b/node_modules/x', true],
    ['docs/a/b/c.tmp', true],
    ['docs/c.tmp', true],
    ['docs/c.txt', false],
    ['abs', true],
    ['spaced', true],
    ['src/main.ts', false],
  ])('%s ignored: %s', (p, want) => {
    expect(isIgnored(rules, p)).toBe(want);
  });
});

let dir: string;
let ctx: BuildContext;
const scan = {
  dirs: new Map([
    ['usr', {}],
    ['usr/local', {}],
    ['usr/local/bin', {}],
    ['usr/lib', {}],
  ]),
  links: new Map([['lib', 'usr/lib']]),
  files: new Map([
    [
      'etc/passwd',
      {
        content: Buffer.from('root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n'),
        mode: 0o644,
        uid: 0,
        gid: 0,
      },
    ],
    ['etc/group', { content: Buffer.from('root:x:0:\nwww:x:82:\n'), mode: 0o644, uid: 0, gid: 0 }],
  ]),
};
const ins = { keyword: 'COPY', line: 9 } as Instruction;
const step = (sources: string[], dest: string, extra: Partial<CopyStep> = {}): CopyStep => ({
  kind: 'copy',
  ins,
  add: false,
  sources,
  dest,
  chmod: undefined,
  chown: undefined,
  checksum: undefined,
  heredocs: new Map(),
  createdBy: '',
  ...extra,
});
const spec = (s: CopyStep) => copyLayerSpec(s, { ctx, file: 'Dockerfile', scan, createdDirs: new Set() });
const paths = async (s: CopyStep) => (await spec(s)).entries.map((e) => ('path' in e ? `${e.type}:${e.path}` : e.type));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canvos-ctx-'));
  await mkdir(join(dir, 'conf/sub'), { recursive: true });
  await writeFile(join(dir, 'conf/a.conf'), 'a');
  await writeFile(join(dir, 'conf/sub/b.conf'), 'b');
  await writeFile(join(dir, 'x.sh'), 'x', { mode: 0o755 });
  await writeFile(join(dir, 'y.sh'), 'y');
  await writeFile(join(dir, 'skip.log'), 'log');
  await symlink('x.sh', join(dir, 'link'));
  await writeFile(join(dir, '.dockerignore'), '*.log\n');
  ctx = await walkContext(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('build context and COPY semantics', () => {
  it('walks the context without ignored files and keeps symlinks as links', () => {
    expect([...ctx.entries.keys()]).toEqual([
      '.dockerignore',
      'conf',
      'conf/a.conf',
      'conf/sub',
      'conf/sub/b.conf',
      'link',
      'x.sh',
      'y.sh',
    ]);
    expect(ctx.entries.get('link')).toMatchObject({ type: 'symlink', link: 'x.sh' });
    expect(globContext(ctx, '*.sh').map((e) => e.rel)).toEqual(['x.sh', 'y.sh']);
    expect(globContext(ctx, 'conf/*').map((e) => e.rel)).toEqual(['conf/a.conf', 'conf/sub']);
  });

  it('copies a file to a file path, into an existing directory, and through base symlinks', async () => {
    expect(await paths(step(['x.sh'], '/opt/run.sh'))).toEqual(['file:/opt/run.sh']);
    expect(await paths(step(['x.sh'], '/usr/local/bin'))).toEqual(['file:/usr/local/bin/x.sh']);
    expect(await paths(step(['x.sh'], '/lib/tools/'))).toEqual(['file:/usr/lib/tools/x.sh']);
  });

  it('copies the contents of a directory, and globs into a directory', async () => {
    expect(await paths(step(['conf'], '/etc/app'))).toEqual([
      'dir:/etc/app',
      'file:/etc/app/a.conf',
      'dir:/etc/app/sub',
      'file:/etc/app/sub/b.conf',
    ]);
    expect(await paths(step(['*.sh', 'link'], '/bin2/'))).toEqual([
      'file:/bin2/x.sh',
      'file:/bin2/y.sh',
      'symlink:/bin2/link',
    ]);
  });

  it('keeps host modes unless --chmod, and resolves --chown names in the image', async () => {
    const [f] = (await spec(step(['x.sh'], '/a', { chmod: 0o700, chown: 'web:www' }))).entries;
    expect(f).toMatchObject({ mode: 0o700, uid: 33, gid: 82 });
    const [g] = (await spec(step(['x.sh'], '/a'))).entries;
    expect(g).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
    expect(
      resolveChown('web', scan, () => {
        throw new Error('x');
      }),
    ).toEqual({ uid: 33, gid: 33 });
    expect(
      resolveChown('5:7', { ...scan, files: new Map() }, () => {
        throw new Error('x');
      }),
    ).toEqual({ uid: 5, gid: 7 });
  });

  it('refuses what Docker refuses, naming Dockerfile:LINE', async () => {
    const msg = async (s: CopyStep) =>
      (await spec(s).then(
        () => undefined,
        (e: unknown) => e,
      )) as Error;
    expect((await msg(step(['x.sh', 'y.sh'], '/dir'))).message).toBe(
      'Dockerfile:9: with more than one source file, the destination must be a directory and end with a / (/dir)',
    );
    expect((await msg(step(['*.sh'], '/dir'))).message).toMatch(/must be a directory/);
    expect((await msg(step(['skip.log'], '/x'))).message).toBe(
      'Dockerfile:9: skip.log does not exist in the project directory',
    );
    expect((await msg(step(['../etc/passwd'], '/x'))).message).toMatch(/outside the build context/);
    expect((await msg(step(['nomatch*'], '/x/'))).message).toMatch(/no files in the project directory match nomatch\*/);
    expect((await msg(step(['https://example.com/a'], '/x')))?.message).toMatch(/COPY cannot fetch/);
    expect((await msg(step(['https://example.com/a'], '/x', { add: true })))?.message).toMatch(/needs --checksum/);
    expect((await msg(step(['x.sh'], '/x', { chown: 'nobody' })))?.message).toMatch(/--chown=nobody: no such user/);
    expect(() =>
      resolveChown('web:nogroup', scan, () => {
        throw new Error('unknown group');
      }),
    ).toThrow('unknown group');
  });
});
