/**
 * The undici pieces the registry client uses (Agent, EnvHttpProxyAgent, request), imported from undici's own files
 * instead of its index: the index also loads fetch, WebSocket, cache, mocks and more, ~100 ms at every CLI start
 * for nothing. Static imports, so bundlers (esbuild) still follow them. Module typings: undici-modules.d.ts.
 * Kept after measuring (README "undici internals"); test/http/undici.test.ts fails when undici changes under it.
 */
import type * as Undici from 'undici';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import DispatcherClass from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgentClass from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import api from 'undici/lib/api/index.js';

// What undici's index does: give every dispatcher request/stream/pipeline/upgrade/connect (ProxyAgent needs connect).
if (typeof (DispatcherClass.prototype as Partial<Undici.Dispatcher>).connect !== 'function')
  Object.assign(DispatcherClass.prototype, api);

/** undici's Agent (connection pools per origin). */
export const Agent: typeof Undici.Agent = AgentClass;
/** undici's EnvHttpProxyAgent (HTTP(S)_PROXY / NO_PROXY aware). */
export const EnvHttpProxyAgent: typeof Undici.EnvHttpProxyAgent = EnvHttpProxyAgentClass;

/** Options of {@link request}: undici's, with a required dispatcher and the URL given separately. */
export type RequestOptions = { dispatcher: Undici.Dispatcher } & Omit<
  Undici.Dispatcher.RequestOptions,
  'origin' | 'path' | 'method'
> & {
    method?: Undici.Dispatcher.HttpMethod | undefined;
  };

/** Same as undici's `request(url, opts)`, except that `opts.dispatcher` is required. */
export function request(url: string, opts: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return dispatcher.request({
    ...rest,
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    method: opts.method ?? 'GET',
  });
}
