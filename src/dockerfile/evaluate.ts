/**
 * Evaluates a parsed Dockerfile the way BuildKit does for a single stage: global ARGs before FROM, FROM checked
 * against the base image, stage ARGs taking their values from the build arguments (or global ARG, or default),
 * ENV over ARG in substitutions, and every instruction turned into one step: a config change (recorded as an
 * empty-layer history entry), a COPY/ADD, or a RUN with its argv, environment, working directory and user.
 * Instructions `skip` recognises (CanvOS's emulated stock preamble) produce no step, but their ARGs still count.
 */
import { posix } from 'node:path';
import { redactText } from '../errors.js';
import { dockerfileError, type Heredoc, type Instruction, type ParsedDockerfile } from './parse.js';
import { expandWord, expandWords, splitWords, WordError, type Vars } from './words.js';
import { applyConfigInstruction, type ImageRuntimeConfig } from './config.js';

/** A COPY or ADD to apply. Sources are context-relative (or URLs / heredoc names for ADD/COPY). */
export interface CopyStep {
  kind: 'copy';
  ins: Instruction;
  add: boolean;
  /** Expanded source words (not yet globbed). */
  sources: string[];
  /** Absolute destination; a trailing `/` is kept (it means "a directory"). */
  dest: string;
  chmod: number | undefined;
  /** `user[:group]` as written (expanded), resolved later against the image's /etc/passwd and /etc/group. */
  chown: string | undefined;
  /** ADD --checksum value (`sha256:<hex>`). */
  checksum: string | undefined;
  /** Heredoc sources by name, content already expanded where the delimiter was unquoted. */
  heredocs: Map<string, string>;
  createdBy: string;
}

/** A RUN to execute. */
export interface RunStep {
  kind: 'run';
  ins: Instruction;
  argv: string[];
  /** `KEY=value` list: image ENV, then stage ARGs and proxy arguments not shadowed by ENV. */
  env: string[];
  workdir: string;
  user: string;
  createdBy: string;
  /** Shown in errors and as the layer name. Default: `Dockerfile:LINE`. */
  label?: string | undefined;
}

/** A config-only instruction (ENV, LABEL, WORKDIR…): one empty-layer history entry. */
export interface ConfigStep {
  kind: 'config';
  ins: Instruction;
  createdBy: string;
}

export type Step = CopyStep | RunStep | ConfigStep;

/** What the Dockerfile does on top of the base. */
export interface EvaluatedDockerfile {
  steps: Step[];
  /** The image runtime config (`config.config`) after every instruction. */
  config: ImageRuntimeConfig;
  /** True when any instruction changed the runtime config. */
  configChanged: boolean;
}

/** Options of {@link evaluateDockerfile}. */
export interface EvaluateOptions {
  /** Build arguments as CanvOS passes them (`BASE`, `OS_DISTRIBUTION`, …); an empty string still counts as set. */
  buildArgs: Readonly<Record<string, string>>;
  /** The base image's `config.config` (Env, WorkingDir, User…). */
  baseConfig: ImageRuntimeConfig;
  /** Instructions that produce no step (the emulated preamble); `args` are the stage's ARG values. Default: none. */
  skip?: ((ins: Instruction, args: ReadonlyMap<string, string>) => boolean) | undefined;
}

/** BuildKit's predefined arguments: usable without ARG, never written to history. */
export const PROXY_ARGS: ReadonlySet<string> = new Set([
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'FTP_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'ftp_proxy',
  'no_proxy',
  'all_proxy',
]);
const SECRET_NAME = /secret|passw|token|(^|_)key($|_)|credential|auth/i;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const COPY_FLAGS: Record<string, ReadonlySet<string>> = {
  COPY: new Set(['chmod', 'chown', 'link']),
  ADD: new Set(['chmod', 'chown', 'link', 'checksum']),
};

