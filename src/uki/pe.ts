/**
 * PE/COFF (PE32+) headers of an EFI application: read the section table, and plan new sections appended after
 * the last one, as ukify does when it turns systemd's linuxx64.efi.stub into a UKI. Only headers are held in
 * memory; section payloads are streamed by the caller (uki.ts).
 * @internal
 */

/** A section header. */
export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  rawSize: number;
  rawPointer: number;
  characteristics: number;
}

/** Parsed PE headers. */
export interface PeHeaders {
  /** Offset of the COFF file header ("PE\0\0" + 4). */
  coff: number;
  /** Offset of the optional header. */
  opt: number;
  /** Offset of the section table. */
  table: number;
  sections: PeSection[];
  fileAlignment: number;
  sectionAlignment: number;
  sizeOfHeaders: number;
  /** Offset of the Certificate Table data directory entry (index 4). */
  certDir: number;
  /** Offset of the CheckSum field. */
  checksum: number;
}

export const IMAGE_SCN_CNT_INITIALIZED_DATA = 0x40;
export const IMAGE_SCN_MEM_READ = 0x40000000;

/** Parses the headers of a PE32+ image (`head` holds at least SizeOfHeaders bytes). Throws RangeError otherwise. */
export function parsePe(head: Buffer): PeHeaders {
  if (head.length < 0x40 || head.readUInt16LE(0) !== 0x5a4d) throw new RangeError('not a PE image (no MZ header)');
  const pe = head.readUInt32LE(0x3c);
  if (head.readUInt32LE(pe) !== 0x4550) throw new RangeError('not a PE image (no PE signature)');
  const coff = pe + 4;
  const nSections = head.readUInt16LE(coff + 2);
  const optSize = head.readUInt16LE(coff + 16);
  const opt = coff + 20;
  if (head.readUInt16LE(opt) !== 0x20b) throw new RangeError('not a PE32+ image');
  const table = opt + optSize;
  const sections: PeSection[] = [];
  for (let i = 0; i < nSections; i++) {
    const o = table + 40 * i;
    sections.push({
      name: head
        .subarray(o, o + 8)
        .toString('latin1')
        .replace(/\0+$/, ''),
      virtualSize: head.readUInt32LE(o + 8),
      virtualAddress: head.readUInt32LE(o + 12),
      rawSize: head.readUInt32LE(o + 16),
      rawPointer: head.readUInt32LE(o + 20),
      characteristics: head.readUInt32LE(o + 36),
    });
  }
  return {
    coff,
    opt,
    table,
    sections,
    sectionAlignment: head.readUInt32LE(opt + 32),
    fileAlignment: head.readUInt32LE(opt + 36),
    sizeOfHeaders: head.readUInt32LE(opt + 60),
    checksum: opt + 64,
    certDir: opt + 112 + 4 * 8,
  };
}

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** One section to add: its name (at most 8 bytes) and payload size. */
export interface NewSection {
  name: string;
  size: number;
}

/** Where the stub's sections and the new ones go in the output file. */
export interface PeLayout {
  /** The new header block (SizeOfHeaders bytes, section table included). */
  headers: Buffer;
  /** File offset of the stub's first section data in the output (the stub's data moves when headers grow). */
  shift: number;
  /** Output file offset and virtual address of each new section, in order. */
  placed: { name: string; rawPointer: number; rawSize: number; virtualAddress: number; size: number }[];
  /** Total output size. */
  size: number;
}

/**
 * Plans the output: the stub's headers with the new section headers appended (growing SizeOfHeaders, and moving
 * the stub's section data, when the table does not fit), new sections placed after the stub's last one at
 * `vaAlign`-aligned addresses, SizeOfImage and SizeOfInitializedData updated, no COFF symbol table, no certificate table (the
 * stub's signature, if any, would be invalid) and CheckSum zero (EFI loaders
 * ignore it; signing covers the image).
 */
export function planSections(stubHead: Buffer, adds: readonly NewSection[], vaAlign = 4096): PeLayout {
  const h = parsePe(stubHead);
  const needed = h.table + 40 * (h.sections.length + adds.length);
  const firstVa = Math.min(...h.sections.map((s) => s.virtualAddress));
  const sizeOfHeaders = Math.max(h.sizeOfHeaders, alignUp(needed, h.fileAlignment));
  if (sizeOfHeaders > firstVa) throw new RangeError(`stub has no room for ${adds.length} more section headers`);
  const shift = sizeOfHeaders - h.sizeOfHeaders;
  const headers = Buffer.alloc(sizeOfHeaders);
  stubHead.copy(headers, 0, 0, Math.min(stubHead.length, h.table + 40 * h.sections.length));
  for (let i = 0; i < h.sections.length; i++) {
    const o = h.table + 40 * i;
    const p = headers.readUInt32LE(o + 20);
    if (p) headers.writeUInt32LE(p + shift, o + 20);
  }
  let fileEnd = Math.max(...h.sections.map((s) => (s.rawPointer ? s.rawPointer + s.rawSize : 0))) + shift;
  fileEnd = alignUp(Math.max(fileEnd, sizeOfHeaders), h.fileAlignment);
  let vaEnd = Math.max(...h.sections.map((s) => s.virtualAddress + Math.max(s.virtualSize, s.rawSize)));
  let initData = headers.readUInt32LE(h.opt + 8);
  const placed: PeLayout['placed'] = [];
  adds.forEach((a, i) => {
    if (Buffer.byteLength(a.name, 'latin1') > 8) throw new RangeError(`section name ${a.name} longer than 8 bytes`);
    const va = alignUp(vaEnd, Math.max(vaAlign, h.sectionAlignment));
    const rawSize = alignUp(a.size, h.fileAlignment);
    const o = h.table + 40 * (h.sections.length + i);
    headers.write(a.name, o, 'latin1');
    headers.writeUInt32LE(a.size, o + 8);
    headers.writeUInt32LE(va, o + 12);
    headers.writeUInt32LE(rawSize, o + 16);
    headers.writeUInt32LE(fileEnd, o + 20);
    headers.writeUInt32LE(IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ, o + 36);
    placed.push({ name: a.name, rawPointer: fileEnd, rawSize, virtualAddress: va, size: a.size });
    fileEnd += rawSize;
    vaEnd = va + a.size;
    initData += rawSize;
  });
  headers.writeUInt16LE(h.sections.length + adds.length, h.coff + 2);
  // the stub's COFF symbol table sits after its last section, where the new sections now go: drop it
  headers.writeUInt32LE(0, h.coff + 8);
  headers.writeUInt32LE(0, h.coff + 12);
  headers.writeUInt32LE(initData, h.opt + 8);
  headers.writeUInt32LE(alignUp(vaEnd, h.sectionAlignment), h.opt + 56); // SizeOfImage
  headers.writeUInt32LE(sizeOfHeaders, h.opt + 60);
  headers.writeUInt32LE(0, h.checksum);
  headers.writeUInt32LE(0, h.certDir);
  headers.writeUInt32LE(0, h.certDir + 4);
  return { headers, shift, placed, size: fileEnd };
}
