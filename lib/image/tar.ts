import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { openUserFile } from "../state/user-file.ts";

/**
 * A POSIX ustar archive, written and read one member at a time, so image archives of gigabytes
 * never sit in memory. Only regular files: what an image bundle holds. Sizes of 8 GiB and more use
 * the base-256 size field that GNU tar and Go's archive/tar read.
 */

const BLOCK = 512;
const NAME_MAX = 100;
const OCTAL_SIZE_LIMIT = 8 ** 11; // 11 octal digits

/** TarError is an archive that is not a well-formed tar (truncated, corrupt header). */
export class TarError extends Error {
  override name = "TarError";
}

function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

/** tarHeader is the 512-byte ustar header of a regular file. */
export function tarHeader(name: string, size: number, mtime = 0, mode = 0o644): Buffer {
  if (Buffer.byteLength(name) > NAME_MAX || name.includes("\0")) throw new TarError(`tar member name too long or invalid: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, NAME_MAX, "utf8");
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  if (size < OCTAL_SIZE_LIMIT) {
    writeOctal(h, 124, 12, size);
  } else {
    // base-256: the high bit of the first byte set, the size big-endian in the rest
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  writeOctal(h, 136, 12, mtime);
  h.write("        ", 148, 8, "ascii"); // checksum counted as spaces
  h.write("0", 156, 1, "ascii"); // regular file
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}

/** padding is how many zero bytes follow a member of this size to the next block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** TarWriter appends regular files to a tar file; finish() writes the end-of-archive blocks. */
export class TarWriter {
  #fh: FileHandle;
  #pos = 0;
  private constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  /** create opens path for writing (exclusively: it must not exist) with mode. */
  static async create(path: string, mode = 0o644): Promise<TarWriter> {
    return new TarWriter(await open(path, "wx", mode));
  }

  async #write(buf: Uint8Array): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.#fh.write(buf, off, buf.length - off, this.#pos);
      off += bytesWritten;
      this.#pos += bytesWritten;
    }
  }

  /** addBytes adds a member holding data. */
  async addBytes(name: string, data: string | Uint8Array): Promise<void> {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    await this.#write(tarHeader(name, buf.length));
    await this.#write(buf);
    await this.#write(Buffer.alloc(padding(buf.length)));
  }

  /** addFile copies a file in as a member and returns its size and sha256 (hex), computed while copying. */
  async addFile(name: string, path: string): Promise<{ size: number; sha256: string }> {
    const headerAt = this.#pos;
    await this.#write(Buffer.alloc(BLOCK)); // the header, rewritten once the size is known
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      const buf = chunk as Buffer;
      hash.update(buf);
      size += buf.length;
      await this.#write(buf);
    }
    await this.#write(Buffer.alloc(padding(size)));
    await this.#fh.write(tarHeader(name, size), 0, BLOCK, headerAt);
    return { size, sha256: hash.digest("hex") };
  }

  /** finish writes the two zero blocks that end an archive, flushes to disk and closes. */
  async finish(): Promise<void> {
    await this.#write(Buffer.alloc(2 * BLOCK));
    await this.#fh.sync();
    await this.#fh.close();
  }

  /** abort closes without finishing (the caller removes the file). */
  async abort(): Promise<void> {
    await this.#fh.close().catch(() => {});
  }
}

/** TarMember is one regular file of an archive: where its data starts, its size and its sha256. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
  sha256: string;
}

function readOctal(h: Buffer, offset: number, width: number): number {
  if ((h[offset]! & 0x80) !== 0) {
    let v = BigInt(h[offset]! & 0x7f);
    for (let i = offset + 1; i < offset + width; i++) v = (v << 8n) | BigInt(h[i]!);
    return Number(v);
  }
  const text = h.subarray(offset, offset + width).toString("ascii").replace(/[\0 ]+$/, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`not a tar header (bad number ${JSON.stringify(text)})`);
  return parseInt(text, 8);
}

/** ReadTarOptions: which members come back as text (`keep`: by name, default all) up to smallLimit bytes each, and what the archive is called in messages. */
export interface ReadTarOptions {
  smallLimit?: number;
  keep?: ReadonlySet<string>;
  what?: string;
}

/**
 * readTar reads a whole archive once, hashing every member: it returns the regular files with
 * their offsets, sizes and sha256, and throws a TarError for a truncated or corrupt archive (a short
 * member, a header whose checksum is wrong, no end-of-archive blocks). small: members of at most
 * smallLimit bytes (named in keep, when given) also come back as text (manifests), by name. A path
 * that is not a regular file (a FIFO, a device) is refused at once (openUserFile).
 */
export async function readTar(path: string, opts: ReadTarOptions = {}): Promise<{ members: TarMember[]; small: Map<string, string> }> {
  const smallLimit = opts.smallLimit ?? 1 << 20;
  const { fh } = await openUserFile(path, opts.what ?? "archive");
  try {
    const total = (await fh.stat()).size;
    const members: TarMember[] = [];
    const small = new Map<string, string>();
    const header = Buffer.alloc(BLOCK);
    const chunk = Buffer.alloc(1 << 20);
    let pos = 0;
    for (;;) {
      if (pos + BLOCK > total) throw new TarError(`truncated: ends inside a header at byte ${pos} of ${total}, before the end-of-archive marker`);
      await readExactly(fh, header, pos);
      if (header.every((b) => b === 0)) {
        // end of archive: two zero blocks (the second may be missing in archives of some writers)
        return { members, small };
      }
      const stored = readOctal(header, 148, 8);
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
      if (sum !== stored) throw new TarError(`corrupt: the header at byte ${pos} fails its checksum`);
      const name = header.subarray(0, NAME_MAX).toString("utf8").replace(/\0.*$/s, "");
      const prefix = header.subarray(345, 500).toString("utf8").replace(/\0.*$/s, "");
      const size = readOctal(header, 124, 12);
      const type = String.fromCharCode(header[156]!);
      const dataAt = pos + BLOCK;
      const next = dataAt + size + padding(size);
      if (dataAt + size > total) throw new TarError(`truncated: member ${prefix ? `${prefix}/` : ""}${name} needs ${size} bytes, the file ends after ${total - dataAt}`);
      if (type === "0" || type === "\0") {
        const hash = createHash("sha256");
        const full = prefix ? `${prefix}/${name}` : name;
        const keep = size <= smallLimit && (opts.keep?.has(full) ?? true) ? Buffer.alloc(size) : undefined;
        for (let off = 0; off < size; ) {
          const n = Math.min(chunk.length, size - off);
          await readExactly(fh, chunk.subarray(0, n), dataAt + off);
          hash.update(chunk.subarray(0, n));
          keep?.set(chunk.subarray(0, n), off);
          off += n;
        }
        members.push({ name: full, offset: dataAt, size, sha256: hash.digest("hex") });
        if (keep) small.set(full, keep.toString("utf8"));
      }
      pos = next;
    }
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: FileHandle, buf: Buffer, at: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, at + off);
    if (bytesRead === 0) throw new TarError(`truncated: the file ends at byte ${at + off}`);
    off += bytesRead;
  }
}

/** extractMember copies one member's bytes to a new file (exclusively created, mode 0600). */
export async function extractMember(archive: string, m: TarMember, dest: string): Promise<void> {
  const { fh: src } = await openUserFile(archive, "archive");
  const dst = await open(dest, "wx", 0o600);
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let off = 0; off < m.size; ) {
      const n = Math.min(buf.length, m.size - off);
      await readExactly(src, buf.subarray(0, n), m.offset + off);
      let w = 0;
      while (w < n) w += (await dst.write(buf, w, n - w)).bytesWritten;
      off += n;
    }
    await dst.sync();
  } finally {
    await src.close();
    await dst.close();
  }
}
