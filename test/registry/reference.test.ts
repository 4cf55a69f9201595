import { describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseReference } from '../../src/registry/reference.js';
import { parseAuthChallenges } from '../../src/registry/auth-challenge.js';
import { normalizeAuthKey } from '../../src/registry/credentials.js';
import { parseRetryAfter } from '../../src/http/retry.js';
import { nextLink } from '../../src/registry/client.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  const ok: Array<[string, string, string, string | undefined, string | undefined, string, string]> = [
    // input, registry, repository, tag, digest, toString, familiar
    ['ubuntu', 'docker.io', 'library/ubuntu', 'latest', undefined, 'docker.io/library/ubuntu:latest', 'ubuntu:latest'],
    [
      'ubuntu:22.04',
      'docker.io',
      'library/ubuntu',
      '22.04',
      undefined,
      'docker.io/library/ubuntu:22.04',
      'ubuntu:22.04',
    ],
    [
      'docker.io/library/ubuntu:22.04',
      'docker.io',
      'library/ubuntu',
      '22.04',
      undefined,
      'docker.io/library/ubuntu:22.04',
      'ubuntu:22.04',
    ],
    [
      'index.docker.io/foo/bar',
      'docker.io',
      'foo/bar',
      'latest',
      undefined,
      'docker.io/foo/bar:latest',
      'foo/bar:latest',
    ],
    ['registry-1.docker.io/foo/bar:v1', 'docker.io', 'foo/bar', 'v1', undefined, 'docker.io/foo/bar:v1', 'foo/bar:v1'],
    [
      'quay.io/kairos/core:v1.2',
      'quay.io',
      'kairos/core',
      'v1.2',
      undefined,
      'quay.io/kairos/core:v1.2',
      'quay.io/kairos/core:v1.2',
    ],
    [
      'localhost:5000/x',
      'localhost:5000',
      'x',
      'latest',
      undefined,
      'localhost:5000/x:latest',
      'localhost:5000/x:latest',
    ],
    ['localhost/x/y', 'localhost', 'x/y', 'latest', undefined, 'localhost/x/y:latest', 'localhost/x/y:latest'],
    [
      '127.0.0.1:5000/a/b/c:t',
      '127.0.0.1:5000',
      'a/b/c',
      't',
      undefined,
      '127.0.0.1:5000/a/b/c:t',
      '127.0.0.1:5000/a/b/c:t',
    ],
    ['[::1]:5000/x:t', '[::1]:5000', 'x', 't', undefined, '[::1]:5000/x:t', '[::1]:5000/x:t'],
    ['Example.COM/foo', 'example.com', 'foo', 'latest', undefined, 'example.com/foo:latest', 'example.com/foo:latest'],
    [`ghcr.io/o/r@${D}`, 'ghcr.io', 'o/r', undefined, D, `ghcr.io/o/r@${D}`, `ghcr.io/o/r@${D}`],
    [`ghcr.io/o/r:v1@${D}`, 'ghcr.io', 'o/r', 'v1', D, `ghcr.io/o/r:v1@${D}`, `ghcr.io/o/r:v1@${D}`],
    [
      'a/b__c-d.e--f:_T',
      'docker.io',
      'a/b__c-d.e--f',
      '_T',
      undefined,
      'docker.io/a/b__c-d.e--f:_T',
      'a/b__c-d.e--f:_T',
    ],
  ];
  it.each(ok)('%s', (input, registry, repository, tag, digest, str, familiar) => {
    const r = parseReference(input);
    expect(r.registry).toBe(registry);
    expect(r.repository).toBe(repository);
    expect(r.tag).toBe(tag);
    expect(r.digest).toBe(digest);
    expect(r.toString()).toBe(str);
    expect(r.familiar).toBe(familiar);
    expect(r.identifier).toBe(digest ?? tag);
  });

  it('uses index.docker.io as the endpoint for docker.io and the host otherwise', () => {
    expect(parseReference('alpine').endpoint).toBe('index.docker.io');
    expect(parseReference('localhost:5000/x').endpoint).toBe('localhost:5000');
  });

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['Ubuntu', /lowercase/],
    ['docker.io/Library/ubuntu', /lowercase/],
    ['foo/bar:', /invalid tag/],
    ['foo:-bad', /invalid tag/],
    [`foo:${'x'.repeat(129)}`, /invalid tag/],
    ['foo@sha256:abc', /digest/],
    [`foo@md5:${'a'.repeat(32)}`, /digest/],
    ['foo//bar', /empty component/],
    ['foo/bar_', /path component/],
    ['-foo', /path component/],
    ['https://ghcr.io/x/y', /URL scheme/],
    ['foo bar', /whitespace/],
    ['local_host:5000/x', /path component|registry/],
    ['example.com:99999/x', /registry host/],
    [`example.com/${'a'.repeat(250)}`, /longer than 255/],
  ];
  it.each(bad)('rejects %j', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(CanvosError.is(err)).toBe(true);
    const ce = err as CanvosError;
    expect(ce.code).toBe('ERR_REFERENCE_INVALID');
    expect(ce.message).toMatch(why);
    expect(ce.message).toContain(JSON.stringify(input));
    expect(ce.message).not.toContain('\n');
    expect(ce.hint).toBeTruthy();
  });
});

describe('WWW-Authenticate parsing', () => {
  it('parses Bearer with quoted commas in scope', () => {
    const [c] = parseAuthChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
    );
    expect(c).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
  });
  it('parses Basic, escaped quotes, unquoted values and several challenges', () => {
    const cs = parseAuthChallenges('Basic realm="a \\"q\\" b", Bearer realm=https://x/t, service=svc');
    expect(cs).toEqual([
      { scheme: 'basic', params: { realm: 'a "q" b' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', service: 'svc' } },
    ]);
  });
  it('tolerates garbage', () => {
    expect(parseAuthChallenges('')).toEqual([]);
    expect(parseAuthChallenges('=,,')).toEqual([]);
  });
});

describe('small parsers', () => {
  it('normalises auth file keys', () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeAuthKey('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeAuthKey('https://ghcr.io/v2/')).toBe('ghcr.io');
    expect(normalizeAuthKey('localhost:5000')).toBe('localhost:5000');
  });
  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
  it('follows Link rel=next', () => {
    expect(nextLink('</v2/x/tags/list?n=2&last=b>; rel="next"', 'http://r:5000/v2/x/tags/list?n=2')).toBe(
      'http://r:5000/v2/x/tags/list?n=2&last=b',
    );
    expect(nextLink(undefined, 'http://r/')).toBeUndefined();
  });
});
