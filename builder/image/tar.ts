/**
 * Tar headers for the three entry kinds a layer holds (regular file, directory, symlink), written
 * straight into bytes: the layer builder packs thousands of small files, and a stream-based packer
 * spends more per entry on its stream machinery than on the bytes (tar-stream still reads layers, in
 * lib/oci). POSIX ustar, with a pax extended header (`path`, `linkpath`) only for names that do not fit.
 * Fixed: uid/gid 0, empty user and group names, the given mtime, devmajor/devminor 0.
 */
export const TAR_BLOCK = 512;
/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

export interface TarHeaderFields {
  /** Relative, `/`-separated; directories without the trailing slash (added here). */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  size: number;
  mtimeSeconds: number;
  linkname?: string;
}

const TYPE_FLAG = { file: '0', directory: '5', symlink: '2' } as const;
/** The largest size the 11 octal digits of a ustar size field hold (8 GiB - 1). */
const MAX_USTAR_SIZE = 0o77777777777;

/** The header block(s) of one entry: a pax header first when the name or link target needs one. */
export function tarHeader(h: TarHeaderFields): Buffer {
  if (h.size > MAX_USTAR_SIZE) throw new RangeError(`${h.path} is larger than 8 GiB, which a layer cannot hold`);
  const name = h.type === 'directory' ? `${h.path}/` : h.path;
  const split = splitUstarName(name);
  const linkname = h.linkname ?? '';
  const linkFits = Buffer.byteLength(linkname) <= 100;
  const pax: [string, string][] = [];
  if (!split) pax.push(['path', name]);
  if (!linkFits) pax.push(['linkpath', linkname]);
  const main = ustarBlock({
    name: split ? split.name : truncateBytes(name, 100),
    prefix: split ? split.prefix : '',
    mode: h.mode,
    size: h.size,
    mtime: h.mtimeSeconds,
    type: TYPE_FLAG[h.type],
    linkname: linkFits ? linkname : truncateBytes(linkname, 100),
  });
  if (pax.length === 0) return main;
  const body = Buffer.from(pax.map(([k, v]) => paxRecord(k, v)).join(''));
  const paxHeader = ustarBlock({ name: truncateBytes(`PaxHeader/${name.replace(/\/$/, '')}`, 100), prefix: '', mode: 0o644, size: body.length, mtime: h.mtimeSeconds, type: 'x', linkname: '' });
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main]);
}

/** Zero bytes after a body of `size` bytes, up to the next 512-byte boundary. */
export function padding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}

/** ustar splits a long name into prefix (≤ 155 bytes) + `/` + name (≤ 100 bytes) at a slash. */
function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) > 155) return undefined;
    if (rest && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  return undefined;
}

/** `<length> <key>=<value>\n`, where length counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restBytes = Buffer.byteLength(rest);
  let length = restBytes;
  for (let next = restBytes + String(length).length; next !== length; next = restBytes + String(length).length) length = next;
  return `${length}${rest}`;
}

function truncateBytes(text: string, max: number): string {
  const bytes = Buffer.from(text);
  return bytes.length <= max ? text : bytes.subarray(0, max).toString('utf8').replace(/\uFFFD+$/, '');
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
}

/** The fields every header shares (uid/gid 0, magic, version, device numbers), filled in once. */
const TEMPLATE = (() => {
  const b = Buffer.alloc(TAR_BLOCK);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  b.write('ustar\u000000', 257, 8, 'latin1'); // magic "ustar\0", version "00"
  octal(b, 329, 8, 0); // devmajor
  octal(b, 337, 8, 0); // devminor
  return b;
})();
/** The checksum is the byte sum of the header with its own field (148–155) read as spaces: the template's part of it. */
const TEMPLATE_SUM = TEMPLATE.reduce((sum, byte, i) => sum + (i >= 148 && i < 156 ? 0x20 : byte), 0);

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.allocUnsafe(TAR_BLOCK);
  writeUstar(b, 0, f);
  return b;
}

/**
 * The header of an entry whose name (with a directory's slash) and link target fit ustar's 100 bytes,
 * written at `offset` of `target` (the layer's workers write headers straight into their block).
 */
export function writePlainHeader(target: Buffer, offset: number, h: TarHeaderFields): void {
  const name = h.type === 'directory' ? `${h.path}/` : h.path;
  writeUstar(target, offset, { name, prefix: '', mode: h.mode, size: h.size, mtime: h.mtimeSeconds, type: TYPE_FLAG[h.type], linkname: h.linkname ?? '' });
}

/** Whether writePlainHeader can write this entry's header (one 512-byte block, no pax header, a size ustar holds). */
export function isPlainHeader(h: { path: string; type: TarHeaderFields['type']; size?: number; linkname?: string }): boolean {
  return (h.size ?? 0) <= MAX_USTAR_SIZE && Buffer.byteLength(h.path) + (h.type === 'directory' ? 1 : 0) <= 100 && (!h.linkname || Buffer.byteLength(h.linkname) <= 100);
}

function writeUstar(b: Buffer, o: number, f: UstarFields): void {
  TEMPLATE.copy(b, o);
  // Every field written below lies where the template is zero, so the checksum is the template's plus theirs.
  const nameLength = b.write(f.name, o, 100, 'utf8');
  octal(b, o + 100, 8, f.mode & 0o7777);
  octal(b, o + 124, 12, f.size);
  octal(b, o + 136, 12, f.mtime);
  b[o + 156] = f.type.charCodeAt(0);
  const linkLength = f.linkname ? b.write(f.linkname, o + 157, 100, 'utf8') : 0;
  const prefixLength = f.prefix ? b.write(f.prefix, o + 345, 155, 'utf8') : 0;
  const sum =
    TEMPLATE_SUM + sumOf(b, o, o + nameLength) + sumOf(b, o + 100, o + 108) + sumOf(b, o + 124, o + 148) + b[o + 156]! + sumOf(b, o + 157, o + 157 + linkLength) + sumOf(b, o + 345, o + 345 + prefixLength);
  octal(b, o + 148, 7, sum); // six digits and a NUL,
  b[o + 155] = 0x20; // then a space
}

function sumOf(b: Buffer, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += b[i]!;
  return sum;
}

/** Zero-padded octal digits filling the field but its last byte, which stays NUL. */
function octal(b: Buffer, offset: number, length: number, value: number): void {
  let v = Math.floor(value);
  for (let i = offset + length - 2; i >= offset; i--) {
    b[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  b[offset + length - 1] = 0;
}
