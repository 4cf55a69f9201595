/**
 * Minimal real registry for benches: Debian's /usr/bin/docker-registry (CNCF distribution 2.8) on a free loopback port,
 * filesystem storage in a temp dir, no auth. Deliberately duplicates a small part of test/helpers/registry.ts because
 * benches are plain .mjs run by Node 20 without a TypeScript loader.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A port the kernel considered free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** True once /v2/ answers from THIS registry (its config sends `marker`): another server may have taken the port. */
function ping(url, marker) {
  return new Promise((resolve) => {
    const req = request(`${url}/v2/`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.headers['x-canvos-bench-registry'] === marker);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

const live = new Set();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Start a registry; resolves {url, host, dataDir, pid, stop()}. */
export async function startRegistry() {
  const dir = await mkdtemp(join(tmpdir(), 'bench-registry-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const marker = randomBytes(8).toString('hex');
    const cfg = {
      version: 0.1,
      log: { level: 'error', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
      http: {
        addr: `127.0.0.1:${port}`,
        secret: randomBytes(16).toString('hex'),
        headers: { 'X-Canvos-Bench-Registry': [marker] },
      },
    };
    await writeFile(join(dir, 'config.yml'), JSON.stringify(cfg));
    const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    live.add(child);
    const url = `http://127.0.0.1:${port}`;
    const end = Date.now() + 15000;
    let ok = false;
    while (Date.now() < end && child.exitCode === null) {
      if ((ok = await ping(url, marker))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!ok) {
      child.kill('SIGKILL');
      live.delete(child);
      if (attempt < 4) continue;
      throw new Error('docker-registry did not start');
    }
    return {
      url,
      host: `127.0.0.1:${port}`,
      dataDir: join(dir, 'data'),
      pid: child.pid,
      async stop() {
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        live.delete(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
