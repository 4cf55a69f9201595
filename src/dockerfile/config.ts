/**
 * The config-only instructions (ENV, LABEL, WORKDIR, USER, SHELL, ENTRYPOINT, CMD, EXPOSE, VOLUME, STOPSIGNAL,
 * HEALTHCHECK, ONBUILD) applied to the image's runtime config (`config.config` of the OCI image config),
 * with BuildKit's `created_by` text for the history entry. Unknown keywords are refused.
 */
import { posix } from 'node:path';
import type { Instruction } from './parse.js';
import { splitWords } from './words.js';

/** The OCI image config's `config` object (the fields canvos-lite writes; others are kept as they are). */
export interface ImageRuntimeConfig {
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string> | null;
  Shell?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  StopSignal?: string;
  Healthcheck?: {
    Test: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    StartInterval?: number;
    Retries?: number;
  };
  OnBuild?: string[] | null;
  [k: string]: unknown;
}

/** What {@link applyConfigInstruction} needs from the evaluator. */
export interface ConfigContext {
  escape: string;
  /** Expand one raw word. */
  word: (w: string) => string;
  /** Expand an argument string into words. */
  words: (s: string) => string[];
  fail: (message: string, hint?: string) => never;
  /** True while CMD is still the base image's (ENTRYPOINT then resets it, as Docker does). */
  baseCmdInherited: { cmd: boolean };
}

/** `k=v k2="v 2"` pairs (or the legacy `k v` form for ENV/LABEL), expanded. */
function keyValues(ins: Instruction, c: ConfigContext): [string, string][] {
  const raw = splitWords(ins.args, c.escape);
  if (raw.length === 0) c.fail(`${ins.keyword} needs at least one argument`);
  if (!(raw[0] as string).includes('=')) {
    // Legacy `ENV key value with spaces`: the rest of the line is the value.
    const key = raw[0] as string;
    const value = ins.args.slice(ins.args.indexOf(key) + key.length).trim();
    if (!value) c.fail(`${ins.keyword} ${key} needs a value`, `write ${ins.keyword} ${key}=value`);
    return [[c.word(key), c.word(value)]];
  }
  return raw.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) c.fail(`${ins.keyword} expects key=value, found ${JSON.stringify(w)}`);
    return [c.word(w.slice(0, eq)), c.word(w.slice(eq + 1))];
  });
}

function commandForm(ins: Instruction, config: ImageRuntimeConfig): string[] {
  if (ins.json) return ins.json;
  return [...(config.Shell?.length ? config.Shell : ['/bin/sh', '-c']), ins.args];
}

const DURATION = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/;
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration (`30s`, `1m30s`) in nanoseconds. */
function duration(v: string, c: ConfigContext): number {
  let total = 0;
  let rest = v;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) return c.fail(`invalid duration ${JSON.stringify(v)}`, 'write e.g. 30s or 1m30s');
    total += Number(m[1]) * (UNIT_NS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return DURATION.test(v) || total ? Math.round(total) : c.fail(`invalid duration ${JSON.stringify(v)}`);
}

