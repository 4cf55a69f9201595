/**
 * PE_VERSION's default as CanvOS's earthly.sh computes it: `git describe --abbrev=0 --tags` of the CanvOS checkout
 * (earthly.sh 107). When that is impossible (no git, not a repository, no tag) the build stops with a clear error
 * instead of falling back to the Earthfile's pre-release default: the version ends up in every image tag.
 */
import { CanvosError } from '../errors.js';
import { runToolRaw } from '../util/run-tool.js';
import type { BuildConfig } from './resolve.js';
import { PE_VERSION_RE } from './schema.js';

async function describe(dir: string, signal?: AbortSignal): Promise<{ tag?: string; error?: string }> {
  try {
    const r = await runToolRaw('git', ['describe', '--abbrev=0', '--tags'], {
      code: 'ERR_CONFIG',
      missingHint: 'install git',
      cwd: dir,
      signal,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' },
    });
    if (r.code === 0) return { tag: r.stdout.trim() };
    return { error: r.stderrTail.trim().split('\n')[0] || `exit ${r.code ?? r.signal ?? '?'}` };
  } catch (e) {
    if (!CanvosError.is(e) || e.code !== 'ERR_CONFIG') throw e;
    const errno = (e.cause as NodeJS.ErrnoException | undefined)?.code;
    return { error: errno === 'ENOENT' ? 'git is not installed' : e.message };
  }
}

/** `git describe --abbrev=0 --tags` in `dir`, checked to be a Palette Edge version. Throws ERR_CONFIG otherwise. */
export async function gitDescribePeVersion(dir: string, signal?: AbortSignal): Promise<string> {
  const r = await describe(dir, signal);
  const hint =
    'set PE_VERSION in .arg (e.g. PE_VERSION=v4.9.38), or build from a CanvOS checkout with its release tags';
  if (r.error !== undefined) {
    throw new CanvosError(
      'ERR_CONFIG',
      `PE_VERSION is not set and git describe --abbrev=0 --tags failed in ${dir}: ${r.error}`,
      { hint },
    );
  }
  const tag = r.tag ?? '';
  if (!PE_VERSION_RE.test(tag)) {
    throw new CanvosError(
      'ERR_CONFIG',
      `PE_VERSION is not set and the latest tag of ${dir} (${JSON.stringify(tag.slice(0, 60))}) is not a Palette Edge version`,
      { hint },
    );
  }
  return tag;
}

/**
 * `config` with PE_VERSION defaulted as earthly.sh does when no configuration source set it (its origin then
 * names git describe); unchanged when PE_VERSION was written explicitly.
 */
export async function withPeVersionDefault(
  config: BuildConfig,
  projectDir: string,
  signal?: AbortSignal,
): Promise<BuildConfig> {
  if (config.origins.PE_VERSION) return config;
  const peVersion = await gitDescribePeVersion(projectDir, signal);
  return {
    ...config,
    peVersion,
    origins: { ...config.origins, PE_VERSION: { file: `git describe --abbrev=0 --tags (${projectDir})`, line: 0 } },
  };
}
