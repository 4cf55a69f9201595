/**
 * The rootless RUN executor on a tiny busybox base, run as the unprivileged test user: what a RUN's captured layer
 * holds (whiteouts, opaque dirs, hardlinks, owners, xattrs, no mount-point leftovers), USER, determinism, a failing
 * command, abort cleanup, and the refusals (user namespaces disabled, foreign arch without binfmt).
 */
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { checkArch, openWorkspace, probeUserNamespaces, USERNS_HINT, type RunStep } from '../../src/exec/index.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { fileURLToPath } from 'node:url';
import { CAP_NET_RAW, readTar, runDriver, writeTinyBase, type DriverEvent } from './helpers.js';

const EPOCH = 1_700_000_000;
const ENV = { PATH: '/bin' };
const STEP1 = [
  'echo new > /new',
  'rm /data/del',
  'rm -rf /data/dir && mkdir /data/dir && echo n > /data/dir/n',
  'ln /new /newlink',
  'chown 1000:1000 /new',
  'touch /data/xfile /bin/capped',
].join(' && ');

let dir: string;
let base: string;

beforeAll(async () => {
  dir = unprivilegedTempDir('canvos-exec-test-');
  base = join(dir, 'base.tar');
  await writeTinyBase(base);
  await mkdir(join(dir, 'certs'));
  await writeFile(
    join(dir, 'certs', 'proxy.crt'),
    '-----BEGIN CERTIFICATE-----\nTESTCERT\n-----END CERTIFICATE-----\n',
  );
  await writeFile(join(dir, 'certs', 'README'), 'not a certificate');
});
const scratches: string[] = [];
/** A fresh work-dir parent owned by the unprivileged user (removed after the file). */
function scratch(): string {
  const d = unprivilegedTempDir('canvos-exec-tmp-');
  scratches.push(d);
  return d;
}

afterAll(async () => {
  for (const d of [dir, ...scratches]) await rm(d, { recursive: true, force: true });
});

function steps(): Array<Record<string, unknown>> {
  return [
    { argv: ['/bin/sh', '-c', STEP1], env: ENV, workdir: '/', label: 'Dockerfile:2', mtime: EPOCH },
    {
      argv: ['/bin/sh', '-c', 'id -u > me && id -G >> me'],
      env: ENV,
      workdir: '/home/app',
      user: 'app',
      label: 'Dockerfile:4',
      mtime: EPOCH,
    },
    { argv: ['/bin/sh', '-c', 'echo boom >&2; exit 7'], env: ENV, workdir: '/', label: 'Dockerfile:9', mtime: EPOCH },
    {
      argv: ['/bin/sh', '-c', 'echo "CA $SSL_CERT_FILE"; cat "$CURL_CA_BUNDLE"'],
      env: ENV,
      workdir: '/',
      label: 'Dockerfile:11',
      certsDir: join(dir, 'certs'),
    },
    {
      argv: ['/bin/stat', '-c', 'STAT %n %a %u:%g %Y %h', '/data/keep', '/data/h1', '/bin/busybox', '/home'],
      env: ENV,
      workdir: '/',
      label: 'Dockerfile:10',
    },
  ];
}

const layers = (events: DriverEvent[]): DriverEvent[] => events.filter((e) => e.event === 'layer');

let first: DriverEvent[] = [];

