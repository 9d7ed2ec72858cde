/**
 * The HTTP/1.1 framing the proxy's fast path needs, written by hand: no library exposes a per-request HTTP/1.1
 * framer cheaper than node:http's own (llhttp behind IncomingMessage/ServerResponse objects, which cost more CPU per
 * request than the instance it fronts). It reads only what routing and framing need and is deliberately narrow:
 * whatever it does not recognise as a plain request is left to node:http (the general path), which answers the
 * malformed and the smuggling shapes (Content-Length with Transfer-Encoding, duplicate Content-Length) with 400.
 */

export const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');
/** node:http's default limit; a longer head goes to the general path, which answers 431. */
export const MAX_HEAD_BYTES = 16 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The methods the fast path forwards; anything else (CONNECT, WebDAV, unknown) goes to node:http, which knows them. */
const REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) ([\x21-\x7e]+) HTTP\/1\.1$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what a header value may not hold
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
/** A field value: no control characters but tab (obs-text allowed). */
// eslint-disable-next-line no-control-regex -- as above
const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
const DIGITS = /^\d{1,15}$/;

/** Dropped when forwarding either way (RFC 9110 §7.6.1), plus the names a Connection header lists. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

export interface RequestHead {
  method: string;
  /** The head to send upstream (latin1): hop-by-hop headers and the track header removed, x-forwarded-* set. */
  upstreamHead: string;
  /** Body bytes that follow the head (0: no body). */
  contentLength: number;
  forcedTrack: string | undefined;
  /** The client asked to close the connection after this answer. */
  close: boolean;
}

/** One header line's lower-cased name and trimmed value; null when it is malformed (also obs-fold, which starts with a space, and bare LF). */
function readField(line: string): { name: string; value: string } | null {
  const colon = line.indexOf(':');
  if (colon <= 0) return null;
  const rawName = line.slice(0, colon);
  if (!TOKEN.test(rawName)) return null;
  const value = line.slice(colon + 1).trim();
  if (!FIELD_VALUE.test(value)) return null;
  return { name: rawName.toLowerCase(), value };
}

/** The header lines to pass on, each ending in CRLF: all but those `Connection` listed (and `drop`). */
function keptLines(names: string[], lines: string[], listed: Set<string> | undefined, drop: string | undefined): string {
  let kept = '';
  for (let i = 0; i < lines.length; i++) {
    if (listed?.has(names[i]!) || names[i] === drop) continue;
    kept += `${lines[i]!}\r\n`;
  }
  return kept;
}

/**
 * Parses a request head (`buf[start, end)`, `end` just past the blank line). Returns null for anything the fast
 * path leaves to node:http: not HTTP/1.1, a method other than the common ones, Upgrade, Expect, any
 * Transfer-Encoding, a missing, repeated or malformed Content-Length or Host, obsolete line folding, bad characters.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, trackHeader: string, clientAddress: string): RequestHead | null {
  const text = buf.toString('latin1', start, end - 2);
  let lineEnd = text.indexOf('\r\n');
  const requestLine = REQUEST_LINE.exec(text.slice(0, lineEnd));
  if (!requestLine) return null;
  const method = requestLine[1]!;
  const names: string[] = [];
  const lines: string[] = [];
  let contentLength = -1;
  let host: string | undefined;
  let forcedTrack: string | undefined;
  let forwardedFor: string | undefined;
  let listed: Set<string> | undefined;
  let close = false;
  let at = lineEnd + 2;
  while (at < text.length) {
    lineEnd = text.indexOf('\r\n', at);
    const line = text.slice(at, lineEnd);
    at = lineEnd + 2;
    const field = readField(line);
    if (!field) return null;
    const { name, value } = field;
    switch (name) {
      case 'content-length':
        if (contentLength >= 0 || !DIGITS.test(value)) return null;
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return null;
      case 'host':
        if (host !== undefined) return null;
        host = value;
        break;
      case 'connection':
        for (const token of value.split(',')) {
          const option = token.trim().toLowerCase();
          if (option === 'close') close = true;
          else if (option === 'upgrade') return null;
          else if (option !== '' && option !== 'keep-alive') (listed ??= new Set()).add(option);
        }
        continue;
      case trackHeader:
        forcedTrack ??= value;
        continue;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'x-forwarded-host':
      case 'x-forwarded-proto':
        continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    names.push(name);
    lines.push(line);
  }
  if (host === undefined) return null;
  let upstreamHead = text.slice(0, text.indexOf('\r\n') + 2) + keptLines(names, lines, listed, undefined);
  upstreamHead += `x-forwarded-for: ${forwardedFor === undefined ? clientAddress : `${forwardedFor}, ${clientAddress}`}\r\nx-forwarded-host: ${host}\r\nx-forwarded-proto: http\r\n\r\n`;
  return { method, upstreamHead, contentLength: contentLength < 0 ? 0 : contentLength, forcedTrack, close };
}

/** How the body of a response is delimited. */
export const Framing = {
  None: 0,
  Length: 1,
  Chunked: 2,
  /** Until the instance closes the connection (no Content-Length, no chunking). */
  Close: 3,
} as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

