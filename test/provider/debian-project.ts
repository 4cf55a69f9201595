/**
 * The set-up shared by the e2e tests that build on a real Debian base as the unprivileged test user
 * (dockerfile-run, kernel): the base and the fixture images pushed to a test registry, a CanvOS project in a
 * directory the unprivileged user owns, and the CLI run as that user with a minimal environment.
 */
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import { debianBase } from '../helpers/debian-base.js';
import { pushLayout } from '../helpers/push-layout.js';
import type { TestRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { makeProject, pushFixtureImages } from './fixture-images.js';

const BIN = join(import.meta.dirname, '../../bin/canvos-lite.js');

/** Where {@link debianProject} put things. */
export interface DebianProject {
  /** The Debian base in the registry (`HOST/debian/base:TAG`). */
  baseRef: string;
  /** The unprivileged user's work directory (HOME of the CLI runs). */
  work: string;
  /** The CanvOS project directory inside `work`. */
  project: string;
}

/** Pushes the Debian base and the fixture images to `reg` and makes a project (see makeProject) in a fresh work dir. */
export async function debianProject(reg: TestRegistry, fixturesDir: string, prefix: string): Promise<DebianProject> {
  if (!unprivilegedIdentity()) throw new Error('the canvostest user is missing: run scripts/install-deps.sh');
  const deb = await debianBase();
  await pushLayout(deb.layoutDir, reg, 'debian/base', { tag: deb.tag });
  const refs = await pushFixtureImages(reg, fixturesDir);
  const work = unprivilegedTempDir(prefix);
  const project = join(work, 'project');
  await makeProject(project, refs.argLines);
  return { baseRef: `${reg.host}/debian/base:${deb.tag}`, work, project };
}

/** Hands the project (once the test has written its files) and the work dir to the unprivileged user. */
export async function giveToUnprivileged(p: DebianProject): Promise<void> {
  const id = unprivilegedIdentity();
  if (!id) throw new Error('the canvostest user is missing: run scripts/install-deps.sh');
  await run('chown', ['-R', `${id.uid}:${id.gid}`, p.project]);
  chownSync(p.work, id.uid, id.gid);
}

/** Runs bin/canvos-lite.js as the unprivileged user in `cwd`; `env` adds to HOME, PATH, the cache dir and the epoch. */
export async function unprivilegedCli(
  work: string,
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const vars = {
    HOME: work,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CANVOS_CACHE_DIR: join(work, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
    ...env,
  };
  const [cmd = '', ...rest] = asUnprivileged([
    'env',
    ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
    process.execPath,
    BIN,
    ...args,
  ]);
  return run(cmd, rest, { cwd, timeoutMs: 900_000 });
}
