/**
 * `canvos-lite build`: CanvOS's `./earthly.sh +build-provider-images` without Docker or root. Reads `.arg` and/or
 * canvos.yaml, builds one provider image per Kubernetes version and pushes them (or writes an OCI layout), then prints
 * the Palette cluster-profile snippet on stdout. Progress, warnings and the per-image summary go to stderr, so
 * `canvos-lite build --push > profile.yaml` captures just the snippet.
 */
import { access } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError, EXIT_CODES } from '../../errors.js';
import { buildProviderImages } from '../../provider/build.js';
import { describeProviderBuild, type DryRunReport } from '../../provider/dry-run.js';
import { loadK8sVersions, selectK8sVersions } from '../../provider/k8s-versions.js';
import { loadBuildConfig } from '../../provider/load.js';
import { packSnippet } from '../../provider/pack-snippet.js';
import type { BuildConfig } from '../../provider/resolve.js';
import type { RegistryTransportOptions } from '../../registry/transport.js';
import type { CliIo, CommandModule } from '../main.js';
import { createProgress, formatBytes, shortDigest } from '../progress.js';

const usage = `usage: canvos-lite build [options] (--push | --output oci:DIR | --dry-run)

Builds the CanvOS provider images (one per Kubernetes version) by appending layers to the Kairos base image.

configuration (CanvOS files are read as they are):
  --arg-file FILE          CanvOS .arg file (default: ./.arg if present)
  --config FILE            canvos.yaml: the same arguments in YAML, plus per-version k8s sources (default: ./canvos.yaml if present)
  --k8s-versions FILE      k8s_version.json, used when K8S_VERSION is empty (default: k8s_version.json or
                           k8s_versions.json next to the .arg/canvos.yaml)
  --set KEY=VALUE          override one argument (repeatable), e.g. --set K8S_VERSION=1.30.4
  --project-dir DIR        directory with overlay/, certs/, cloudconfigs/ (default: the .arg/canvos.yaml directory)

output (exactly one):
  --push                   push each image to IMAGE_REGISTRY/IMAGE_REPO:<K8S_DISTRIBUTION>-<version>-<PE_VERSION>[-<CUSTOM_TAG>]
  --output oci:DIR         write the images into an OCI layout directory, tagged <distribution>-<version>-...
  --dry-run                print the plan with sizes; build and write nothing (fails if an image is unavailable)

registry access:
  --authfile FILE          credentials (auth.json / Docker config.json); default: the usual locations
  --insecure-registry H    reach registry H (host[:port]) over plain HTTP (repeatable)
  --cert-dir DIR           extra CA certificates (*.crt, *.pem, HOST[:PORT]/ sub-directories)
  --cache-dir DIR          blob cache (default: $CANVOS_CACHE_DIR or ~/.cache/canvos-lite/blobs)

  --json                   print a JSON result on stdout instead of the pack snippet`;

function usageError(message: string): CanvosError {
  return new CanvosError('ERR_USAGE', message, { hint: 'run canvos-lite build --help for the options' });
}

const present = (p: string) => access(p).then(() => true, () => false);

function registryOptions(io: CliIo, c: BuildConfig, v: { authfile?: string | undefined; 'insecure-registry'?: string[] | undefined; 'cert-dir'?: string | undefined }): RegistryTransportOptions {
  const proxy = c.httpProxy || c.httpsProxy ? { http: c.httpProxy || undefined, https: c.httpsProxy || undefined, noProxy: c.noProxy || undefined } : undefined;
  return { env: io.env, authFiles: v.authfile ? [v.authfile] : undefined, insecureRegistries: v['insecure-registry'], certsDir: v['cert-dir'], proxy };
}