/** Evaluate `df` (see the file header). Throws ERR_CONFIG naming `Dockerfile:LINE` for what it cannot honour. */
export function evaluateDockerfile(df: ParsedDockerfile, opts: EvaluateOptions): EvaluatedDockerfile {
  const fail = (ins: Instruction, msg: string, hint?: string): never => {
    throw dockerfileError(df.file, ins.line, msg, hint);
  };
  const globals = new Map<string, string>();
  const args = new Map<string, string>();
  const declared = new Set<string>();
  const config: ImageRuntimeConfig = structuredClone(opts.baseConfig);
  const envMap = (): Map<string, string> =>
    new Map((config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=') >>> 0), e.slice(e.indexOf('=') + 1)]));
  // ENV wins over ARG in substitutions (BuildKit).
  const vars = (): Vars => new Map([...args, ...envMap()]);
  const word = (ins: Instruction, w: string, v: Vars = vars()): string => {
    try {
      return expandWord(w, v, df.escape);
    } catch (e) {
      return fail(ins, e instanceof WordError ? e.message : String(e));
    }
  };
  const steps: Step[] = [];
  let from: Instruction | undefined;
  let configChanged = false;
  const baseCmdInherited = { cmd: true };
  for (const ins of df.instructions) {
    if (ins.keyword === 'ARG') {
      for (const w of splitWords(ins.args, df.escape)) {
        const eq = w.indexOf('=');
        const name = eq < 0 ? w : w.slice(0, eq);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(ins, `ARG name ${JSON.stringify(name)} is invalid`);
        const scope = from ? args : globals;
        const given = Object.hasOwn(opts.buildArgs, name) ? opts.buildArgs[name] : undefined;
        const dflt =
          eq < 0 ? (from ? globals.get(name) : undefined) : word(ins, w.slice(eq + 1), from ? vars() : globals);
        const value = given ?? dflt;
        if (value !== undefined) scope.set(name, value);
        if (from) declared.add(name);
      }
      continue;
    }
    if (!from && ins.keyword !== 'FROM') fail(ins, `${ins.keyword} before FROM (only ARG may come first)`);
    if (ins.keyword === 'FROM') {
      if (from)
        fail(
          ins,
          `a second FROM (multi-stage build) is not supported (first FROM on line ${from.line})`,
          'build other stages into BASE_IMAGE, or copy files from the project directory instead',
        );
      for (const f of ins.flags) if (f.name !== 'platform') fail(ins, `FROM --${f.name} is not supported`);
      const words = splitWords(ins.args, df.escape);
      const image = word(ins, words[0] ?? '', globals);
      const base = opts.buildArgs.BASE ?? '';
      if (image !== base || !(words.length === 1 || (words.length === 3 && words[1]?.toUpperCase() === 'AS'))) {
        fail(
          ins,
          `FROM must name the base image as $BASE (found ${JSON.stringify(ins.args)})`,
          'write "FROM $BASE" after "ARG BASE" and set BASE_IMAGE in .arg or canvos.yaml',
        );
      }
      from = ins;
      continue;
    }
    if (opts.skip?.(ins, args)) continue;
    const flagNames = ins.flags.map((f) => f.name);
    if (ins.keyword === 'COPY' || ins.keyword === 'ADD') {
      steps.push(copyStep(df, ins, config.WorkingDir || '/', vars(), (w, v) => word(ins, w, v), fail));
      continue;
    }
    if (ins.keyword === 'RUN') {
      steps.push(
        runStep(
          df,
          ins,
          config,
          { args, declared, buildArgs: opts.buildArgs, envMap: envMap() },
          (w) => word(ins, w),
          fail,
        ),
      );
      continue;
    }
    if (ins.flags.length && ins.keyword !== 'HEALTHCHECK')
      fail(ins, `${ins.keyword} takes no flags (found --${flagNames[0]})`);
    const createdBy = applyConfigInstruction(ins, config, {
      escape: df.escape,
      word: (w) => word(ins, w),
      words: (s) => {
        try {
          return expandWords(s, vars(), df.escape);
        } catch (e) {
          return fail(ins, e instanceof WordError ? e.message : String(e));
        }
      },
      fail: (msg, hint) => fail(ins, msg, hint),
      baseCmdInherited,
    });
    configChanged = true;
    steps.push({ kind: 'config', ins, createdBy: redactText(createdBy) });
  }
  if (!from)
    throw dockerfileError(
      df.file,
      1,
      'the Dockerfile has no FROM instruction',
      'start it with "ARG BASE" and "FROM $BASE"',
    );
  return { steps, config, configChanged };
}

function copyStep(
  df: ParsedDockerfile,
  ins: Instruction,
  workdir: string,
  v: Vars,
  word: (w: string, v: Vars) => string,
  fail: (ins: Instruction, m: string, h?: string) => never,
): CopyStep {
  const add = ins.keyword === 'ADD';
  const allowed = COPY_FLAGS[ins.keyword] as ReadonlySet<string>;
  let chmod: number | undefined;
  let chown: string | undefined;
  let checksum: string | undefined;
  for (const f of ins.flags) {
    if (f.name === 'from')
      fail(
        ins,
        `${ins.keyword} --from (another stage or image) is not supported`,
        'copy the files into the project directory and COPY them from there',
      );
    if (!allowed.has(f.name)) fail(ins, `${ins.keyword} --${f.name} is not supported`);
    const value = f.value === undefined ? undefined : word(f.value, v);
    if (f.name === 'chmod') {
      if (!value || !/^[0-7]{1,4}$/.test(value))
        fail(ins, `--chmod=${value ?? ''} is not an octal mode`, 'write e.g. --chmod=0755');
      chmod = parseInt(value, 8);
    } else if (f.name === 'chown') {
      if (!value) fail(ins, '--chown needs a value', 'write --chown=user[:group] or --chown=uid[:gid]');
      chown = value;
    } else if (f.name === 'checksum') {
      if (!value || !/^sha256:[0-9a-f]{64}$/.test(value))
        fail(ins, `--checksum=${value ?? ''} is not sha256:<64 hex digits>`);
      checksum = value;
    }
  }
  const words = ins.json ?? splitWords(ins.args, df.escape);
  const expanded = ins.json
    ? ins.json.map((w) => word(w.replace(/(["'\\])/g, '\\$1'), v))
    : words.map((w) => (/^\d?<<-?/.test(w) ? w : word(w, v)));
  if (expanded.length < 2) fail(ins, `${ins.keyword} needs at least one source and a destination`);
  const destWord = expanded[expanded.length - 1] as string;
  const dest = destWord.startsWith('/')
    ? destWord
    : `${posix.join(workdir, destWord)}${destWord.endsWith('/') || destWord === '.' ? '/' : ''}`;
  const heredocs = new Map<string, string>();
  for (const h of ins.heredocs) heredocs.set(h.name, expandHeredoc(h, v, word));
  const sources = expanded.slice(0, -1);
  const flagText = ins.flags.map((f) => ` --${f.name}${f.value === undefined ? '' : `=${f.value}`}`).join('');
  return {
    kind: 'copy',
    ins,
    add,
    sources,
    dest,
    chmod,
    chown,
    checksum,
    heredocs,
    createdBy: redactText(`${ins.keyword}${flagText} ${sources.join(' ')} ${destWord} # buildkit`),
  };
}

function expandHeredoc(h: Heredoc, v: Vars, word: (w: string, v: Vars) => string): string {
  if (!h.expand) return h.content;
  // Only $-expansion (quotes in a heredoc body are data): escape quotes, then expand as one word.
  return word(h.content.replace(/(["'])/g, '\\$1'), v);
}

interface RunScope {
  args: Map<string, string>;
  declared: Set<string>;
  buildArgs: Readonly<Record<string, string>>;
  envMap: Map<string, string>;
}

function runStep(
  df: ParsedDockerfile,
  ins: Instruction,
  config: ImageRuntimeConfig,
  s: RunScope,
  word: (w: string) => string,
  fail: (ins: Instruction, m: string, h?: string) => never,
): RunStep {
  for (const f of ins.flags) {
    const value = f.value === undefined ? '' : word(f.value);
    if (f.name === 'network' && (value === 'host' || value === 'default')) continue;
    if (f.name === 'security' && value === 'sandbox') continue;
    const hint = f.name === 'mount' ? 'copy the files with COPY, or download them inside the RUN' : 'remove the flag';
    fail(
      ins,
      `RUN --${f.name}${f.value === undefined ? '' : `=${value}`} is not supported by canvos-lite's executor`,
      hint,
    );
  }
  const shell = config.Shell?.length ? config.Shell : ['/bin/sh', '-c'];
  let argv: string[];
  const first = ins.heredocs[0];
  if (ins.json) argv = ins.json;
  else if (first && ins.heredocs.length === 1 && /^\d?<<-?["']?[A-Za-z0-9_.-]+["']?$/.test(ins.args.trim())) {
    // `RUN <<EOF`: the body is the script (BuildKit), run by the shell.
    if (first.content.startsWith('#!'))
      fail(ins, 'a RUN heredoc with a #! line is not supported', 'call the interpreter explicitly: RUN python3 <<EOF');
    argv = [...shell, first.content];
  } else {
    // Other heredocs are handed to the shell as real heredocs, body and delimiter appended (BuildKit).
    const bodies = ins.heredocs.map((h) => `\n${h.content}${h.name}`).join('');
    argv = [...shell, ins.args + bodies];
  }
  const env = new Map(s.envMap);
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  const argEnv: [string, string][] = [];
  for (const [k, v] of s.args) if (s.declared.has(k) && !s.envMap.has(k)) argEnv.push([k, v]);
  for (const k of PROXY_ARGS) {
    const v = s.buildArgs[k];
    if (v && !env.has(k) && !s.args.has(k)) argEnv.push([k, v]);
  }
  const shown = argEnv.filter(([k]) => !PROXY_ARGS.has(k)).map(([k, v]) => `${k}=${SECRET_NAME.test(k) ? '***' : v}`);
  const createdBy = redactText(
    `RUN ${shown.length ? `|${shown.length} ${shown.join(' ')} ` : ''}${argv.join(' ')} # buildkit`,
  );
  for (const [k, v] of argEnv) env.set(k, v);
  return {
    kind: 'run',
    ins,
    argv,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    workdir: config.WorkingDir || '/',
    user: config.User || 'root',
    createdBy,
  };
}
