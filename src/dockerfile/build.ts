/**
 * Applies the project's Dockerfile on top of the base image, like CanvOS's `base-image` target: one appended layer
 * per COPY/ADD/RUN (COPY/ADD built by buildLayer, RUN by the rootless executor, compressed with the build's
 * compressor), one empty-layer history entry per config instruction, and the image runtime config after all of them.
 * RUN layers are cached like BuildKit: the key is the chain of layers below (base diffIDs, then each appended
 * layer's diffID) plus the RUN's argv, environment, user, working directory, arch and SOURCE_DATE_EPOCH; the value is
 * the compressed blob (in the blob cache) and its diffID. An unchanged rebuild opens no workspace and runs nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildLayer } from '../layers/build.js';
import { compressChunks, compressionLevel, type LayerCompression } from '../layers/compress.js';
import { readLayer } from '../layers/read.js';
import type { LayerOpener } from '../layers/merge.js';
import type { BlobCache } from '../cache/blob-cache.js';
import type { Digest } from '../image/digest.js';
import { updateScan, type BaseScan } from '../provider/base-scan.js';
import type { WarningHandler } from '../provider/resolve.js';
import { walkContext, type BuildContext } from './context.js';
import type { ImageRuntimeConfig } from './config.js';
import { copyLayerSpec } from './copy-spec.js';
import { evaluateDockerfile, type EvaluatedDockerfile, type RunStep } from './evaluate.js';
import type { Workspace } from '../exec/index.js';
import { checkExecutor, defaultExecutor, type Executor } from './exec-api.js';
import { parseDockerfile, type ParsedDockerfile } from './parse.js';
import { matchPreamble } from './preamble.js';
import { throwIfAborted } from '../util/abort.js';

/** A layer the Dockerfile appended. */
export interface DockerfileLayer {
  digest: Digest;
  size: number;
  diffId: Digest;
  mediaType: string;
  /** The blob file. */
  path: string;
  createdBy: string;
}

/** One history entry, in instruction order. */
export interface DockerfileHistory {
  createdBy: string;
  /** The layer of this entry; undefined for config-only instructions (`empty_layer`). */
  layer: DockerfileLayer | undefined;
  /** `Dockerfile:LINE`, or the label of an extra step. */
  name: string;
}

/** The result of {@link buildDockerfileLayers}. */
export interface DockerfileBuild {
  layers: DockerfileLayer[];
  history: DockerfileHistory[];
  /** The runtime config to write, when an instruction changed it. */
  config: ImageRuntimeConfig | undefined;
  /** RUN instructions executed (0 when every RUN came from the cache). */
  executed: number;
}

/** Options of {@link buildDockerfileLayers}. */
export interface DockerfileBuildOptions {
  /** The project directory (the build context). */
  projectDir: string;
  /** `BASE`, `OS_DISTRIBUTION`, … as CanvOS passes them (see {@link canvosBuildArgs}). */
  buildArgs: Readonly<Record<string, string>>;
  /** The base image (an opened image): its layers, diff_ids and runtime config. */
  base: { openers: readonly LayerOpener[]; config: { rootfs: { diff_ids: readonly string[] }; config?: unknown } };
  scan: BaseScan;
  arch: 'amd64' | 'arm64';
  cache: BlobCache;
  /** Scratch directory (layer builds, the RUN workspace). */
  workDir: string;
  compression: LayerCompression;
  /** Compression level (see compressionLevel; part of the RUN cache key). Default: the compression's default. */
  level?: number | undefined;
  mediaType: string;
  sourceDateEpoch: number;
  /**
   * Files of `scan.files` to keep current: after each layer they are re-read from it (or dropped when it deletes
   * them), so later COPY --chown lookups and the caller's own edits of those files see the Dockerfile's result.
   * Default: /etc/passwd and /etc/group.
   */
  watchFiles?: readonly string[] | undefined;
  /** RUN steps appended after the Dockerfile's (CanvOS exec steps such as TWO_NODE). Default: none. */
  extraSteps?: readonly RunStep[] | undefined;
  /** Default: canvos-lite's rootless executor (used only when a RUN misses the cache). */
  executor?: Executor | undefined;
  signal?: AbortSignal | undefined;
  onWarning?: WarningHandler | undefined;
  /** Output of RUN commands and one line per step. Default: none. */
  onLog?: ((line: string) => void) | undefined;
}

/** The build arguments CanvOS's Earthfile passes to the Dockerfile (`FROM DOCKERFILE --build-arg …`). */
export function canvosBuildArgs(
  c: {
    osDistribution: string;
    osVersion: string;
    httpProxy: string;
    httpsProxy: string;
    noProxy: string;
    drbdVersion: string;
  },
  baseImage: string,
): Record<string, string> {
  return {
    BASE: baseImage,
    OS_DISTRIBUTION: c.osDistribution,
    OS_VERSION: c.osVersion,
    HTTP_PROXY: c.httpProxy,
    HTTPS_PROXY: c.httpsProxy,
    NO_PROXY: c.noProxy,
    DRBD_VERSION: c.drbdVersion,
  };
}

