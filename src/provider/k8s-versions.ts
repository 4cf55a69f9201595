/**
 * CanvOS's `k8s_version.json` (`{ "<k8s distribution>": ["1.27.2", …] }`; the docs sometimes call it
 * k8s_versions.json) and the choice of versions to build: K8S_VERSION when set, else every version listed for
 * K8S_DISTRIBUTION (Earthfile `build-provider-images`, canvos.md §1.3).
 */
import { LineCounter, parseDocument } from 'yaml';
import * as z from 'zod';
import { CanvosError } from '../errors.js';
import { readConfigText } from './arg-file.js';
import { INPUT_LIMITS } from '../text-input.js';
import { formatLoc } from './resolve.js';
import type { BuildConfig } from './resolve.js';

const VERSION_RE = /^\d+\.\d+\.\d+$/;

/** Schema of k8s_version.json. Unknown distributions are kept (CanvOS may add some); versions must be x.y.z. */
export const K8sVersionsSchema = z.record(
  z.string(),
  z.array(z.string().regex(VERSION_RE, { error: 'must be x.y.z' })),
);

/** Parsed k8s_version.json. */
export type K8sVersions = z.infer<typeof K8sVersionsSchema>;

/** Parse k8s_version.json text. Throws ERR_CONFIG naming the file (and line for syntax errors). */
export function parseK8sVersions(text: string, file = 'k8s_version.json'): K8sVersions {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // Node's JSON errors carry no line; YAML (a JSON superset) locates most syntax errors precisely.
    const lc = new LineCounter();
    const yerr = parseDocument(text, { lineCounter: lc }).errors[0];
    const p = yerr ? lc.linePos(yerr.pos[0]) : undefined;
    throw new CanvosError(
      'ERR_CONFIG',
      `${file}${p ? `:${p.line}:${p.col}` : ''}: invalid JSON: ${(e as Error).message.split('\n')[0]}`,
      {
        hint: 'the file must be an object like {"k3s": ["1.30.4", "1.31.2"]}',
      },
    );
  }
  const parsed = K8sVersionsSchema.safeParse(json);
  if (!parsed.success) {
    const iss = parsed.error.issues[0];
    const path = iss?.path.length
      ? ` at ${iss.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`
      : '';
    throw new CanvosError('ERR_CONFIG', `${file}${path}: ${iss?.message ?? 'invalid'}`, {
      hint: 'the file must be an object mapping a k8s distribution to a list of versions, e.g. {"k3s": ["1.30.4"]}',
    });
  }
  return parsed.data;
}

/** Read and parse a k8s_version.json file. */
export async function loadK8sVersions(path: string): Promise<K8sVersions> {
  return parseK8sVersions(
    await readConfigText(
      path,
      'pass --k8s-versions <file>, or set K8S_VERSION to build one version',
      INPUT_LIMITS.k8sVersions,
      'k8s_version.json',
    ),
    path,
  );
}

/**
 * The versions to build: `[K8S_VERSION]` when set, else all versions listed for K8S_DISTRIBUTION (in file order,
 * duplicates dropped). Throws ERR_CONFIG when neither yields a version.
 */
export function selectK8sVersions(
  config: Pick<BuildConfig, 'k8sVersion' | 'k8sDistribution' | 'origins'>,
  versions: K8sVersions | undefined,
  file = 'k8s_version.json',
): string[] {
  if (config.k8sVersion) return [config.k8sVersion];
  const dist = config.k8sDistribution;
  if (!versions) {
    throw new CanvosError('ERR_CONFIG', `K8S_VERSION is empty and no k8s_version.json was given for ${dist}`, {
      hint: 'set K8S_VERSION=x.y.z, or pass --k8s-versions k8s_version.json to build every listed version',
    });
  }
  const list = versions[dist];
  const from = formatLoc(config.origins.K8S_DISTRIBUTION);
  if (!list) {
    const known = Object.keys(versions);
    throw new CanvosError(
      'ERR_CONFIG',
      `${file} has no entry for K8S_DISTRIBUTION=${dist}${from ? ` (set at ${from})` : ''}; it lists: ${known.join(', ') || 'nothing'}`,
      {
        hint: `add "${dist}": ["x.y.z", …] to ${file}, or set K8S_VERSION`,
      },
    );
  }
  if (list.length === 0) {
    throw new CanvosError('ERR_CONFIG', `${file} lists no versions for ${dist}`, {
      hint: `add versions to "${dist}" in ${file}, or set K8S_VERSION`,
    });
  }
  return [...new Set(list)];
}