export interface ResponseHead {
  status: number;
  /** The status line and the headers to pass on, each line ending in CRLF, without the blank line. */
  head: string;
  framing: Framing;
  contentLength: number;
  /** The instance keeps the connection open after this response. */
  keepAlive: boolean;
  /** The instance's `Keep-Alive: timeout=N`, in ms (0 when it sent none). */
  keepAliveMs: number;
}

/**
 * Parses a response head (`buf[start, end)`, `end` just past the blank line) into what to pass on and how the body
 * is framed. `bodiless`: the request was HEAD. Returns null for a head that is not HTTP/1.x or is malformed.
 */
export function parseResponseHead(buf: Buffer, start: number, end: number, bodiless: boolean, trackHeader: string): ResponseHead | null {
  const text = buf.toString('latin1', start, end - 2);
  let lineEnd = text.indexOf('\r\n');
  const statusLine = STATUS_LINE.exec(text.slice(0, lineEnd));
  if (!statusLine) return null;
  const http10 = statusLine[1] === '0';
  const status = Number(statusLine[2]);
  const names: string[] = [];
  const lines: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let transferEncoding = false;
  let keepAlive = !http10;
  let keepAliveMs = 0;
  let listed: Set<string> | undefined;
  let at = lineEnd + 2;
  while (at < text.length) {
    lineEnd = text.indexOf('\r\n', at);
    const line = text.slice(at, lineEnd);
    at = lineEnd + 2;
    const field = readField(line);
    if (!field) return null;
    const { name, value } = field;
    switch (name) {
      case 'content-length':
        if (!DIGITS.test(value) || (contentLength >= 0 && Number(value) !== contentLength)) return null;
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        transferEncoding = true;
        chunked = value.toLowerCase().split(',').at(-1)!.trim() === 'chunked';
        break;
      case 'connection':
        for (const token of value.split(',')) {
          const option = token.trim().toLowerCase();
          if (option === 'close') keepAlive = false;
          else if (option === 'keep-alive') keepAlive ||= http10;
          else if (option !== '') (listed ??= new Set()).add(option);
        }
        continue;
      case 'keep-alive': {
        const timeout = /(?:^|[,;\s])timeout=(\d{1,6})/i.exec(value);
        if (timeout) keepAliveMs = Number(timeout[1]) * 1000;
        continue;
      }
      case trackHeader:
        continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    names.push(name);
    lines.push(line);
  }
  // Content-Length next to Transfer-Encoding (in either order) is dropped (RFC 9112 §6.3: chunking wins), never passed on.
  const head = `HTTP/1.1 ${statusLine[2]!} ${statusLine[3] ?? ''}\r\n` + keptLines(names, lines, listed, transferEncoding ? 'content-length' : undefined);
  let framing: Framing;
  if (bodiless || status === 204 || status === 304 || status < 200) framing = Framing.None;
  else if (transferEncoding) framing = chunked ? Framing.Chunked : Framing.Close;
  else if (contentLength >= 0) framing = contentLength === 0 ? Framing.None : Framing.Length;
  else framing = Framing.Close;
  if (framing === Framing.Close || (transferEncoding && contentLength >= 0)) keepAlive = false;
  return { status, head, framing, contentLength: contentLength < 0 ? 0 : contentLength, keepAlive, keepAliveMs };
}

const ChunkState = {
  Size: 0,
  Extension: 1,
  SizeLf: 2,
  Data: 3,
  DataCr: 4,
  DataLf: 5,
  TrailerStart: 6,
  TrailerLine: 7,
  TrailerLf: 8,
  EndLf: 9,
  Done: 10,
} as const;
type ChunkState = (typeof ChunkState)[keyof typeof ChunkState];

/**
 * Finds where a chunked body ends, so the bytes can be passed on verbatim (chunk sizes, extensions and trailers
 * included) and the connection reused. Feed it each piece of the body in order.
 */
export class ChunkedScanner {
  private state: ChunkState = ChunkState.Size;
  private left = 0;
  private digits = 0;

  reset(): void {
    this.state = ChunkState.Size;
    this.left = 0;
    this.digits = 0;
  }

  /**
   * Scans `buf[start, end)`. Returns the index just past the body's last byte when the body ends in this piece,
   * -1 when it needs more, -2 when the framing is broken.
   */
  scan(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case ChunkState.Size: {
          const c = buf[i]!;
          const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
          if (digit >= 0) {
            if (++this.digits > 12) return -2;
            this.left = this.left * 16 + digit;
          } else if (this.digits === 0) {
            return -2;
          } else if (c === 0x0d) {
            this.state = ChunkState.SizeLf;
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.state = ChunkState.Extension;
          } else {
            return -2;
          }
          i++;
          break;
        }
        case ChunkState.Extension: {
          const cr = buf.indexOf(0x0d, i);
          if (cr < 0 || cr >= end) return -1;
          i = cr + 1;
          this.state = ChunkState.SizeLf;
          break;
        }
        case ChunkState.SizeLf:
          if (buf[i] !== 0x0a) return -2;
          i++;
          this.digits = 0;
          this.state = this.left === 0 ? ChunkState.TrailerStart : ChunkState.Data;
          break;
        case ChunkState.Data: {
          const take = Math.min(this.left, end - i);
          i += take;
          this.left -= take;
          if (this.left === 0) this.state = ChunkState.DataCr;
          break;
        }
        case ChunkState.DataCr:
          if (buf[i] !== 0x0d) return -2;
          i++;
          this.state = ChunkState.DataLf;
          break;
        case ChunkState.DataLf:
          if (buf[i] !== 0x0a) return -2;
          i++;
          this.state = ChunkState.Size;
          break;
        case ChunkState.TrailerStart:
          if (buf[i] === 0x0d) {
            this.state = ChunkState.EndLf;
          } else {
            this.state = ChunkState.TrailerLine;
          }
          i++;
          break;
        case ChunkState.TrailerLine: {
          const cr = buf.indexOf(0x0d, i);
          if (cr < 0 || cr >= end) return -1;
          i = cr + 1;
          this.state = ChunkState.TrailerLf;
          break;
        }
        case ChunkState.TrailerLf:
          if (buf[i] !== 0x0a) return -2;
          i++;
          this.state = ChunkState.TrailerStart;
          break;
        case ChunkState.EndLf:
          if (buf[i] !== 0x0a) return -2;
          this.state = ChunkState.Done;
          return i + 1;
        case ChunkState.Done:
          return i;
      }
    }
    return -1;
  }
}
