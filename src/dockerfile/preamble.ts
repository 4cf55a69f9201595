/**
 * Recognises the instructions of CanvOS's stock Dockerfile preamble, which canvos-lite already emulates with its own
 * layers (plan.ts: CA certificates from certs/, overlay/files/etc incl. custom-hardware-specs-lookup.json, the
 * bootargs cgroup v2 edit). An instruction is recognised only when its text (continuations joined, runs of blanks
 * collapsed) is byte-equal to one of the forms CanvOS shipped since certs/ replaced PROXY_CERT_PATH (2023) — kept
 * here as SHA-256 digests. Anything else, an edited preamble line included, is user content and is applied.
 */
import { createHash } from 'node:crypto';
import type { Instruction } from './parse.js';

/** Digests of the emulated stock instructions (see the file header). */
const EMULATED: ReadonlySet<string> = new Set([
  'dfdd38037eee4ed7e18b80f7d71912381fc654b65fbd9bcfd2742da8a3e8902d', // RUN mkdir -p /certs
  'f7867504aa822cd85c912128b15932c0a073af03cb1b33b46e684256606fc540', // COPY certs/ /certs/
  'e530f4a9bafe19ce9906570c4b9a59889ebedb3d858fd325fd57b67f780a91ec', // ubuntu: cp -a /certs/. + update-ca-certificates
  'a58069d09a26887f565b844de47009630df536f2b78d49f055e3ed300ec521a7', // opensuse-leap: cp -a /certs/. + update-ca-certificates
  'bee3a0b2d817860ddcfb17cd80dea27e4750ddde6586886a3c4feec129ca25e6', // rhel: cp -a /certs/. + update-ca-trust
  '2924bf9f7843d6b5a9802a94e5b5c4662326c86382f73e85abec07da5d4b405c', // RUN rm -rf /certs
  '8c3b7b5a812926919a3b515afb302224b90277b68603486728a03b641231464d', // COPY …/custom-hardware-specs-lookup.json
  'f2b36f67fe5f2998c9f459a8fe9b18a512abf0bf3c3e002d5173e76f473fff2e', // bootargs cgroup v2 edit (guarded, 2025)
  'dd88d19915e3a1128820d56c7a05f925692e4690649f3bf387a7d0220d7c0454', // bootargs cgroup v2 edit (unguarded)
  'ae444a9aac9ac83833a89bc522895bcc93ea446df2a99d118843726d51f1f613', // WORKDIR /certs (2023 certs block)
  '05284dddcca2a20b4053b495132055eda7c0b295ab0d602e5ad053cd62ab52ba', // ubuntu: cp -f /certs/* (2023)
  '92ae2492d939d3042901f83aed459966bc5a70deea41a5a17e4754d47dae1546', // opensuse-leap: cp -f /certs/* (2023)
  'f5a09654bc71264d17ffc79baec53c09dc996c82fb756582c9b97f8d1124e25a', // rhel: cp -f /certs/* (2023)
]);

/**
 * The storage-provider prerequisites RUN of recent CanvOS Dockerfiles: it only prints a line unless the
 * STORAGE_PROVIDER argument is set, so it is skipped when that argument is empty and executed otherwise.
 */
const STORAGE_PROVIDER_RUN = '90aeaca4e0e289a3137ece4a9008d69940f244522aa3143ba06cbff4816835aa';

/** The normalised text an instruction is compared by. */
export function normalizedText(ins: Instruction): string {
  return ins.original.replace(/\s+/g, ' ').trim();
}

function digest(ins: Instruction): string {
  return createHash('sha256').update(normalizedText(ins)).digest('hex');
}

/** Why an instruction produces no step: emulated by canvos-lite, or a no-op with the current arguments. */
export type PreambleMatch = 'emulated' | 'no-op' | undefined;

/** Classify `ins`; `args` are the stage's ARG values at that point. */
export function matchPreamble(ins: Instruction, args: ReadonlyMap<string, string>): PreambleMatch {
  const d = digest(ins);
  if (EMULATED.has(d)) return 'emulated';
  if (d === STORAGE_PROVIDER_RUN && !args.get('STORAGE_PROVIDER')) return 'no-op';
  return undefined;
}
