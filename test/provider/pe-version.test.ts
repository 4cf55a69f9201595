import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import { gitDescribePeVersion, withPeVersionDefault } from '../../src/provider/pe-version.js';
import { runCli } from '../helpers/cli.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.com',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: '/nonexistent',
};

async function git(dir: string, ...args: string[]): Promise<void> {
  const r = await run('git', ['-C', dir, ...args], { env: GIT_ENV });
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

/** A CanvOS-like checkout: commits tagged v4.9.10 then v4.9.38 (the latest reachable tag wins, as git describe). */
async function repo(name: string, tags: string[]): Promise<string> {
  const dir = join(tmp.path, name);
  await mkdir(dir, { recursive: true });
  await git(dir, 'init', '-q', '-b', 'main');
  for (const [i, t] of tags.entries()) {
    await writeFile(join(dir, 'Earthfile'), `VERSION 0.6\n# ${i}\n`);
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', `c${i}`);
    if (t) await git(dir, 'tag', '-a', t, '-m', t);
  }
  return dir;
}

const err = (p: Promise<unknown>): Promise<CanvosError> =>
  p.then(
    () => {
      throw new Error('expected an error');
    },
    (e: unknown) => e as CanvosError,
  );

beforeAll(async () => {
  tmp = await tmpDir('canvos-pe-version-');
});
afterAll(async () => tmp?.cleanup());

describe('PE_VERSION defaults to git describe --abbrev=0 --tags of the project (earthly.sh)', () => {
  it('takes the latest tag reachable from HEAD, also from a sub-directory of the checkout', async () => {
    const dir = await repo('canvos', ['v4.9.10', 'v4.9.38', '']);
    expect(await gitDescribePeVersion(dir)).toBe('v4.9.38');
    await mkdir(join(dir, 'sub'));
    expect(await gitDescribePeVersion(join(dir, 'sub'))).toBe('v4.9.38');
    const c = await withPeVersionDefault(parseArgText('CUSTOM_TAG=demo\n'), dir);
    expect(c.peVersion).toBe('v4.9.38');
    expect(c.origins.PE_VERSION?.file).toContain('git describe');
    // An explicit PE_VERSION wins; git is not asked.
    expect((await withPeVersionDefault(parseArgText('PE_VERSION=v4.8.1\n'), join(tmp.path))).peVersion).toBe('v4.8.1');
  });

  it('no repository, no tag, or a tag that is not a version: exit 3 with the hint to set PE_VERSION', async () => {
    const plain = join(tmp.path, 'plain');
    await mkdir(plain);
    for (const dir of [plain, await repo('untagged', ['']), await repo('oddtag', ['release-2024'])]) {
      const e = await err(gitDescribePeVersion(dir));
      expect(e.code, dir).toBe('ERR_CONFIG');
      expect(e.message, dir).toMatch(/^PE_VERSION is not set and /);
      expect(e.hint).toBe(
        'set PE_VERSION in .arg (e.g. PE_VERSION=v4.9.38), or build from a CanvOS checkout with its release tags',
      );
    }
  });

  it('the CLI uses it: a project outside git without PE_VERSION exits 3 before any network access', async () => {
    const project = join(tmp.path, 'cli-project');
    await mkdir(project);
    await writeFile(
      join(project, '.arg'),
      'CUSTOM_TAG=demo\nK8S_VERSION=1.30.4\nIMAGE_REGISTRY=127.0.0.1:1/x\nBASE_IMAGE=127.0.0.1:1/base:1\n',
    );
    const env = { HOME: tmp.path, PATH: process.env.PATH, CANVOS_CACHE_DIR: join(tmp.path, 'cache') };
    const r = await runCli(['build', '--dry-run'], { env, cwd: project });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/PE_VERSION is not set and git describe --abbrev=0 --tags failed in /);
    expect(r.stderr).toContain('hint: set PE_VERSION in .arg');
    const tagged = await repo('cli-tagged', ['v4.9.38']);
    await writeFile(
      join(tagged, '.arg'),
      'CUSTOM_TAG=demo\nK8S_VERSION=1.30.4\nIMAGE_REGISTRY=127.0.0.1:1/x\nBASE_IMAGE=127.0.0.1:1/base:1\n',
    );
    const ok = await runCli(['build', '--dry-run', '--json'], { env, cwd: tagged });
    expect(ok.stdout).toContain('k3s-1.30.4-v4.9.38-demo');
  });
});
