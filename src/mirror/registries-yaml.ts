/**
 * k3s / RKE2 `registries.yaml` for a mirror result (docs.k3s.io/installation/private-registry): one `mirrors`
 * entry per source registry pointing at the destination, with `rewrite` rules mapping the source repository to the
 * mirrored one. Unflattened names need one regex per source registry; flattened names need one rule per repository
 * (a regex cannot turn every `/` into `-`). The file goes to /etc/rancher/k3s/ or /etc/rancher/rke2/.
 */
import { stringify } from 'yaml';
import type { Reference } from '../registry/reference.js';
import type { RewriteOptions } from './config.js';
import { destinationRepository, type DestinationRoot } from './naming.js';

/** Options of {@link registriesYaml}. */
export interface RegistriesYamlOptions {
  /** The destination is plain HTTP (endpoint `http://`). Default: false. */
  insecure?: boolean | undefined;
  /** Add `configs.<dest>.tls.insecure_skip_verify: true` (self-signed destination). Default: false. */
  skipVerify?: boolean | undefined;
  /** CA file path on the node for `configs.<dest>.tls.ca_file`. Default: none. */
  caFile?: string | undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The registries.yaml document as an object (see the file header). */
export function registriesConfig(
  sources: readonly Pick<Reference, 'registry' | 'repository'>[],
  root: DestinationRoot,
  rw: RewriteOptions = {},
  opts: RegistriesYamlOptions = {},
): Record<string, unknown> {
  const endpoint = `${opts.insecure ? 'http' : 'https'}://${root.registry}`;
  const mirrors: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }> = {};
  const byRegistry = new Map<string, Set<string>>();
  for (const s of sources) {
    const set = byRegistry.get(s.registry) ?? new Set<string>();
    set.add(s.repository);
    byRegistry.set(s.registry, set);
  }
  for (const [registry, repos] of [...byRegistry].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const rewrite: Record<string, string> = {};
    if (rw.flatten) {
      for (const repo of [...repos].sort())
        rewrite[`^${escapeRe(repo)}$`] = destinationRepository({ registry, repository: repo }, root, rw);
    } else {
      // destinationRepository of "X" ends in "/X": the prefix before it is the same for every repository.
      const probe = destinationRepository({ registry, repository: 'x' }, root, rw);
      const head = probe.slice(0, -1);
      if (head !== '') rewrite['^(.*)$'] = `${head}$1`;
    }
    mirrors[registry] = { endpoint: [endpoint], ...(Object.keys(rewrite).length ? { rewrite } : {}) };
  }
  const out: Record<string, unknown> = { mirrors };
  if (opts.skipVerify || opts.caFile) {
    out.configs = {
      [root.registry]: {
        tls: {
          ...(opts.skipVerify ? { insecure_skip_verify: true } : {}),
          ...(opts.caFile ? { ca_file: opts.caFile } : {}),
        },
      },
    };
  }
  return out;
}

/** registries.yaml text for the mirrored sources. */
export function registriesYaml(
  sources: readonly Pick<Reference, 'registry' | 'repository'>[],
  root: DestinationRoot,
  rw: RewriteOptions = {},
  opts: RegistriesYamlOptions = {},
): string {
  const header = `# k3s/RKE2 registries.yaml written by canvos-lite mirror for ${root.registry}${root.path ? `/${root.path}` : ''}\n# install as /etc/rancher/k3s/registries.yaml (k3s) or /etc/rancher/rke2/registries.yaml (RKE2)\n`;
  return header + stringify(registriesConfig(sources, root, rw, opts), { lineWidth: 0 });
}
