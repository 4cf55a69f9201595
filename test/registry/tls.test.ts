import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository } from '../../src/registry/index.js';
import { run, tmpDir } from '../helpers/tools.js';

// docker-registry serving HTTPS with a certificate from a throw-away CA: the client must trust it only when
// told to (certsDir / caFiles), or when verification is switched off.
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

describe('TLS registries', () => {
  let tmp: { path: string; cleanup(): Promise<void> };
  let proc: ChildProcess | undefined;
  let host = '';
  const certs = () => join(tmp.path, 'certs');

  beforeAll(async () => {
    tmp = await tmpDir('canvos-tls-');
    await mkdir(certs(), { recursive: true });
    const ssl = async (args: string[]) => {
      const r = await run('openssl', args, { cwd: tmp.path });
      if (r.code !== 0) throw new Error(r.stderr);
    };
    await ssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=canvos test CA',
      '-keyout',
      'ca.key',
      '-out',
      join(certs(), 'ca.crt'),
    ]);
    await ssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      'srv.key',
      '-out',
      'srv.csr',
    ]);
    await writeFile(join(tmp.path, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    await ssl([
      'x509',
      '-req',
      '-in',
      'srv.csr',
      '-CA',
      join(certs(), 'ca.crt'),
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'srv.crt',
    ]);
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    await writeFile(
      join(tmp.path, 'config.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(tmp.path, 'data')}\nhttp:\n  addr: ${host}\n  tls:\n    certificate: ${join(tmp.path, 'srv.crt')}\n    key: ${join(tmp.path, 'srv.key')}\nlog:\n  level: error\n`,
    );
    proc = spawn('docker-registry', ['serve', join(tmp.path, 'config.yml')], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const r = await run('openssl', ['s_client', '-connect', host, '-brief'], { input: '', timeoutMs: 2000 });
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  });
  afterAll(async () => {
    proc?.kill();
    await tmp?.cleanup();
  });

  const data = Buffer.from('tls blob');
  const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };

  it('refuses an untrusted certificate with a hint', async () => {
    const repo = new RegistryRepository(host, 'tls/a', { authFiles: [], retry: { attempts: 1 } });
    await expect(repo.headBlob(desc.digest)).rejects.toMatchObject({
      code: 'ERR_NETWORK',
      hint: expect.stringMatching(/certsDir/),
    });
    await repo.close();
  });

  it('trusts the CA from certsDir, and from caFiles', async () => {
    const a = new RegistryRepository(host, 'tls/a', { authFiles: [], certsDir: certs() });
    expect(await a.pushBlob(desc, async () => Readable.from([data]))).toBe('uploaded');
    await a.close();
    const b = new RegistryRepository(host, 'tls/a', { authFiles: [], caFiles: [join(certs(), 'ca.crt')] });
    expect(await b.headBlob(desc.digest)).toEqual({ size: data.length });
    await b.close();
  });

  it('skips verification with tlsVerify: false', async () => {
    const repo = new RegistryRepository(host, 'tls/a', { authFiles: [], tlsVerify: false });
    expect(await repo.headBlob(desc.digest)).toEqual({ size: data.length });
    await repo.close();
  });
});
