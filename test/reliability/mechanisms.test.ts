/**
 * The shared mechanisms behind the reliability classes, checked directly: redaction, the error mapping (errno,
 * zlib, network), linear YAML with duplicate keys, UTF-8 offsets, mkdirs under /proc, and the retry budget helpers.
 */
import { describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { redactText } from '../../src/errors.js';
import { toCanvosError } from '../../src/error-map.js';
import { mkdirs } from '../../src/fs-util.js';
import { firstInvalidUtf8, parseYaml } from '../../src/text-input.js';
import { parsePlatform, hostArchitecture } from '../../src/image/platform.js';
import { mayResume } from '../../src/http/retry.js';

describe('redactText', () => {
  it.each([
    [
      'https://u:pw@host/x?token=abc&a=1&X-Amz-Signature=ff',
      'https://host/x?token=REDACTED&a=1&X-Amz-Signature=REDACTED',
    ],
    ['push docker://bob:s3cret@reg.io/a:b failed', 'push docker://reg.io/a:b failed'],
    ['IMAGE_REGISTRY=bob:s3cret@ttl.sh/x', 'IMAGE_REGISTRY=ttl.sh/x'],
    ['"url":"https://x.io/f?sig=abc&se=2025"', '"url":"https://x.io/f?sig=REDACTED&se=2025"'],
  ])('%s', (input, out) => {
    expect(redactText(input)).toBe(out);
  });

  it.each(['oci:/tmp/a:tag', 'localhost:5000/a:b', 'alpine:3.19@sha256:abcd', 'docker-archive:/x.tar:name:tag'])(
    'leaves %s alone',
    (s) => {
      expect(redactText(s)).toBe(s);
    },
  );
});

describe('toCanvosError', () => {
  it('maps a filesystem errno to ERR_FILESYSTEM naming the path', async () => {
    const e = await mkdir('/nonexistent-dir/x').catch((x: unknown) => x);
    const c = toCanvosError(e)!;
    expect(c.code).toBe('ERR_FILESYSTEM');
    expect(c.exitCode).toBe(20);
    expect(c.message).toBe('mkdir /nonexistent-dir/x: ENOENT (no such file or directory)');
    expect(c.hint).toBeTruthy();
  });

  it('maps a truncated gzip to ERR_LAYER_CORRUPT', () => {
    const gz = gzipSync(Buffer.alloc(10_000, 1));
    let err: unknown;
    try {
      gunzipSync(gz.subarray(0, gz.length - 10));
    } catch (e) {
      err = e;
    }
    expect(toCanvosError(err)?.code).toBe('ERR_LAYER_CORRUPT');
  });

  it('maps a stray network timeout to ERR_NETWORK and leaves a plain bug unmapped', () => {
    expect(
      toCanvosError(Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))?.code,
    ).toBe('ERR_NETWORK');
    expect(toCanvosError(new TypeError('x is undefined'))).toBeUndefined();
  });
});

describe('text inputs', () => {
  it('parseYaml finds a duplicate key among 80k in well under the quadratic time', () => {
    let s = '';
    for (let i = 0; i < 80_000; i++) s += `K${i}: v\n`;
    const t0 = performance.now();
    const doc = parseYaml(`${s}K7: again\n`, { schema: 'failsafe' });
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(doc.errors[0]?.code).toBe('DUPLICATE_KEY');
    expect(doc.errors[0]?.linePos?.[0].line).toBe(80_001);
  });

  it('firstInvalidUtf8 names the first bad byte', () => {
    expect(firstInvalidUtf8(Buffer.from('héllo'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xe9, 0x63]))).toBe(2);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe2, 0x82]))).toBe(1);
  });
});

describe('small mechanisms', () => {
  it('mkdirs fails fast under /proc instead of looping', async () => {
    await expect(mkdirs('/proc/x/y')).rejects.toMatchObject({ code: 'ENOENT', path: '/proc/x' });
  });

  it('mayResume allows one timeout per stream and any number of resets', () => {
    const s = { timeouts: 0 };
    const timeout = Object.assign(new Error('Body Timeout Error'), { code: 'UND_ERR_BODY_TIMEOUT' });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect([mayResume(reset, s), mayResume(timeout, s), mayResume(reset, s), mayResume(timeout, s)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(mayResume(new Error('EACCES'), s)).toBe(false);
  });

  it('--platform: an OS alone is the host architecture, an arch alone is linux', () => {
    expect(parsePlatform('linux')).toEqual({ os: 'linux', architecture: hostArchitecture() });
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(() => parsePlatform('linux/am d64')).toThrow(/invalid platform/);
  });
});
