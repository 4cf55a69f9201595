/**
 * Runs a child process and measures wall time, CPU time and peak RSS. Peak RSS comes from wait4's ru_maxrss via GNU
 * /usr/bin/time when installed (exact), else from sampling /proc/<pid>/status VmHWM every 20 ms (may miss the last
 * few ms of growth).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

async function vmHwmKb(pid) {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(s);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Run `cmd args`; resolves {ms, code, stdout, stderr, peakRssMB, cpuS} (cpuS: user+sys seconds, only with GNU time). Throws when the exit code is non-zero unless
 * opts.allowFail. opts: {env, cwd, allowFail}.
 */
export async function runMeasured(cmd, args, opts = {}) {
  const tdir = GNU_TIME ? await mkdtemp(join(tmpdir(), 'bench-time-')) : undefined;
  const timeFile = tdir ? join(tdir, 'rusage') : undefined;
  const [file, argv] = GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const t0 = process.hrtime.bigint();
  const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-20000)));
  let sampled = 0;
  const timer = GNU_TIME
    ? undefined
    : setInterval(async () => {
        sampled = Math.max(sampled, await vmHwmKb(child.pid));
      }, 20);
  const code = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (timer) clearInterval(timer);
  let peakKb = sampled;
  let cpuS;
  if (timeFile) {
    const txt = await readFile(timeFile, 'utf8').catch(() => '');
    // Last line "maxrss_kB user_s sys_s" (a failed command gets a "Command exited…" line before it).
    const m = /(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(txt.trim());
    if (m) {
      peakKb = Number(m[1]);
      cpuS = Number(m[2]) + Number(m[3]);
    }
    await rm(tdir, { recursive: true, force: true });
  }
  if (code !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr.slice(-3000)}`);
  }
  return { ms, code, stdout, stderr, peakRssMB: peakKb / 1024, cpuS };
}

/** Run a shell pipeline (bash -c) measured the same way (peak RSS is then the shell's, so not meaningful). */
export function runShell(script, opts = {}) {
  return runMeasured('bash', ['-o', 'pipefail', '-c', script], opts);
}
