/**
 * `canvos.yaml`: the YAML form of `.arg`. Top-level keys are the CanvOS arguments, written either exactly as in
 * `.arg` (`K8S_DISTRIBUTION: k3s`) or camelCase (`k8sDistribution: k3s`), plus two canvos-lite extensions:
 * `k8s:` (per-version source of the Kubernetes binaries) and `k8sImagePattern:`. Scalars are read with YAML's
 * failsafe schema, so `osVersion: 20.10` stays "20.10" and every value goes through the same schema as `.arg`.
 *
 * ```yaml
 * osDistribution: ubuntu
 * K8S_DISTRIBUTION: k3s
 * k8s:
 *   "1.30.4": { url: https://…/k3s, sha256: <64 hex> }   # → /usr/bin/k3s
 *   "1.29.8": { image: registry.local/k8s/k3s:1.29.8 }
 * ```
 */
import { LineCounter, isAlias, isMap, isScalar, type Node, type Pair } from 'yaml';
import { CanvosError } from '../errors.js';
import { readConfigText } from './arg-file.js';
import { INPUT_LIMITS, parseYaml } from '../text-input.js';
import {
  resolveBuildConfig,
  type BuildConfig,
  type ConfigEntry,
  type ResolveOptions,
  type SourceLocation,
} from './resolve.js';
import { K8sSourceSchema, type K8sSource } from './schema.js';

/** Options of {@link parseConfigYaml} / {@link loadConfigFile}. */
export type ConfigFileOptions = Omit<ResolveOptions, 'keys' | 'k8sSources' | 'k8sImagePattern'>;

/** What a canvos.yaml holds before validation of the argument values. */
export interface ConfigYamlEntries {
  entries: ConfigEntry[];
  k8sSources: Record<string, K8sSource>;
  k8sImagePattern: string | undefined;
}

const K8S_VERSION_KEY = /^\d+\.\d+\.\d+$/;

/** Parse canvos.yaml text into located entries and the k8s extensions (values of arguments not yet validated). */
export function parseConfigEntries(text: string, file = 'canvos.yaml'): ConfigYamlEntries {
  const lc = new LineCounter();
  const doc = parseYaml(text, { schema: 'failsafe', lineCounter: lc, prettyErrors: false });
  const locOf = (node: Node | null | undefined): SourceLocation => {
    const p = lc.linePos(node?.range?.[0] ?? 0);
    return { file, line: p.line, col: p.col };
  };
  const err = (loc: SourceLocation, message: string, hint: string): CanvosError =>
    new CanvosError('ERR_CONFIG', `${file}:${loc.line}:${loc.col ?? 1}: ${message}`, {
      hint,
      details: { file, line: loc.line, col: loc.col },
    });

  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0] ?? lc.linePos(first.pos[0]);
    const msg = first.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? 'syntax error';
    throw err(
      { file, line: pos.line, col: pos.col },
      `invalid YAML: ${msg}`,
      'fix the YAML syntax at that position (indentation, quotes, brackets)',
    );
  }
  const out: ConfigYamlEntries = { entries: [], k8sSources: {}, k8sImagePattern: undefined };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === '')) return out; // empty file: all defaults
  if (!isMap(root))
    throw err(
      locOf(root),
      'the top level must be a mapping of KEY: value',
      'write one KEY: value per line, e.g. K8S_DISTRIBUTION: k3s',
    );

  for (const pair of root.items as Pair<Node, Node | null>[]) {
    const keyNode = pair.key;
    const loc = locOf(keyNode);
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    if (!key) throw err(loc, 'keys must be plain names', 'write KEY: value');
    // A scalar alias (`ISO_NAME: *name`) stands for its anchored value.
    const v = isAlias(pair.value) ? ((pair.value.resolve(doc) as Node | undefined) ?? null) : pair.value;
    if (key === 'k8s') {
      if (v === null || (isScalar(v) && v.value === '')) continue;
      if (!isMap(v))
        throw err(
          locOf(v),
          'k8s must map versions to sources',
          'write k8s: { "1.30.4": { url: …, sha256: … } } or { image: … }',
        );
      for (const item of v.items as Pair<Node, Node | null>[]) {
        const vloc = locOf(item.key);
        const version = isScalar(item.key) ? String(item.key.value) : '';
        if (!K8S_VERSION_KEY.test(version))
          throw err(
            vloc,
            `k8s: ${JSON.stringify(version)} is not a Kubernetes version x.y.z`,
            'quote versions as keys, e.g. "1.30.4":',
          );
        const parsed = K8sSourceSchema.safeParse(item.value?.toJSON() ?? null);
        if (!parsed.success) {
          const iss = parsed.error.issues[0];
          const at = iss?.path.length ? ` (${iss.path.join('.')})` : '';
          throw err(
            vloc,
            `k8s "${version}": invalid source${at}: ${iss?.message ?? 'invalid'}`,
            'use { image: <ref> } or { url: https://…, sha256: <64 hex>, path: /usr/bin/<binary> }',
          );
        }
        out.k8sSources[version] = parsed.data;
      }
      continue;
    }
    if (key === 'k8sImagePattern') {
      if (!isScalar(v) || (!String(v.value).includes('{baseVersion}') && !String(v.value).includes('{version}'))) {
        throw err(
          locOf(v ?? keyNode),
          'k8sImagePattern must be a string containing {version} or {baseVersion}',
          'e.g. k8sImagePattern: "{luetRepo}/luet-repo-{luetArch}:{dist}-k8s-{baseVersion}"',
        );
      }
      out.k8sImagePattern = String(v.value);
      continue;
    }
    if (v !== null && !isScalar(v))
      throw err(locOf(v), `${key} must be a single value, not a list or mapping`, `write ${key}: value`);
    out.entries.push({ key, value: v === null ? '' : String(v.value), loc });
  }
  return out;
}

/** Parse and validate canvos.yaml text into a BuildConfig. */
export function parseConfigYaml(text: string, file = 'canvos.yaml', opts: ConfigFileOptions = {}): BuildConfig {
  const y = parseConfigEntries(text, file);
  return resolveBuildConfig(y.entries, {
    ...opts,
    keys: 'any',
    k8sSources: y.k8sSources,
    k8sImagePattern: y.k8sImagePattern,
  });
}

/** Read, parse and validate a canvos.yaml file. */
export async function loadConfigFile(path: string, opts: ConfigFileOptions = {}): Promise<BuildConfig> {
  return parseConfigYaml(
    await readConfigText(
      path,
      'create it (see canvos-lite build --help) or pass --config <path>',
      INPUT_LIMITS.configYaml,
      'canvos.yaml',
    ),
    path,
    opts,
  );
}
