/**
 * A loopback HTTP reverse proxy in front of a target (usually a test registry) with programmable faults: connection
 * resets before or during the response, injected statuses (503, 429 + Retry-After…) and throttled bodies. Bodies are
 * streamed both ways; Location headers pointing at the target are rewritten to the proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  Agent,
  closeServer,
  createServer,
  forwardRequest,
  listen,
  relayBody,
  responseHeaders,
  type RelayOptions,
} from './http-forward.js';

/** What a matching rule does to a request. */
export type FaultAction =
  /** Destroy the client socket (TCP RST) before responding. */
  | { kind: 'reset' }
  /** Forward, send the headers and the first `afterBytes` body bytes, then drop the connection. */
  | { kind: 'reset-mid-body'; afterBytes: number }
  /** Answer with this status (after draining the request body) instead of forwarding. Default body: empty. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, but throttle the response body to `bytesPerSecond`. */
  | { kind: 'slow'; bytesPerSecond: number }
  /** Forward without the Range header, so the target answers 200 with everything (a proxy that ignores Range). */
  | { kind: 'ignore-range' }
  /** Forward, but drop the response's Accept-Ranges header (a server that does not advertise ranges). */
  | { kind: 'no-accept-ranges' }
  /** Wait `ms` before forwarding (a slow answer, e.g. a long round trip). */
  | { kind: 'delay'; ms: number }
  /** Read the request and never answer, keeping the connection open (a black-holed server). */
  | { kind: 'stall' }
  /** Forward, send the headers and the first `afterBytes` body bytes, then send nothing more, connection open. */
  | { kind: 'stall-mid-body'; afterBytes: number }
  /** Forward, flipping the bits of the body byte at `offset` (a corrupting proxy). */
  | { kind: 'corrupt'; offset: number };

/**
 * A fault rule. A request matches when `method` (case-insensitive) and `path` (tested against path + query) both
 * match; every matching rule counts the request, and the first rule past its `skip` with `times` left applies.
 */
export interface FaultRule {
  /** Default: any method. */
  method?: string;
  /** Default: any path. */
  path?: RegExp;
  /** Matches to let through before faulting. Default: 0. */
  skip?: number;
  /** Matches to fault after `skip`. Default: 1 (Infinity allowed). */
  times?: number;
  action: FaultAction;
  /** Output: how many times this rule was applied so far. */
  hits?: number;
}

/** One request seen by the proxy. */
export interface ProxiedRequest {
  method: string;
  /** Path and query, as received. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Set when a fault was applied: 'reset', 'reset-mid-body', 'status 503', 'slow'. */
  fault?: string;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** '127.0.0.1:PORT' */
  host: string;
  addRule(rule: FaultRule): void;
  clearRules(): void;
  requests: ProxiedRequest[];
  /** Requests being answered right now (from arrival until the response is finished or the connection closes). */
  readonly active: number;
  /** The most requests answered at once since start or the last `resetPeak()`. */
  readonly peakActive: number;
  resetPeak(): void;
  stop(): Promise<void>;
}

interface RuleState {
  rule: FaultRule;
  seen: number;
}

function label(a: FaultAction): string {
  return a.kind === 'status' ? `status ${a.status}` : a.kind;
}

/** Starts a fault proxy on a free 127.0.0.1 port forwarding to `targetUrl` (its origin; any path is ignored). */
export async function startFaultProxy(targetUrl: string, rules: FaultRule[] = []): Promise<FaultProxy> {
  const target = new URL(new URL(targetUrl).origin);
  // No upstream keep-alive: reusing a socket the target just closed would surface as a spurious 502.
  const agent = new Agent({ keepAlive: false });
  let states: RuleState[] = [];
  const requests: ProxiedRequest[] = [];
  let origin = '';

  const pick = (req: IncomingMessage): FaultAction | undefined => {
    let chosen: FaultAction | undefined;
    for (const s of states) {
      const r = s.rule;
      if (r.method && r.method.toUpperCase() !== req.method) continue;
      if (r.path && !r.path.test(req.url ?? '')) continue;
      const index = s.seen++;
      if (chosen === undefined && index >= (r.skip ?? 0) && (r.hits ?? 0) < (r.times ?? 1)) {
        r.hits = (r.hits ?? 0) + 1;
        chosen = r.action;
      }
    }
    return chosen;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const action = pick(req);
    requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      headers: { ...req.headers },
      ...(action ? { fault: label(action) } : {}),
    });
    if (action?.kind === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (action?.kind === 'status') {
      // Drain the request first so the client is not cut off mid-upload by an early answer.
      req.resume();
      await new Promise<void>((resolve) =>
        req.complete ? resolve() : req.once('end', resolve).once('close', resolve),
      );
      const body = Buffer.from(action.body ?? '');
      res.writeHead(action.status, { ...action.headers, 'content-length': String(body.length) });
      res.end(body);
      return;
    }
    if (action?.kind === 'stall') {
      req.resume();
      return;
    }
    if (action?.kind === 'ignore-range') delete req.headers.range;
    if (action?.kind === 'delay') await new Promise((r) => setTimeout(r, action.ms));
    let up: IncomingMessage;
    try {
      up = await forwardRequest(req, target, agent);
    } catch {
      if (!res.headersSent && !res.destroyed) res.writeHead(502, { 'content-length': '0' }).end();
      else res.destroy();
      return;
    }
    const opts: RelayOptions =
      action?.kind === 'reset-mid-body'
        ? { afterBytes: action.afterBytes }
        : action?.kind === 'slow'
          ? { bytesPerSecond: action.bytesPerSecond }
          : action?.kind === 'stall-mid-body'
            ? { stallAfterBytes: action.afterBytes }
            : action?.kind === 'corrupt'
              ? { corruptAt: action.offset }
              : {};
    const headers = responseHeaders(up, target, origin);
    if (action?.kind === 'no-accept-ranges') delete headers['accept-ranges'];
    await relayBody(up, res, headers, opts);
  };

  let active = 0;
  let peakActive = 0;
  const server = createServer((req, res) => {
    active++;
    peakActive = Math.max(peakActive, active);
    let counted = true;
    const done = (): void => {
      if (counted) {
        counted = false;
        active--;
      }
    };
    res.once('finish', done);
    res.once('close', done);
    handle(req, res).catch(() => res.destroy());
  });
  origin = await listen(server, '127.0.0.1');
  for (const r of rules) states.push({ rule: r, seen: 0 });
  return {
    url: origin,
    host: new URL(origin).host,
    requests,
    get active() {
      return active;
    },
    get peakActive() {
      return peakActive;
    },
    resetPeak() {
      peakActive = active;
    },
    addRule(rule) {
      states.push({ rule, seen: 0 });
    },
    clearRules() {
      states = [];
    },
    stop: () => closeServer(server, agent),
  };
}