function dryRunText(r: DryRunReport): string {
  const size = (b: number | undefined) => (b === undefined ? '?' : formatBytes(b));
  const img = (i: DryRunReport['base']) => (i.error ? `${i.ref}  UNAVAILABLE: ${i.error}` : `${i.ref}  ${i.layers} layers, ${size(i.bytes)}`);
  const lines = [`base image: ${img(r.base)}`, `k8s and agent provider bundled: ${r.plan.bundled ? 'yes' : 'no (systemd-extension capable base)'}`, '', 'shared layers (built once):'];
  for (const l of r.plan.sharedLayers) lines.push(`  ${l.name.padEnd(15)} ${l.description}`);
  lines.push('', `images (${r.plan.images.length}):`);
  for (const p of r.plan.images) {
    const own = p.layers.filter((l) => !l.shared).map((l) => l.description);
    lines.push(`  ${p.imageRef}${own.length ? `  + ${own.join('; ')}` : ''}`);
  }
  lines.push('', 'images read:');
  for (const s of r.sources) lines.push(`  ${img(s)}`);
  return `${lines.join('\n')}\n`;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      'arg-file': { type: 'string' },
      config: { type: 'string' },
      'k8s-versions': { type: 'string' },
      set: { type: 'string', multiple: true },
      'project-dir': { type: 'string' },
      push: { type: 'boolean' },
      output: { type: 'string' },
      'dry-run': { type: 'boolean' },
      authfile: { type: 'string' },
      'insecure-registry': { type: 'string', multiple: true },
      'cert-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const modes = [values.push, values.output !== undefined, values['dry-run']].filter(Boolean).length;
  if (modes !== 1) throw usageError('give exactly one of --push, --output oci:DIR or --dry-run');
  if (values.output !== undefined && !/^oci:.+/.test(values.output)) throw usageError(`--output must be oci:DIR, not ${JSON.stringify(values.output)}`);
  const cwd = io.cwd;
  const argFile = values['arg-file'] ? resolve(cwd, values['arg-file']) : (await present(resolve(cwd, '.arg'))) ? resolve(cwd, '.arg') : undefined;
  const configFile = values.config ? resolve(cwd, values.config) : (await present(resolve(cwd, 'canvos.yaml'))) ? resolve(cwd, 'canvos.yaml') : undefined;
  if (!argFile && !configFile) {
    throw new CanvosError('ERR_USAGE', `no configuration: neither ${resolve(cwd, '.arg')} nor canvos.yaml exists`, { hint: 'cp .arg.template .arg, or pass --arg-file FILE / --config FILE' });
  }
  const overrides: Record<string, string> = {};
  for (const s of values.set ?? []) {
    const i = s.indexOf('=');
    if (i <= 0) throw usageError(`--set must be KEY=VALUE, not ${JSON.stringify(s.slice(0, 40))}`);
    overrides[s.slice(0, i)] = s.slice(i + 1);
  }
  const warn = (code: string, msg: string) => io.stderr.write(`warning: ${msg} [${code}]\n`);
  const config = await loadBuildConfig({ argFile, configFile, overrides, onWarning: warn });
  // CanvOS names it k8s_version.json; some of its docs say k8s_versions.json: accept either next to the config.
  const near = dirname(argFile ?? configFile ?? cwd);
  let versionsFile = values['k8s-versions'] ? resolve(cwd, values['k8s-versions']) : undefined;
  if (!versionsFile && !config.k8sVersion) {
    for (const n of ['k8s_version.json', 'k8s_versions.json']) if (!versionsFile && (await present(resolve(near, n)))) versionsFile = resolve(near, n);
  }
  const versionsJson = versionsFile ? await loadK8sVersions(versionsFile) : undefined;
  const versions = selectK8sVersions(config, versionsJson, versionsFile);
  const projectDir = values['project-dir'] ? resolve(cwd, values['project-dir']) : dirname(argFile ?? configFile ?? resolve(cwd, 'x'));
  const registry = registryOptions(io, config, values);

  if (values['dry-run']) {
    const report = await describeProviderBuild(config, { versions, projectDir, registry, cacheDir: values['cache-dir'], signal: io.signal, onWarning: warn });
    io.stdout.write(values.json ? `${JSON.stringify(report)}\n` : dryRunText(report));
    // Exit like the real build would: with the code of the first image it could not read.
    const failed = [report.base, ...report.sources].filter((i) => i.error);
    if (failed.length) io.stderr.write(`canvos-lite: ${failed.length} image(s) unavailable; the build would fail\n`);
    return failed[0]?.errorCode ? EXIT_CODES[failed[0].errorCode] : 0;
  }
  const progress = createProgress(io.stderr, { quiet: values.json === true, label: 'building' });
  let result;
  try {
    result = await buildProviderImages(config, {
      versions,
      output: values.push ? { push: true } : { ociDir: resolve(cwd, (values.output as string).slice(4)) },
      projectDir,
      registry,
      cacheDir: values['cache-dir'],
      signal: io.signal,
      onProgress: (e) => progress.onProgress(e),
      onWarning: warn,
    });
  } finally {
    progress.done();
  }
  const snippet = packSnippet(config);
  if (values.json) {
    const images = result.images.map((i) => ({ k8sVersion: i.k8sVersion, tag: i.tag, destination: i.destination, digest: i.manifestDigest, layers: i.layers.length, appended: i.appended }));
    io.stdout.write(`${JSON.stringify({ baseImage: result.baseImage, systemdVersion: result.systemdVersion ?? null, bundled: result.plan.bundled, images, packSnippet: snippet })}\n`);
    return 0;
  }
  for (const i of result.images) io.stderr.write(`${values.push ? 'pushed' : 'wrote'} ${i.destination.replace(/^docker:\/\//, '')} ${shortDigest(i.manifestDigest)}\n`);
  io.stdout.write(snippet);
  return 0;
}

const command: CommandModule = {
  summary: 'canvos-lite build: build CanvOS provider images (one per Kubernetes version) without Docker',
  usage,
  run,
};
export default command;
