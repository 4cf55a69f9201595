import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream, sha256, parseDigest, verifyBuffer } from '../../src/image/digest.js';
import { parsePlatform, platformMatches } from '../../src/image/platform.js';
import { parseManifest } from '../../src/image/schemas.js';
import { CanvosError } from '../../src/errors.js';

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('digest', () => {
  it('hashes the known sha256 of "abc"', () => {
    expect(sha256('abc')).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('verifying stream passes matching content and rejects a wrong digest or size', async () => {
    const data = Buffer.from('hello world');
    await pipeline(Readable.from([data]), new VerifyingStream(sha256(data), { size: data.length }), sink());
    await expect(pipeline(Readable.from([data]), new VerifyingStream(sha256('other')), sink())).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
    await expect(
      pipeline(Readable.from([data]), new VerifyingStream(sha256(data), { size: 3 }), sink()),
    ).rejects.toMatchObject({
      code: 'ERR_SIZE_MISMATCH',
    });
  });
  it('rejects malformed digests and buffers that do not match', () => {
    expect(() => parseDigest('sha256:XYZ')).toThrow(CanvosError);
    expect(() => verifyBuffer(Buffer.from('a'), sha256('b'))).toThrow(/does not match/);
  });
});

describe('platform', () => {
  it('parses and matches', () => {
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, parsePlatform('linux/arm64/v8'))).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, parsePlatform('linux/arm64'))).toBe(false);
    expect(() => parsePlatform('linux//x')).toThrow(/invalid platform/);
  });
});

describe('manifest schema', () => {
  it('classifies index vs image and reports the failing field', () => {
    const d = sha256('x');
    const idx = parseManifest(
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'a', digest: d, size: 1 }] }),
    );
    expect(idx.kind).toBe('index');
    expect(() =>
      parseManifest(
        JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', digest: 'bad', size: 1 }, layers: [] }),
      ),
    ).toThrow(/config\.digest/);
  });
});
