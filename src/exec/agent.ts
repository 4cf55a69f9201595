/**
 * The executor agent: a Node process the library starts inside `unshare --user --mount --map-root-user
 * [--map-auto]` (see workspace.ts), so that extracting layers, running commands and diffing all happen as the
 * namespace's root and owners on disk are the real in-image ones. argv: <rootfs> <workDir>. Protocol: protocol.ts.
 * Not part of the public API.
 */
import { createInterface } from 'node:readline';
import { Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { applyLayerTo } from './apply.js';
import { captureDiff, snapshot } from './diff.js';
import { FrameReader, type AgentMessage, type AgentRequest } from './protocol.js';
import { preparePlaceholders, runInSandbox } from './sandbox.js';

const [root, workDir] = process.argv.slice(2) as [string, string];
const data = new FrameReader(new Socket({ fd: 3, readable: true, writable: false }));
let chain: Promise<void> = Promise.resolve();
const placeholders = new Set<string>();
let applied = 0;

function send(m: AgentMessage): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

async function handle(req: AgentRequest): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'apply': {
      const { body, done } = data.stream();
      try {
        const r = await applyLayerTo(root, body, req.name, undefined, applied++ === 0);
        return { ...r };
      } finally {
        body.destroy();
        await done;
      }
    }
    case 'run': {
      await preparePlaceholders(root, placeholders);
      const before = await snapshot(root, placeholders);
      const r = await runInSandbox(root, workDir, req.step, (chunk, stream) => {
        send({ id: req.id, output: stream, data: chunk.toString('base64') });
      });
      if (r.code !== 0) {
        throw new CanvosError(
          'ERR_RUN_FAILED',
          `${req.step.label}: RUN exited with ${r.code}${r.lastStderr ? `: ${r.lastStderr}` : ''}`,
          {
            hint: 'see the command output above; fix the command or the image it runs in',
          },
        );
      }
      return { ...(await captureDiff(root, before, req.out, { mtime: req.mtime, skip: placeholders })) };
    }
    case 'close':
      await rm(root, { recursive: true, force: true });
      return {};
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const req = JSON.parse(line) as AgentRequest;
  chain = chain.then(async () => {
    try {
      send({ id: req.id, ok: true, result: await handle(req) });
    } catch (e) {
      const err = CanvosError.is(e) ? e : new CanvosError('ERR_INTERNAL', `executor agent: ${(e as Error).message}`);
      send({ id: req.id, ok: false, error: { code: err.code, message: err.message, hint: err.hint } });
    }
    if (req.op === 'close') process.exit(0);
  });
});
// The parent never closes our stdin; if it does, the parent is gone: remove the rootfs (best effort) and exit, which
// also ends a running command (bwrap --die-with-parent).
lines.on('close', () => {
  void rm(root, { recursive: true, force: true }).finally(() => process.exit(0));
});
