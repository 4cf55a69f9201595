import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createProgress, formatBytes, shortDigest } from '../../src/cli/progress.js';
import { formatImageSpec, openDestination, parseImageSpec } from '../../src/transports/resolve-location.js';
import { CanvosError } from '../../src/errors.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return CanvosError.is(e) ? e.code : 'not-canvos';
  }
  return undefined;
}

describe('image location parsing', () => {
  it('parses docker://, bare references, oci: and docker-archive:', () => {
    const d = parseImageSpec('docker://localhost:5000/a/b:v1');
    expect(d.transport === 'docker' && d.ref.toString()).toBe('localhost:5000/a/b:v1');
    const bare = parseImageSpec('ubuntu');
    expect(bare.transport === 'docker' && bare.ref.toString()).toBe('docker.io/library/ubuntu:latest');
    // `foo:bar` is a valid reference (image foo, tag bar), not a transport.
    const fb = parseImageSpec('foo:bar');
    expect(fb.transport === 'docker' && fb.ref.toString()).toBe('docker.io/library/foo:bar');
    expect(parseImageSpec('oci:/tmp/layout')).toEqual({ transport: 'oci', dir: '/tmp/layout', tag: undefined });
    expect(parseImageSpec('oci:/tmp/layout:v1.2')).toEqual({ transport: 'oci', dir: '/tmp/layout', tag: 'v1.2' });
    expect(parseImageSpec('oci:rel:dir/x')).toEqual({ transport: 'oci', dir: 'rel:dir/x', tag: undefined });
    expect(parseImageSpec('docker-archive:/tmp/a.tar')).toEqual({
      transport: 'docker-archive',
      file: '/tmp/a.tar',
      ref: undefined,
    });
    expect(parseImageSpec('docker-archive:/tmp/a.tar:localhost:5000/x:y')).toEqual({
      transport: 'docker-archive',
      file: '/tmp/a.tar',
      ref: 'localhost:5000/x:y',
    });
    expect(parseImageSpec('docker-archive:a.tar:@1')).toEqual({
      transport: 'docker-archive',
      file: 'a.tar',
      ref: '@1',
    });
    for (const s of ['docker://localhost:5000/a/b:v1', 'oci:/tmp/l:t', 'docker-archive:/tmp/a.tar:x:y'])
      expect(formatImageSpec(parseImageSpec(s))).toBe(s);
  });

  it('rejects unknown transports with the list of valid ones, and bad references as references', () => {
    expect(codeOf(() => parseImageSpec('dir:/tmp/x'))).toBe('ERR_TRANSPORT_UNKNOWN');
    expect(codeOf(() => parseImageSpec('oci-archive:x.tar'))).toBe('ERR_TRANSPORT_UNKNOWN');
    expect(codeOf(() => parseImageSpec('zap:/some/where'))).toBe('ERR_TRANSPORT_UNKNOWN');
    try {
      parseImageSpec('zap:/some/where');
    } catch (e) {
      expect((e as Error).message).toBe(
        'unknown transport "zap" in "zap:/some/where" (valid: docker://, oci:, docker-archive:)',
      );
    }
    expect(codeOf(() => parseImageSpec('docker://host.io/Upper'))).toBe('ERR_REFERENCE_INVALID');
    expect(codeOf(() => parseImageSpec('host.io/Upper'))).toBe('ERR_REFERENCE_INVALID');
    expect(codeOf(() => parseImageSpec('oci:'))).toBe('ERR_REFERENCE_INVALID');
    expect(codeOf(() => parseImageSpec('oci:/x:'))).toBe('ERR_REFERENCE_INVALID');
    expect(codeOf(() => parseImageSpec('docker-archive:'))).toBe('ERR_REFERENCE_INVALID');
    expect(codeOf(() => parseImageSpec('docker-archive:a.tar:Bad Ref'))).toBe('ERR_REFERENCE_INVALID');
  });

  it('destinations carry the tag the root manifest gets', () => {
    expect(openDestination('docker://localhost:5000/a/b:v9', { registry: { authFiles: [] } }).tag).toBe('v9');
    expect(openDestination('localhost:5000/a/b', { registry: { authFiles: [] } }).tag).toBe('latest');
    expect(
      openDestination(`localhost:5000/a/b@sha256:${'a'.repeat(64)}`, { registry: { authFiles: [] } }).tag,
    ).toBeUndefined();
    expect(openDestination('oci:/tmp/x:t1').tag).toBe('t1');
    expect(openDestination('docker-archive:/tmp/x.tar:ubuntu').singleImage).toBe(true);
  });
});

describe('progress renderer', () => {
  function sink(isTTY: boolean): { s: PassThrough & { isTTY?: boolean }; text: () => string } {
    const s = new PassThrough() as PassThrough & { isTTY?: boolean };
    s.isTTY = isTTY;
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    return { s, text: () => Buffer.concat(chunks).toString('utf8') };
  }
  const d = `sha256:${'ab'.repeat(32)}`;

  it('prints one plain line per finished blob when not a TTY', () => {
    const { s, text } = sink(false);
    const p = createProgress(s);
    p.onProgress({ phase: 'copy', item: d, transferred: 500, total: 12_300_000, itemsDone: 0, itemsTotal: 2 });
    p.onProgress({
      phase: 'copy',
      item: d,
      transferred: 12_300_000,
      total: 12_300_000,
      itemsDone: 1,
      itemsTotal: 2,
      status: 'copied',
      itemSize: 12_300_000,
    });
    p.onProgress({
      phase: 'copy',
      item: d,
      transferred: 12_300_000,
      total: 12_300_000,
      itemsDone: 2,
      itemsTotal: 2,
      status: 'skipped',
      itemSize: 1000,
    });
    p.done();
    expect(text()).toBe(`copied sha256:abababababab… 12.3 MB\nskipped sha256:abababababab… 1.0 kB\n`);
  });

  it('rewrites a single throttled status line on a TTY and ends it with a newline', () => {
    const { s, text } = sink(true);
    let t = 0;
    const p = createProgress(s, { now: () => t, label: 'copying' });
    t = 1000;
    p.onProgress({ phase: 'copy', transferred: 1_000_000, total: 4_000_000, itemsDone: 1, itemsTotal: 4 });
    t = 1050; // within the redraw interval: skipped
    p.onProgress({ phase: 'copy', transferred: 1_500_000, total: 4_000_000, itemsDone: 1, itemsTotal: 4 });
    t = 2000;
    p.onProgress({ phase: 'copy', transferred: 4_000_000, total: 4_000_000, itemsDone: 4, itemsTotal: 4 });
    p.done();
    const out = text();
    expect(out.split('\r\x1b[K')).toEqual([
      '',
      'copying: 1.0 MB / 4.0 MB  1/4 done  1.0 MB/s',
      'copying: 4.0 MB / 4.0 MB  4/4 done  2.0 MB/s',
      'copying: 4.0 MB / 4.0 MB  4/4 done  2.0 MB/s\n',
    ]);
  });

  it('formats sizes and digests', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_500_000_000)).toBe('1.5 GB');
    expect(shortDigest('sha256:0123456789abcdef')).toBe('sha256:0123456789ab…');
  });
});