describe('openWorkspace as an unprivileged user', () => {
  it('captures a RUN as whiteouts, an opaque dir, a hardlink, owners and xattrs; runs USER app; reports a failing RUN', async () => {
    const tmp = scratch();
    const { events, stderr } = await runDriver(dir, {
      layers: [base],
      tmpDir: tmp,
      layerDir: join(dir, 'out1'),
      steps: steps(),
    });
    first = events;
    expect(events[0]).toMatchObject({ event: 'probe', ok: true, mapping: 'full' });
    const [l1, l2] = layers(events);
    const entries = await readTar(String(l1!.tarPath));
    expect(entries.map((e) => e.path)).toEqual([
      'bin',
      'bin/capped',
      'data',
      'data/.wh.del',
      'data/dir',
      'data/dir/.wh..wh..opq',
      'data/dir/n',
      'data/xfile',
      'new',
      'newlink',
    ]);
    const by = new Map(entries.map((e) => [e.path, e]));
    expect(by.get('new')).toMatchObject({ type: 'file', uid: 1000, gid: 1000, mtime: EPOCH });
    expect(by.get('new')!.data!.toString()).toBe('new\n');
    expect(by.get('newlink')).toMatchObject({ type: 'hardlink', linkname: 'new' });
    expect(by.get('data/xfile')!.xattrs?.['user.canvos']?.toString()).toBe('hello'); // set when applied, kept when captured
    expect(l1!.entries).toBe(10);
    // security.capability survives materialising (written after chown) and capture, as seen in the namespace.
    expect(by.get('bin/capped')!.xattrs?.['security.capability']).toEqual(CAP_NET_RAW);
    // USER app: the process ran as 1000 with its supplementary group, and owns what it wrote.
    const e2 = await readTar(String(l2!.tarPath));
    const me = e2.find((e) => e.path === 'home/app/me')!;
    expect(me).toMatchObject({ uid: 1000, gid: 1000 });
    expect(me.data!.toString()).toBe('1000\n1000 50\n');
    // The failing RUN names its label and the last stderr line.
    const err = events.find((e) => e.event === 'error');
    expect(err).toMatchObject({ code: 'ERR_RUN_FAILED', message: 'Dockerfile:9: RUN exited with 7: boom' });
    // The materialised base kept modes, owners, mtimes and the hardlink pair.
    expect(stderr.split('\n').filter((l) => l.startsWith('STAT '))).toEqual([
      'STAT /data/keep 640 1000:50 1600000000 1',
      'STAT /data/h1 644 0:0 1600000000 2',
      'STAT /bin/busybox 755 0:0 1600000000 1',
      'STAT /home 755 0:0 1600000000 3',
    ]);
    expect(layers(events).find((l) => l.label === 'Dockerfile:10')).toMatchObject({ entries: 0 });
    // certsDir: the command sees a CA bundle with the project's certificates, and it is not part of the layer.
    expect(stderr).toContain(
      'CA /tmp/.canvos-ca-bundle.pem\n-----BEGIN CERTIFICATE-----\nTESTCERT\n-----END CERTIFICATE-----\n',
    );
    expect(layers(events).find((l) => l.label === 'Dockerfile:11')).toMatchObject({ entries: 0 });
    expect(await readdir(tmp)).toEqual([]); // close() removed the work dir
  });

  it('gives the same diffIds for the same steps', async () => {
    const { events } = await runDriver(dir, {
      layers: [base],
      tmpDir: dir,
      layerDir: join(dir, 'out2'),
      steps: steps().slice(0, 2),
    });
    expect(layers(events).map((e) => e.diffId)).toEqual(
      layers(first)
        .slice(0, 2)
        .map((e) => e.diffId),
    );
  });

  it('abort kills the command and leaves nothing behind', async () => {
    const tmp = scratch();
    const { events, ms } = await runDriver(dir, {
      layers: [base],
      tmpDir: tmp,
      steps: [{ argv: ['/bin/sleep', '60'], env: ENV, workdir: '/', label: 'Dockerfile:3', abortAfterMs: 1000 }],
    });
    expect(events.find((e) => e.event === 'error')).toMatchObject({ code: 'ERR_ABORTED' });
    expect(ms).toBeLessThan(30_000);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('a layer source that fails mid-stream, or a corrupt layer, fails openWorkspace and leaves nothing behind', async () => {
    const tmp = scratch();
    const { events } = await runDriver(dir, { layers: [base], tmpDir: tmp, failAfter: 300_000, steps: [] });
    expect(events.find((e) => e.event === 'error')).toMatchObject({
      code: 'ERR_LAYER_CORRUPT',
      message: expect.stringContaining('connection reset mid-layer'),
    });
    const junk = join(dir, 'junk.tar');
    await writeFile(junk, Buffer.alloc(4096, 7), { mode: 0o644 });
    const r2 = await runDriver(dir, { layers: [base, junk], tmpDir: tmp, steps: [] });
    expect(r2.events.find((e) => e.event === 'error')).toMatchObject({
      code: 'ERR_LAYER_CORRUPT',
      message: expect.stringContaining('invalid tar header checksum'),
    });
    expect(await readdir(tmp)).toEqual([]);
  });

  it('the command shares the host network and gets the proxy variables', async () => {
    const web = createServer((_req, res) => res.end('hello through the proxy\n'));
    const target = await new Promise<string>((resolve) =>
      web.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(web.address() as { port: number }).port}/hello`)),
    );
    const proxy = await startForwardProxy();
    try {
      const env = { ...ENV, http_proxy: proxy.url };
      const { events, stderr } = await runDriver(dir, {
        layers: [base],
        tmpDir: scratch(),
        steps: [{ argv: ['/bin/wget', '-q', '-O', '-', target], env, workdir: '/', label: 'Dockerfile:5' }],
      });
      expect(events.find((e) => e.event === 'layer')).toMatchObject({ label: 'Dockerfile:5', entries: 0 });
      expect(stderr).toContain('hello through the proxy');
      expect(proxy.seen).toEqual([`GET ${target}`]);
    } finally {
      proxy.server.closeAllConnections();
      proxy.server.close();
      web.close();
    }
  });

  it('CANVOS_EXEC_DISABLE_USERNS=1 makes the probe fail and openWorkspace refuse with the hint', async () => {
    const { events } = await runDriver(
      dir,
      { layers: [base], tmpDir: dir, steps: [] },
      { CANVOS_EXEC_DISABLE_USERNS: '1' },
    );
    expect(events[0]).toMatchObject({
      event: 'probe',
      ok: false,
      reason: expect.stringContaining('CANVOS_EXEC_DISABLE_USERNS=1'),
    });
    expect(events[0]!.hint).toMatch(/enable unprivileged user namespaces .*pre-bake the change into BASE_IMAGE/);
    expect(events.find((e) => e.event === 'error')).toMatchObject({ code: 'ERR_EXEC_UNAVAILABLE' });
  });
});

describe('a real user-namespace failure', () => {
  it('the probe tries unshare and names the sysctl when user.max_user_namespaces is 0 (set in a nested namespace)', async () => {
    // The user.* sysctls are per user namespace: its root may lower them. Inside a namespace of the test user, set
    // the limit to 0, become an ordinary uid there, and probe: the kernel really refuses the unshare.
    const lib = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
    const probe = `import(${JSON.stringify(lib)}).then((m) => m.probeUserNamespaces()).then((r) => console.log(JSON.stringify(r)))`;
    const inner = [
      '/usr/bin/setpriv',
      '--reuid=1000',
      '--regid=1000',
      '--clear-groups',
      '--',
      process.execPath,
      '--input-type=module',
      '-e',
      probe,
    ];
    const script = `echo 0 > /proc/sys/user/max_user_namespaces && cd / && exec "$@"`;
    const argv = asUnprivileged([
      'unshare',
      '--user',
      '--map-root-user',
      '--map-auto',
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
      ...inner,
    ]);
    const r = await run(argv[0]!, argv.slice(1), { cwd: '/' });
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout.trim()) as Record<string, string>;
    expect(p).toMatchObject({
      ok: false,
      reason: expect.stringMatching(
        /^user namespaces are disabled \(sysctl user.max_user_namespaces = 0\): unshare --user failed: /,
      ),
    });
    expect(p.hint).toBe(USERNS_HINT);
  });
});

describe('without a subordinate id range', () => {
  it('maps only root, warns EXEC_SINGLE_UID once, and a chown to another id fails the RUN', async () => {
    // Inside a namespace of the test user, uid 1000 has no /etc/subuid range: the executor falls back to one uid.
    const open = mkdtempSync(join(tmpdir(), 'canvos-exec-single-'));
    try {
      chmodSync(open, 0o777);
      copyFileSync(base, join(open, 'base.tar'));
      chmodSync(join(open, 'base.tar'), 0o644);
      const cfg = {
        layers: [join(open, 'base.tar')],
        tmpDir: open,
        steps: [
          {
            argv: ['/bin/sh', '-c', 'echo hi > /x && stat -c "OWNER %u" /data/keep'],
            env: ENV,
            workdir: '/',
            label: 'Dockerfile:2',
          },
          { argv: ['/bin/sh', '-c', 'chown 1000 /x'], env: ENV, workdir: '/', label: 'Dockerfile:3' },
        ],
      };
      writeFileSync(join(open, 'cfg.json'), JSON.stringify(cfg), { mode: 0o644 });
      const driver = fileURLToPath(new URL('./driver.mjs', import.meta.url));
      const inner = [
        '/usr/bin/setpriv',
        '--reuid=1000',
        '--regid=1000',
        '--clear-groups',
        '--',
        '/usr/bin/env',
        'PATH=/usr/bin:/bin',
        `HOME=${open}`,
        process.execPath,
        driver,
        join(open, 'cfg.json'),
      ];
      const argv = asUnprivileged(['unshare', '--user', '--map-root-user', '--map-auto', '--', ...inner]);
      const r = await run(argv[0]!, argv.slice(1), { cwd: '/', timeoutMs: 100_000 });
      const events = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as DriverEvent);
      expect(events[0], r.stderr).toMatchObject({ event: 'probe', ok: true, mapping: 'single' });
      expect(events.filter((e) => e.event === 'warning').map((e) => e.code)).toEqual(['EXEC_SINGLE_UID']);
      expect(r.stderr).toContain('OWNER 0'); // /data/keep belongs to 1000 in the image: not representable here
      expect(layers(events)).toEqual([expect.objectContaining({ label: 'Dockerfile:2', entries: 1 })]);
      expect(events.find((e) => e.event === 'error')).toMatchObject({
        code: 'ERR_RUN_FAILED',
        message: expect.stringMatching(/^Dockerfile:3: RUN exited with 1: .*Invalid argument/),
      });
      expect(readdirSync(open).sort()).toEqual(['base.tar', 'cfg.json']);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });
});

describe.runIf((process.getuid?.() ?? 0) === 0)('openWorkspace as real root (in-process)', () => {
  it('uses only a mount namespace and captures the same layer as the rootless run', async () => {
    const warnings: string[] = [];
    const ws = await openWorkspace({
      layers: [{ diffId: 'tiny', open: async () => createReadStream(base) }],
      arch: 'amd64',
      tmpDir: dir,
      onWarning: (c) => warnings.push(c),
    });
    try {
      const [step1] = steps();
      const r = await ws.run(step1 as unknown as RunStep);
      expect(r.diffId).toBe(layers(first).find((l) => l.label === 'Dockerfile:2')?.diffId);
      expect(warnings).toEqual([]);
    } finally {
      await ws.close();
    }
    expect(existsSync(ws.rootfs)).toBe(false);
  });
});

describe('refusals in-process', () => {
  it('a foreign arch without a qemu binfmt handler is refused up front', async () => {
    const name = process.arch === 'x64' ? 'qemu-aarch64' : 'qemu-x86_64';
    const foreign = process.arch === 'x64' ? 'arm64' : 'amd64';
    if (existsSync(`/proc/sys/fs/binfmt_misc/${name}`)) {
      expect(checkArch(foreign)).toMatch(/binfmt/);
      return;
    }
    const err = await openWorkspace({ layers: [], arch: foreign, tmpDir: dir }).catch((e: unknown) => e);
    expect(CanvosError.is(err) && err.code).toBe('ERR_EXEC_UNAVAILABLE');
    expect((err as CanvosError).hint).toBe('apt-get install qemu-user-static binfmt-support');
  });

  it('the probe reports host-root as root, and honours CANVOS_EXEC_DISABLE_USERNS', async () => {
    const before = process.env.CANVOS_EXEC_DISABLE_USERNS;
    try {
      process.env.CANVOS_EXEC_DISABLE_USERNS = '1';
      expect(await probeUserNamespaces()).toMatchObject({ ok: false });
    } finally {
      if (before === undefined) delete process.env.CANVOS_EXEC_DISABLE_USERNS;
      else process.env.CANVOS_EXEC_DISABLE_USERNS = before;
    }
    const p = await probeUserNamespaces();
    if ((process.getuid?.() ?? 0) === 0) expect(p).toMatchObject({ ok: true, mapping: 'host-root' });
    else expect(p.ok).toBe(true);
  });
});
