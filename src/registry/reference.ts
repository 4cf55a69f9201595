/**
 * Image reference parsing and normalisation (`[registry/]repository[:tag][@digest]`), following the
 * distribution/reference grammar: docker.io defaults (`library/` for single-component names), ports,
 * IPv6 literals, lowercase repositories, 255-character name limit. Digest wins over tag for resolution.
 */
import { CanvosError } from '../errors.js';
import { isDigest, type Digest } from '../image/digest.js';

/** The canonical name of Docker Hub in references. */
export const DOCKER_HUB = 'docker.io';
/** The host actually contacted for Docker Hub (what `docker.io` resolves to on the wire). */
export const DOCKER_HUB_ENDPOINT = 'index.docker.io';

/** A parsed, normalised image reference. */
export interface Reference {
  /** Canonical registry name, `docker.io` for Docker Hub, else `host[:port]` as written (lowercased host). */
  readonly registry: string;
  /** Repository path within the registry, e.g. `library/ubuntu`. */
  readonly repository: string;
  /** Tag, when given (`latest` is NOT implied when a digest is present). */
  readonly tag: string | undefined;
  /** Digest, when given; it wins over the tag for every lookup. */
  readonly digest: Digest | undefined;
  /** `host[:port]` to connect to (`index.docker.io` for Docker Hub). */
  readonly endpoint: string;
  /** The shortest form a user would type (`ubuntu:22.04`, `ghcr.io/x/y@sha256:…`). */
  readonly familiar: string;
  /** `registry/repository` (no tag or digest). */
  readonly name: string;
  /** Tag or digest to resolve: the digest when present, else the tag. */
  readonly identifier: string;
  /** Fully qualified `registry/repository[:tag][@digest]`. */
  toString(): string;
}

// distribution/reference grammar pieces.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_SHAPE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const NAME_MAX = 255;

function invalid(ref: string, what: string, hint?: string): CanvosError {
  return new CanvosError('ERR_REFERENCE_INVALID', `invalid image reference ${JSON.stringify(ref)}: ${what}`, {
    hint: hint ?? 'use [registry[:port]/]repository[:tag][@sha256:<64 hex>], e.g. docker.io/library/ubuntu:22.04',
  });
}

function looksLikeDomain(first: string): boolean {
  return (
    first.includes('.') ||
    first.includes(':') ||
    first === 'localhost' ||
    first.startsWith('[') ||
    first !== first.toLowerCase()
  );
}

function validDomain(domain: string): boolean {
  let host = domain;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return false;
    const inner = host.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(inner) || !inner.includes(':')) return false;
    const rest = host.slice(end + 1);
    if (rest === '') return true;
    if (!rest.startsWith(':')) return false;
    port = rest.slice(1);
    host = '';
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      port = host.slice(colon + 1);
      host = host.slice(0, colon);
    }
  }
  if (port !== undefined && !/^[0-9]{1,5}$/.test(port)) return false;
  if (port !== undefined && Number(port) > 65535) return false;
  if (host === '') return domain.startsWith('[');
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** Canonical registry name: Docker Hub aliases collapse to `docker.io`; the host part is lowercased. */
export function normalizeRegistry(registry: string): string {
  const r = registry.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  const lower = r.toLowerCase();
  if (lower === 'docker.io' || lower === 'index.docker.io' || lower === 'registry-1.docker.io') return DOCKER_HUB;
  return lower;
}

/** The host to contact for a canonical registry name. */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

/**
 * Parse an image reference. Throws CanvosError ERR_REFERENCE_INVALID (one line naming the reference and the
 * problem, with a hint) when malformed. A reference with neither tag nor digest gets tag `latest`.
 */
export function parseReference(input: string): Reference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'it is empty');
  if (/\s/.test(s)) throw invalid(input, 'it contains whitespace');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    throw invalid(
      input,
      'it has a URL scheme',
      'drop the scheme (e.g. "docker://" or "https://"); write registry/repository:tag',
    );
  }
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_SHAPE.test(d))
      throw invalid(input, `"${d}" is not a digest`, 'a digest looks like sha256:<64 lowercase hex characters>');
    if (!isDigest(d))
      throw invalid(
        input,
        `unsupported or malformed digest "${d}"`,
        'use sha256:<64 lowercase hex> (or sha512:<128 hex>)',
      );
    digest = d;
  }
  let tag: string | undefined;
  // A tag is after the last ':' that comes after the last '/' (a ':' before it is a registry port).
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(
        input,
        `invalid tag "${tag}"`,
        'tags are 1-128 characters of [A-Za-z0-9_.-] and cannot start with "." or "-"',
      );
    }
  }
  if (rest === '') throw invalid(input, 'the repository name is missing');
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && looksLikeDomain(first)) {
    if (!validDomain(first)) throw invalid(input, `invalid registry host "${first}"`);
    registry = normalizeRegistry(first);
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => p === ''))
    throw invalid(input, 'the repository path has an empty component');
  for (const p of parts) {
    if (p !== p.toLowerCase() && PATH_COMPONENT.test(p.toLowerCase())) {
      throw invalid(
        input,
        `repository name must be lowercase ("${p}")`,
        `write it as ${JSON.stringify(p.toLowerCase())}`,
      );
    }
    if (!PATH_COMPONENT.test(p)) {
      throw invalid(
        input,
        `invalid repository path component "${p}"`,
        'repository components are lowercase [a-z0-9] separated by ".", "_", "__" or "-"',
      );
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (registry.length + 1 + repository.length > NAME_MAX) {
    throw invalid(input, `the name is longer than ${NAME_MAX} characters`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return makeReference(registry, repository, tag, digest);
}

/** Build a Reference from parts (already validated/normalised by the caller). */
export function makeReference(registry: string, repository: string, tag?: string, digest?: Digest): Reference {
  const reg = normalizeRegistry(registry);
  const name = `${reg}/${repository}`;
  const suffix = `${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  let familiarName = name;
  if (reg === DOCKER_HUB)
    familiarName =
      repository.startsWith('library/') && repository.split('/').length === 2 ? repository.slice(8) : repository;
  return {
    registry: reg,
    repository,
    tag,
    digest,
    endpoint: registryEndpoint(reg),
    familiar: familiarName + suffix,
    name,
    identifier: digest ?? tag ?? 'latest',
    toString: () => name + suffix,
  };
}