/** The Dockerfile used when a project has none but canvos-lite has RUN steps of its own (TWO_NODE). */
export function stockDockerfile(): ParsedDockerfile {
  return parseDockerfile('ARG BASE\nFROM $BASE\n', { file: 'Dockerfile' });
}

/** A project Dockerfile checked by {@link prepareProjectDockerfile}, ready for {@link buildDockerfileLayers}. */
export interface PreparedDockerfile {
  df: ParsedDockerfile;
  /** The options that come from the project and the configuration. */
  options: Pick<DockerfileBuildOptions, 'projectDir' | 'buildArgs' | 'arch' | 'extraSteps' | 'executor'>;
}

/**
 * Read `<projectDir>/Dockerfile` (or the stock one when only `extraSteps` are to run), evaluate it and check the
 * executor when a RUN needs it, before anything is pulled. Undefined when there is nothing to apply.
 */
export async function prepareProjectDockerfile(
  c: Parameters<typeof canvosBuildArgs>[0] & { arch: 'amd64' | 'arm64' },
  baseImage: string,
  projectDir: string,
  o: {
    extraSteps?: readonly RunStep[] | undefined;
    executor?: Executor | undefined;
    signal?: AbortSignal | undefined;
  } = {},
): Promise<PreparedDockerfile | undefined> {
  const df = (await readProjectDockerfile(projectDir)) ?? (o.extraSteps?.length ? stockDockerfile() : undefined);
  if (!df) return undefined;
  const buildArgs = canvosBuildArgs(c, baseImage);
  await preflightDockerfile(df, buildArgs, c.arch, o);
  return { df, options: { projectDir, buildArgs, arch: c.arch, extraSteps: o.extraSteps, executor: o.executor } };
}

/** Read and parse `<projectDir>/Dockerfile`; undefined when there is none. */
export async function readProjectDockerfile(projectDir: string): Promise<ParsedDockerfile | undefined> {
  const path = join(projectDir, 'Dockerfile');
  if (!existsSync(path)) return undefined;
  return parseDockerfile(await readFile(path, 'utf8'), { file: 'Dockerfile' });
}

/** Evaluate with the preamble recognised (what the build will apply). */
export function evaluateProjectDockerfile(
  df: ParsedDockerfile,
  buildArgs: Readonly<Record<string, string>>,
  baseConfig: ImageRuntimeConfig = {},
): EvaluatedDockerfile {
  return evaluateDockerfile(df, { buildArgs, baseConfig, skip: (ins, args) => matchPreamble(ins, args) !== undefined });
}

/**
 * Check before anything is pulled or pushed that the Dockerfile can be applied: it evaluates, and when it has a RUN
 * the executor loads and user namespaces work. Throws ERR_CONFIG / ERR_EXEC_UNAVAILABLE naming `Dockerfile:LINE`.
 */
