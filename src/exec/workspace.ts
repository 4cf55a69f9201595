/**
 * openWorkspace: the rootless RUN executor. Materialises an image's layers into a work directory and runs commands
 * in it, each RUN's filesystem difference captured as one deterministic tar layer. All file work happens in an agent
 * process (agent.ts) started inside a user + mount namespace (full subordinate id range through newuidmap when
 * /etc/subuid grants one, else a single-uid map; as real root only a mount namespace), so owners are real.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CanvosError, internalError } from '../errors.js';
import { type AgentMessage, type AgentRequest, writeFrames } from './protocol.js';
import { checkArch, lastLine, probeUserNamespaces, tryRun, unshareArgs } from './probe.js';
import type { CapturedLayer, RunStep, Workspace, WorkspaceOptions } from './types.js';
import { abortError, throwIfAborted } from '../util/abort.js';
import { spawnGroup, stopGroup } from '../util/run-tool.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Mapping = 'full' | 'single' | 'host-root';
type Pending = {
  resolve: (r: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  onOutput?: RunStep['onOutput'];
};

/** The compiled agent script (next to this module, or dist/exec/ when running from the bundle or the sources). */
function agentPath(): string {
  for (const rel of ['./agent.js', '../exec/agent.js', '../../dist/exec/agent.js']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new CanvosError('ERR_INTERNAL', 'the executor agent (dist/exec/agent.js) is missing', {
    hint: 'run npm run build',
  });
}

class Agent {
  private readonly child: ChildProcess;
  private readonly stdin: Writable;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stderrTail = '';
  private dead: Error | undefined;
  exited: Promise<void>;

  constructor(mapping: Mapping, script: string, rootfs: string, workDir: string) {
    const [unshare = 'unshare', ...flags] = unshareArgs(mapping);
    // Its own process group: an abort, a failed layer or the CLI's exit stops the agent and every RUN it started.
    this.child = spawnGroup(unshare, [...flags, '--', process.execPath, script, rootfs, workDir], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const { stdin, stdout, stderr } = this.child;
    if (!stdin || !stdout || !stderr) internalError('the agent is spawned with piped stdio');
    this.stdin = stdin;
    let buf = '';
    stdout.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.onMessage(JSON.parse(buf.slice(0, i)) as AgentMessage);
        buf = buf.slice(i + 1);
      }
    });
    stderr.on('data', (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString('utf8')).slice(-4096);
    });
    for (const s of [stdin, this.child.stdio[3] as Writable]) s.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.fail(new CanvosError('ERR_EXEC_UNAVAILABLE', `cannot start the executor: ${e.message}`));
      });
      this.child.on('close', (code, sig) => {
        this.fail(
          new CanvosError(
            'ERR_INTERNAL',
            `the executor agent exited (${sig ?? `exit ${code}`}): ${lastLine(this.stderrTail)}`,
          ),
        );
        resolve();
      });
    });
  }

  private onMessage(m: AgentMessage): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if ('output' in m) {
      p.onOutput?.(Buffer.from(m.data, 'base64'), m.output);
      return;
    }
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new CanvosError(m.error.code, m.error.message, m.error.hint ? { hint: m.error.hint } : {}));
  }

  fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  request(
    req: DistributiveOmit<AgentRequest, 'id'>,
    onOutput?: RunStep['onOutput'],
    data?: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const done = new Promise<Record<string, unknown>>((resolve, reject) =>
      this.pending.set(id, { resolve, reject, onOutput }),
    );
    this.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
    if (!data) return done;
    // A source that fails mid-layer leaves the agent waiting for frames: it is stopped (the workspace is unusable).
    const sent = writeFrames(this.child.stdio[3] as Writable, data, signal).catch((e: unknown) => {
      const err = CanvosError.is(e)
        ? e
        : new CanvosError('ERR_LAYER_CORRUPT', `reading the layer failed: ${(e as Error).message}`, { cause: e });
      this.fail(this.dead ?? err);
      this.kill();
      throw this.dead ?? err;
    });
    return Promise.all([done, sent]).then(([r]) => r);
  }

  kill(): void {
    stopGroup(this.child, 0);
  }
}

/** Materialise `opts.layers` (base first) and return a workspace that runs steps on top of them. */
export async function openWorkspace(opts: WorkspaceOptions): Promise<Workspace> {
  const { signal } = opts;
  throwIfAborted(signal);
  const probe = await probeUserNamespaces(signal ? { signal } : {});
  if (!probe.ok)
    throw new CanvosError('ERR_EXEC_UNAVAILABLE', `cannot run commands here: ${probe.reason}`, { hint: probe.hint });
  const emulation = checkArch(opts.arch);
  if (emulation) opts.onWarning?.('EXEC_EMULATED', `${emulation}; expect commands to be several times slower`);
  if (probe.mapping === 'single') {
    opts.onWarning?.(
      'EXEC_SINGLE_UID',
      `${probe.detail}: files the image gives to other users are owned by root, and chown to another id fails inside RUN`,
    );
  }
  const script = agentPath();
  const workDir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'canvos-exec-'));
  const rootfs = join(workDir, 'rootfs');
  const layerDir = opts.layerDir ?? join(workDir, 'layers');
  await mkdir(rootfs, { mode: 0o755 });
  await mkdir(layerDir, { recursive: true });
  const agent = new Agent(probe.mapping, script, rootfs, workDir);
  let closed: Promise<void> | undefined;
  let runs = 0;
  const onAbort = (): void => {
    agent.fail(abortError(signal));
    agent.kill();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const guard = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      throw signal?.aborted ? abortError(signal) : e;
    });

  const close = (): Promise<void> =>
    (closed ??= (async () => {
      signal?.removeEventListener('abort', onAbort);
      if (agent.alive)
        await agent.request({ op: 'close' }).catch(() => {
          agent.kill();
        });
      else agent.kill();
      await agent.exited;
      if (existsSync(rootfs)) {
        // Files owned by subordinate ids can only be removed from inside a namespace with the same mapping.
        await tryRun([...unshareArgs(probe.mapping), 'rm', '-rf', '--', rootfs]);
      }
      await rm(workDir, { recursive: true, force: true });
    })());

  const applyLayer = async (tar: Readable | NodeJS.ReadableStream, name = 'layer'): Promise<void> => {
    const r = await guard(agent.request({ op: 'apply', name }, undefined, tar as AsyncIterable<Buffer>, signal));
    if (probe.mapping !== 'single' && Number(r.chownFailed) > 0) {
      opts.onWarning?.(
        'EXEC_CHOWN',
        `${name}: ${Number(r.chownFailed)} entries keep the namespace root as owner (their ids are outside the mapped range)`,
      );
    }
  };

  const ws: Workspace = {
    rootfs,
    applyLayer: (tar) => applyLayer(tar, 'applied layer'),
    async run(step: RunStep): Promise<CapturedLayer> {
      throwIfAborted(signal);
      const out = join(layerDir, `run-${++runs}.tar`);
      const { onOutput, mtime, ...rest } = step;
      const r = await guard(
        agent.request({ op: 'run', step: rest, out, ...(mtime !== undefined ? { mtime } : {}) }, onOutput),
      );
      return { tarPath: out, diffId: String(r.diffId), size: Number(r.size), entries: Number(r.entries) };
    },
    close,
  };
  try {
    for (const [i, l] of opts.layers.entries()) await applyLayer(await l.open(), `layer ${i} (${l.diffId})`);
  } catch (e) {
    await close();
    throw e;
  }
  return ws;
}
