/**
 * A real CNCF distribution 2.8 registry (Debian's /usr/bin/docker-registry) for tests: free 127.0.0.1 port,
 * filesystem storage in a temp dir, deletes enabled, and optional htpasswd (bcrypt) or bearer-token auth backed by
 * the real token server of ./token-server.ts. Its output goes to registry.log in the temp dir; a failed start
 * throws with the log's tail. Every registry still running when the test process exits is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from './tools.js';
import { startTokenServer, type TokenServer } from './token-server.js';

export type { TokenServer } from './token-server.js';

/** A running registry (see the file header). */
export interface TestRegistry {
  /** 'http://127.0.0.1:PORT' ('https://…' with the tls option) */
  url: string;
  /** '127.0.0.1:PORT' */
  host: string;
  auth: 'none' | 'basic' | 'bearer';
  /** Set for basic and bearer. */
  username?: string;
  password?: string;
  /** Set for bearer. */
  tokenServer?: TokenServer;
  /** Storage root (`<dataDir>/docker/registry/v2/...`); tests may corrupt blobs there. */
  dataDir: string;
  /** Extra: the registry's stdout+stderr log file. */
  logPath: string;
  stop(): Promise<void>;
}

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** Authentication mode. Default: 'none'. */
  auth?: 'none' | 'basic' | 'bearer';
  /** User for basic/bearer. Default: 'tester'. */
  username?: string;
  /** Password for basic/bearer. Default: a random string. */
  password?: string;
  /** Extra: bearer access-token lifetime in seconds. Default: 300. */
  tokenExpiresIn?: number;
  /** Extra: how bearer JWTs name their key, see TokenServerOptions.keyHeader. Default: 'x5c'. */
  tokenKeyHeader?: 'x5c' | 'kid';
  /**
   * Extra: distribution config merged over the generated one (objects merged recursively, other values replaced),
   * e.g. `{ validation: { disabled: true } }` or `{ proxy: { remoteurl } }`. Default: none.
   */
  config?: Record<string, unknown>;
  /**
   * Extra: serve HTTPS (distribution's `http.tls`) with this certificate and key (PEM paths); `clientCas` turns on
   * client-certificate authentication (`http.tls.clientcas`), and `probeCert`/`probeKey` is the client pair the
   * readiness probe presents then. `url` becomes `https://…`. Default: plain HTTP.
   */
  tls?: { certificate: string; key: string; clientCas?: string[]; probeCert?: string; probeKey?: string };
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : v;
  return out;
}

// The registry runs under a small sh supervisor holding a pipe from us on fd 3: when the pipe closes — stop(),
// or this process dying in any way, even SIGKILL of a vitest worker — the supervisor kills the registry and
// removes its temp dir, so no registry outlives its test process. $1 = config, $2 = temp root.
const SUPERVISOR = `exec 3<&0
/usr/bin/docker-registry serve "$1" </dev/null &
reg=$!
( while read -r _; do :; done <&3; : > "$2/.stopping"; kill -TERM $reg 2>/dev/null; n=0
  while kill -0 $reg 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  kill -KILL $reg 2>/dev/null ) </dev/null &
watcher=$!
wait $reg; code=$?
kill $watcher 2>/dev/null
# Only a stop (pipe closed) removes the temp dir; a registry that died on its own (port taken) is retried in it.
if [ -e "$2/.stopping" ]; then rm -rf "$2"; fi
exit $code`;
/** A port the kernel just considered free (it can be taken again before the registry binds: callers retry). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Resolves true once GET /v2/ answers (any status) from THIS registry, recognised by the `x-canvos-test-registry`
 * header its config makes it send: between freePort() and the bind, another test's server can take the port, and
 * its answers must not pass for ours (ours then exits with "address already in use" and is retried). False if the
 * process exits or the deadline passes.
 */