/** Apply one config instruction to `config`; returns the history `created_by`. */
export function applyConfigInstruction(ins: Instruction, config: ImageRuntimeConfig, c: ConfigContext): string {
  switch (ins.keyword) {
    case 'ENV': {
      const env = [...(config.Env ?? [])];
      const kv = keyValues(ins, c);
      for (const [k, v] of kv) {
        const i = env.findIndex((e) => e.startsWith(`${k}=`));
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      config.Env = env;
      return `ENV ${kv.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'LABEL': {
      const kv = keyValues(ins, c);
      config.Labels = { ...(config.Labels ?? {}), ...Object.fromEntries(kv) };
      return `LABEL ${kv.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'MAINTAINER':
      return c.fail(
        'MAINTAINER (deprecated) is not supported',
        `write LABEL maintainer=${JSON.stringify(ins.args.trim())} instead`,
      );
    case 'WORKDIR': {
      const dir = c.word(ins.args.trim());
      if (!dir) c.fail('WORKDIR needs a path');
      config.WorkingDir = posix.resolve(config.WorkingDir || '/', dir);
      return `WORKDIR ${config.WorkingDir}`;
    }
    case 'USER': {
      const user = c.word(ins.args.trim());
      if (!user) c.fail('USER needs a user name or uid');
      config.User = user;
      return `USER ${user}`;
    }
    case 'SHELL':
      if (!ins.json || ins.json.length === 0) c.fail('SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]');
      config.Shell = ins.json;
      return `SHELL [${ins.json.map((s) => JSON.stringify(s)).join(' ')}]`;
    case 'ENTRYPOINT':
      config.Entrypoint = ins.args === '' ? null : commandForm(ins, config);
      if (c.baseCmdInherited.cmd) config.Cmd = null;
      return `ENTRYPOINT ${JSON.stringify(config.Entrypoint ?? [])}`;
    case 'CMD':
      config.Cmd = commandForm(ins, config);
      c.baseCmdInherited.cmd = false;
      return `CMD ${JSON.stringify(config.Cmd)}`;
    case 'EXPOSE': {
      const ports = { ...(config.ExposedPorts ?? {}) };
      for (const p of c.words(ins.args)) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) c.fail(`EXPOSE ${JSON.stringify(p)} is not a port[/protocol]`);
        ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      }
      config.ExposedPorts = ports;
      return `EXPOSE map[${Object.keys(ports)
        .map((p) => `${p}:{}`)
        .join(' ')}]`;
    }
    case 'VOLUME': {
      const vols = ins.json ?? c.words(ins.args);
      if (vols.length === 0 || vols.some((v) => v === '')) c.fail('VOLUME needs at least one path');
      config.Volumes = { ...(config.Volumes ?? {}), ...Object.fromEntries(vols.map((v) => [v, {}])) };
      return `VOLUME [${vols.join(' ')}]`;
    }
    case 'STOPSIGNAL': {
      const sig = c.word(ins.args.trim());
      if (!/^(SIG[A-Z0-9+-]+|\d+)$/.test(sig)) c.fail(`STOPSIGNAL ${JSON.stringify(sig)} is not a signal`);
      config.StopSignal = sig;
      return `STOPSIGNAL ${sig}`;
    }
    case 'HEALTHCHECK':
      return healthcheck(ins, config, c);
    case 'ONBUILD': {
      const trigger = ins.args.trim();
      if (/^(ONBUILD|FROM|MAINTAINER)\b/i.test(trigger)) c.fail(`ONBUILD ${trigger.split(/\s/)[0]} is not allowed`);
      config.OnBuild = [...(config.OnBuild ?? []), trigger];
      return `ONBUILD ${trigger}`;
    }
    default:
      return c.fail(
        `unknown instruction ${ins.keyword}`,
        'see the list of honoured instructions in the canvos-lite README (Dockerfile)',
      );
  }
}

function healthcheck(ins: Instruction, config: ImageRuntimeConfig, c: ConfigContext): string {
  const rest = ins.args.trim();
  if (/^NONE$/i.test(rest)) {
    if (ins.flags.length) c.fail('HEALTHCHECK NONE takes no flags');
    config.Healthcheck = { Test: ['NONE'] };
    return 'HEALTHCHECK NONE';
  }
  const m = /^CMD\s+([\s\S]+)$/i.exec(rest);
  if (!m) return c.fail('HEALTHCHECK needs CMD <command> or NONE');
  const cmdText = (m[1] as string).trim();
  let test: string[];
  try {
    const j = JSON.parse(cmdText) as unknown;
    test = Array.isArray(j) && j.every((x) => typeof x === 'string') ? ['CMD', ...j] : ['CMD-SHELL', cmdText];
  } catch {
    test = ['CMD-SHELL', cmdText];
  }
  const hc: NonNullable<ImageRuntimeConfig['Healthcheck']> = { Test: test };
  const keys: Record<string, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'> = {
    interval: 'Interval',
    timeout: 'Timeout',
    'start-period': 'StartPeriod',
    'start-interval': 'StartInterval',
  };
  for (const f of ins.flags) {
    const v = c.word(f.value ?? '');
    const key = keys[f.name];
    if (key) hc[key] = duration(v, c);
    else if (f.name === 'retries' && /^\d+$/.test(v)) hc.Retries = Number(v);
    else c.fail(`HEALTHCHECK --${f.name}=${v} is not supported`);
  }
  config.Healthcheck = hc;
  return `HEALTHCHECK &{${JSON.stringify(test)}}`;
}
