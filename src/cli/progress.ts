/**
 * Progress rendering for CLI commands (copy, build, mirror). On a TTY one status line is rewritten in place
 * (bytes, items done/total, rate); otherwise one plain line per finished item (`copied sha256:abc… 12.3 MB`).
 * With `quiet` (e.g. --json) nothing is printed. It consumes the library's ProgressEvent stream.
 */
import type { ProgressEvent } from '../image/types.js';

/** Human size, e.g. `12.3 MB` (decimal units, like skopeo and docker). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** `sha256:0123456789ab…` for display. */
export function shortDigest(d: string): string {
  const i = d.indexOf(':');
  return i >= 0 && d.length > i + 13 ? `${d.slice(0, i + 13)}…` : d;
}

/** Options of {@link createProgress}. */
export interface ProgressRendererOptions {
  /** Rewrite one line in place. Default: `stream.isTTY`. */
  tty?: boolean | undefined;
  /** Print nothing. Default: false. */
  quiet?: boolean | undefined;
  /** Minimum milliseconds between TTY redraws. Default: 100. */
  intervalMs?: number | undefined;
  /** Verb shown on the TTY line. Default: the event's phase. */
  label?: string | undefined;
  /** Clock (tests). Default: Date.now. */
  now?: (() => number) | undefined;
}

/** A renderer: feed it events with `onProgress`, call `done()` before printing anything else. */
export interface ProgressRenderer {
  onProgress(e: ProgressEvent): void;
  done(): void;
}

/** Create a renderer writing to `stream` (normally stderr, so stdout stays clean for --json). */
export function createProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  opts: ProgressRendererOptions = {},
): ProgressRenderer {
  const tty = opts.tty ?? stream.isTTY === true;
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 100;
  const started = now();
  let last = 0;
  let lineShown = false;
  let latest: ProgressEvent | undefined;

  const line = (e: ProgressEvent): string => {
    const secs = Math.max((now() - started) / 1000, 0.001);
    const parts = [
      `${opts.label ?? e.phase}: ${formatBytes(e.transferred)}${e.total !== undefined ? ` / ${formatBytes(e.total)}` : ''}`,
    ];
    if (e.itemsTotal !== undefined) parts.push(`${e.itemsDone ?? 0}/${e.itemsTotal} done`);
    parts.push(`${formatBytes(e.transferred / secs)}/s`);
    return parts.join('  ');
  };
  const draw = (e: ProgressEvent): void => {
    stream.write(`\r\x1b[K${line(e)}`);
    lineShown = true;
  };

  return {
    onProgress(e: ProgressEvent): void {
      if (opts.quiet) return;
      latest = e;
      if (tty) {
        const t = now();
        if (e.status !== undefined || t - last >= interval) {
          last = t;
          draw(e);
        }
        return;
      }
      if (e.status !== undefined && e.item !== undefined) {
        stream.write(
          `${e.status} ${shortDigest(e.item)}${e.itemSize !== undefined ? ` ${formatBytes(e.itemSize)}` : ''}\n`,
        );
      }
    },
    done(): void {
      if (opts.quiet || !tty) return;
      if (latest) draw(latest);
      if (lineShown) stream.write('\n');
    },
  };
}