async function waitReady(
  url: string,
  child: ChildProcess,
  deadlineMs: number,
  marker: string,
  tls?: StartRegistryOptions['tls'],
): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  const tlsOpts = tls
    ? {
        rejectUnauthorized: false,
        ...(tls.probeCert ? { cert: await readFile(tls.probeCert), key: await readFile(tls.probeKey!) } : {}),
      }
    : {};
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const request = tls ? httpsRequest : httpRequest;
      const req = request(`${url}/v2/`, { timeout: 1000, ...tlsOpts }, (res) => {
        res.resume();
        resolve(res.headers['x-canvos-test-registry'] === marker);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    child.stdin?.destroy();
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

/** Starts a registry; see {@link StartRegistryOptions}. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const username = auth === 'none' ? undefined : (opts.username ?? 'tester');
  const password = auth === 'none' ? undefined : (opts.password ?? `pw-${randomBytes(9).toString('base64url')}`);
  const root = await mkdtemp(join(tmpdir(), 'canvos-registry-'));
  const dataDir = join(root, 'data');
  const logPath = join(root, 'registry.log');
  await mkdir(dataDir);
  let tokenServer: TokenServer | undefined;
  try {
    let authConfig: Record<string, unknown> | undefined;
    if (auth === 'basic') {
      // distribution's htpasswd backend accepts only bcrypt entries.
      const h = await run('htpasswd', ['-Bbn', username!, password!]);
      if (h.code !== 0) throw new Error(`htpasswd failed: ${h.stderr}`);
      await writeFile(join(root, 'htpasswd'), h.stdout.trim() + '\n', { mode: 0o600 });
      authConfig = { htpasswd: { realm: 'canvos-test', path: join(root, 'htpasswd') } };
    } else if (auth === 'bearer') {
      tokenServer = await startTokenServer({
        users: { [username!]: password! },
        dir: root,
        expiresIn: opts.tokenExpiresIn,
        keyHeader: opts.tokenKeyHeader,
      });
      authConfig = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certPath,
        },
      };
    }
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
      const marker = randomBytes(8).toString('hex');
      const generated = {
        version: 0.1,
        log: { level: 'info', accesslog: { disabled: true } },
        storage: {
          filesystem: { rootdirectory: dataDir },
          delete: { enabled: true },
          // No background upload purging: it only adds noise and CPU to short-lived test registries.
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: {
          addr: `127.0.0.1:${port}`,
          secret: randomBytes(16).toString('hex'),
          headers: { 'X-Canvos-Test-Registry': [marker] },
        },
        ...(authConfig ? { auth: authConfig } : {}),
      };
      if (opts.tls) {
        const { certificate, key, clientCas } = opts.tls;
        (generated.http as Json).tls = { certificate, key, ...(clientCas ? { clientcas: clientCas } : {}) };
      }
      const config = opts.config ? merge(generated, opts.config) : generated;
      // YAML is a superset of JSON, so the registry reads this as is.
      const configPath = join(root, 'config.yml');
      await writeFile(configPath, JSON.stringify(config, null, 2));
      const fd = openSync(logPath, 'a');
      const child = spawn('sh', ['-c', SUPERVISOR, 'sh', configPath, root], { stdio: ['pipe', fd, fd] });
      closeSync(fd);
      // Neither the supervisor nor its pipe keeps a test process alive; exiting closes the pipe and cleans up.
      child.unref();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      const ready = await Promise.race([waitReady(url, child, 15_000, marker, opts.tls), spawnError]);
      if (ready === true) {
        return {
          url,
          host: `127.0.0.1:${port}`,
          auth,
          username,
          password,
          tokenServer,
          dataDir,
          logPath,
          async stop() {
            await stopChild(child);
            await tokenServer?.stop();
            await rm(root, { recursive: true, force: true });
          },
        };
      }
      const exited = child.exitCode !== null ? `exited with code ${child.exitCode}` : 'did not answer /v2/ within 15 s';
      // Read the log first: stopping a hung registry makes its supervisor delete the temp dir.
      const log = await readFile(logPath, 'utf8').catch(() => '');
      await stopChild(child);
      if (/address already in use/.test(log) && attempt < 5) continue;
      const why = ready instanceof Error ? ready.message : exited;
      throw new Error(`docker-registry failed to start (${why}); log tail:\n${log.split('\n').slice(-20).join('\n')}`);
    }
  } catch (e) {
    await tokenServer?.stop();
    await rm(root, { recursive: true, force: true });
    throw e;
  }
}

/** The file holding the blob (or manifest) with hex digest `hex` in a registry's storage (`TestRegistry.dataDir`). */
export async function findBlobData(root: string, hex: string): Promise<string> {
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    const dir = e.parentPath;
    if (e.isFile() && e.name === 'data' && dir.endsWith(`/${hex}`)) return join(dir, e.name);
  }
  throw new Error(`blob ${hex} not found under ${root}`);
}