export async function preflightDockerfile(
  df: ParsedDockerfile,
  buildArgs: Readonly<Record<string, string>>,
  arch: 'amd64' | 'arm64',
  o: {
    executor?: Executor | undefined;
    signal?: AbortSignal | undefined;
    extraSteps?: readonly RunStep[] | undefined;
  } = {},
): Promise<EvaluatedDockerfile> {
  const ev = evaluateProjectDockerfile(df, buildArgs);
  const run = ev.steps.find((s): s is RunStep => s.kind === 'run') ?? o.extraSteps?.[0];
  if (run) await checkExecutor(run.label ?? `${df.file}:${run.ins.line}`, arch, o.executor, o.signal);
  return ev;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

interface CacheRecord {
  digest: Digest;
  size: number;
  diffId: Digest;
}

/** Apply the Dockerfile (see the file header). */
export async function buildDockerfileLayers(df: ParsedDockerfile, o: DockerfileBuildOptions): Promise<DockerfileBuild> {
  const ev = evaluateProjectDockerfile(df, o.buildArgs, (o.base.config.config ?? {}) as ImageRuntimeConfig);
  const baseDiffIds = o.base.config.rootfs.diff_ids;
  const log = o.onLog ?? (() => {});
  const layers: DockerfileLayer[] = [];
  const history: DockerfileHistory[] = [];
  let ctx: BuildContext | undefined;
  const createdDirs = new Set<string>();
  let chain = sha(JSON.stringify(baseDiffIds));
  let ws: Workspace | undefined;
  let executed = 0;
  const recordDir = join(o.cache.dir, 'dockerfile-run');
  const watch = new Set((o.watchFiles ?? CHOWN_FILES).map((p) => p.replace(/^\/+/, '')));
  try {
    for (const step of [...ev.steps, ...(o.extraSteps ?? [])]) {
      throwIfAborted(o.signal);
      const where = (step.kind === 'run' && step.label) || `${df.file}:${step.ins.line}`;
      if (step.kind === 'config') {
        history.push({ createdBy: step.createdBy, layer: undefined, name: `${df.file}:${step.ins.line}` });
        continue;
      }
      let layer: DockerfileLayer;
      if (step.kind === 'copy') {
        ctx ??= await walkContext(o.projectDir);
        const spec = await copyLayerSpec(step, { ctx, file: df.file, scan: o.scan, createdDirs, signal: o.signal });
        const b = await buildLayer(spec, {
          dir: join(o.workDir, 'dockerfile'),
          sourceDateEpoch: o.sourceDateEpoch,
          compression: o.compression,
          level: o.level,
          mediaType: o.mediaType,
          parentMeta: (p) => o.scan.dirs.get(p),
          signal: o.signal,
        });
        layer = { ...b, createdBy: step.createdBy };
        log(`${where}: ${step.createdBy.replace(/ # buildkit$/, '')}`);
        if (ws) await ws.applyLayer(createReadStream(b.path));
      } else {
        const key = sha(
          JSON.stringify({
            chain,
            argv: step.argv,
            env: step.env,
            user: step.user,
            workdir: step.workdir,
            arch: o.arch,
            epoch: o.sourceDateEpoch,
            compression: o.compression,
            // The record holds the compressed digest: a layer compressed at another level is another layer.
            level: compressionLevel(o.compression, o.level),
          }),
        );
        const cached = await readRecord(join(recordDir, `${key}.json`), o.cache);
        if (cached) {
          layer = { ...cached, mediaType: o.mediaType, path: o.cache.path(cached.digest), createdBy: step.createdBy };
          log(`${where}: RUN (cached)`);
          if (ws) await ws.applyLayer(createReadStream(layer.path));
        } else {
          ws ??= await openWorkspace(o, layers);
          log(`${where}: RUN ${step.argv.join(' ')}`);
          const r = await ws.run({
            argv: step.argv,
            env: Object.fromEntries(step.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
            workdir: step.workdir,
            user: step.user,
            label: where,
            certsDir: existsSync(join(o.projectDir, 'certs')) ? join(o.projectDir, 'certs') : undefined,
            mtime: o.sourceDateEpoch > 0 ? o.sourceDateEpoch : undefined,
            onOutput: (b) => {
              log(b.toString('utf8').replace(/\n$/, ''));
            },
          });
          executed++;
          const stored = await o.cache.put(
            Readable.from(
              compressChunks(createReadStream(r.tarPath), o.compression, { level: o.level, signal: o.signal }),
            ),
            undefined,
            { signal: o.signal },
          );
          const diffId = r.diffId as Digest;
          await rm(r.tarPath, { force: true });
          const rec: CacheRecord = { digest: stored.digest, size: stored.size, diffId };
          await mkdir(recordDir, { recursive: true });
          await writeFile(join(recordDir, `${key}.json`), JSON.stringify(rec));
          layer = { ...rec, mediaType: o.mediaType, path: stored.path, createdBy: step.createdBy };
          // The workspace already holds this change (the command ran in it).
        }
      }
      await refreshScan(o.scan, layer.path, watch, o.signal);
      layers.push(layer);
      history.push({ createdBy: layer.createdBy, layer, name: where });
      chain = sha(`${chain}\n${layer.diffId}`);
    }
  } finally {
    await ws?.close();
  }
  return { layers, history, config: ev.configChanged ? ev.config : undefined, executed };
}

/** The image files `--chown NAME` is resolved against. */
const CHOWN_FILES: readonly string[] = ['/etc/passwd', '/etc/group'];

/** The base-scan files to keep current through the Dockerfile's layers: `files` (what the caller edits) + CHOWN_FILES. */
export function dockerfileWatchFiles(files: readonly string[]): string[] {
  return [...new Set([...files, ...CHOWN_FILES])];
}

/** Bring the scan up to date with a layer (its watched files, directories, links, listed children). */
async function refreshScan(
  scan: BaseScan,
  blob: string,
  watch: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<void> {
  await updateScan(scan, readLayer(createReadStream(blob), { signal }), watch);
}

async function openWorkspace(o: DockerfileBuildOptions, below: readonly DockerfileLayer[]): Promise<Workspace> {
  const exec = o.executor ?? defaultExecutor;
  const layers = [
    ...o.base.openers.map((open, i) => ({
      diffId: o.base.config.rootfs.diff_ids[i] ?? '',
      open: async () => Readable.from(await open()),
    })),
    ...below.map((l) => ({ diffId: l.diffId, open: () => Promise.resolve(createReadStream(l.path)) })),
  ];
  const tmpDir = join(o.workDir, 'exec');
  await mkdir(tmpDir, { recursive: true });
  return exec.openWorkspace({ layers, arch: o.arch, tmpDir, signal: o.signal, onWarning: o.onWarning });
}

/** A cached RUN layer whose blob is still in the cache (and verifies by size), else undefined. */
async function readRecord(path: string, cache: BlobCache): Promise<CacheRecord | undefined> {
  try {
    const rec = JSON.parse(await readFile(path, 'utf8')) as CacheRecord;
    return (await cache.has(rec.digest, rec.size)) ? rec : undefined;
  } catch {
    return undefined;
  }
}
