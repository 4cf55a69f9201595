/**
 * Boots an ISO in QEMU with the first serial port logged to a file: SeaBIOS (`-machine pc`) or OVMF UEFI
 * (`-machine q35`, a private copy of OVMF_VARS_4M.fd), the ISO as a read-only CD-ROM, KVM when /dev/kvm is
 * usable, else TCG. Resolves with the serial log when QEMU exits (the guest powers off) or the timeout kills it.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Options of {@link bootIso}. */
export interface BootIsoOptions {
  firmware: 'bios' | 'uefi';
  /** Attach the ISO as a CD-ROM, or as a hard disk (what `dd` to a USB stick gives). Default: 'cdrom'. */
  media?: 'cdrom' | 'disk';
  /** Image format of a `disk` (e.g. a qcow2 copy of a disk image). Default: 'raw'. */
  diskFormat?: 'raw' | 'qcow2';
  /** Kill QEMU after this many ms. Default: 300000. */
  timeoutMs?: number;
  /** Resolve early (and kill QEMU) once the log contains this text. Default: wait for QEMU to exit. */
  until?: string | RegExp;
  /** Default: 1024. */
  memoryMiB?: number;
  /**
   * Default: env CANVOS_QEMU_ACCEL, else 'tcg'. KVM is opt-in: on nested-virtualisation CI hosts /dev/kvm can be
   * openable yet hang the guest at the first instruction, and TCG boots these small ISOs in ~15 s anyway.
   */
  accel?: 'kvm' | 'tcg';
  /** Directory with OVMF_CODE_4M.fd and OVMF_VARS_4M.fd. Default: /usr/share/OVMF. */
  ovmfDir?: string;
  /** UEFI with Secure Boot: OVMF_CODE_4M.secboot.fd on an SMM q35 machine. Default: false. */
  secureBoot?: boolean;
  /** UEFI variable store to use and keep (e.g. keys enrolled by a previous boot). Default: a fresh private copy of OVMF_VARS_4M.fd. */
  varsFile?: string;
}

/** Result of {@link bootIso}. */
export interface BootResult {
  log: string;
  timedOut: boolean;
  exitCode: number | null;
  accel: 'kvm' | 'tcg';
  seconds: number;
  argv: string[];
}

async function kvmUsable(): Promise<boolean> {
  return access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
}

/** Boots `iso` and returns the serial log. */
export async function bootIso(iso: string, opts: BootIsoOptions): Promise<BootResult> {
  const env = process.env.CANVOS_QEMU_ACCEL;
  const accel = opts.accel ?? (env === 'kvm' && (await kvmUsable()) ? 'kvm' : 'tcg');
  const work = await mkdtemp(join(tmpdir(), 'canvos-qemu-'));
  const log = join(work, 'serial.log');
  const args = [
    '-accel',
    accel,
    '-m',
    String(opts.memoryMiB ?? 1024),
    '-smp',
    '1',
    '-display',
    'none',
    '-monitor',
    'none',
  ];
  args.push('-serial', `file:${log}`, '-no-reboot');
  if (opts.firmware === 'uefi') {
    const dir = opts.ovmfDir ?? '/usr/share/OVMF';
    const vars = opts.varsFile ?? join(work, 'OVMF_VARS_4M.fd');
    if (!opts.varsFile) await copyFile(join(dir, 'OVMF_VARS_4M.fd'), vars);
    if (opts.secureBoot) args.push('-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on');
    else args.push('-machine', 'q35');
    const code = opts.secureBoot ? 'OVMF_CODE_4M.secboot.fd' : 'OVMF_CODE_4M.fd';
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${join(dir, code)}`);
    args.push('-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  } else {
    args.push('-machine', 'pc');
  }
  if (opts.media === 'disk')
    args.push('-drive', `file=${iso},format=${opts.diskFormat ?? 'raw'},if=ide,snapshot=on`, '-boot', 'c');
  else args.push('-drive', `file=${iso},format=raw,media=cdrom,readonly=on`, '-boot', 'd');
  const started = Date.now();
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  let timedOut = false;
  const readLog = (): Promise<string> => readFile(log, 'latin1').catch(() => '');
  try {
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 300_000);
      const poll = opts.until
        ? setInterval(() => {
            void readLog().then((t) => {
              const hit = typeof opts.until === 'string' ? t.includes(opts.until) : (opts.until as RegExp).test(t);
              if (hit) child.kill('SIGKILL');
            });
          }, 1000)
        : undefined;
      child.on('error', (e) => {
        clearTimeout(timer);
        if (poll) clearInterval(poll);
        reject(e);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (poll) clearInterval(poll);
        resolve(code);
      });
    });
    const text = (await readLog()).replace(/\r/g, '');
    return {
      log: stderr ? `${text}\n[qemu stderr] ${stderr}` : text,
      timedOut,
      exitCode,
      accel,
      seconds: (Date.now() - started) / 1000,
      argv: ['qemu-system-x86_64', ...args],
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}
