import { describe, expect, it } from '@jest/globals';
import { DeadlineList, type Timed } from '../../../controller/proxy/deadlines.js';
import { Framing, parseRequestHead, parseResponseHead } from '../../../controller/proxy/http1.js';

const request = (head: string) => {
  const buf = Buffer.from(head, 'latin1');
  return parseRequestHead(buf, 0, buf.length, 'x-slipway-track', '192.0.2.7');
};
const response = (head: string, bodiless = false) => {
  const buf = Buffer.from(head, 'latin1');
  return parseResponseHead(buf, 0, buf.length, bodiless, 'x-slipway-track');
};

describe('the fast path request head parser', () => {
  it('reads what routing and framing need and rewrites the forwarding headers', () => {
    const head = request('POST /a?b=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 12\r\nX-Slipway-Track: canary\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n\r\n');
    expect(head).toEqual({
      method: 'POST',
      contentLength: 12,
      forcedTrack: 'canary',
      close: true,
      upstreamHead: 'POST /a?b=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 12\r\nAccept: */*\r\nx-forwarded-for: 192.0.2.7\r\nx-forwarded-host: shop\r\nx-forwarded-proto: http\r\n\r\n',
    });
  });

  it.each([
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
    ['an unusual method', 'PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a missing Host', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n'],
    ['a Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n'],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n'],
    ['Expect', 'PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n'],
    ['Upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['obsolete line folding', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n'],
    ['a bare LF', 'GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n'],
    ['a control character in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\u0000\r\n\r\n'],
    ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('leaves %s to the general path', (_what, head) => {
    expect(request(head)).toBeNull();
  });
});

describe('the fast path response head parser', () => {
  it('keeps the end-to-end headers, drops the hop-by-hop ones and reads the framing', () => {
    const head = response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Slipway-Track: forged\r\nETag: "x"\r\n\r\n');
    expect(head).toEqual({ status: 200, head: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "x"\r\n', framing: Framing.Length, contentLength: 5, keepAlive: true, keepAliveMs: 5000 });
  });

  it('frames by chunks when Transfer-Encoding ends in chunked, dropping a Content-Length beside it and not reusing the socket', () => {
    const head = response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')!;
    expect(head.framing).toBe(Framing.Chunked);
    expect(head.head).not.toMatch(/content-length/i);
    expect(head.keepAlive).toBe(false);
  });

  it('reads until close when nothing frames the body, and expects no body for HEAD, 204 and 304', () => {
    expect(response('HTTP/1.0 200 OK\r\n\r\n')).toMatchObject({ framing: Framing.Close, keepAlive: false, head: 'HTTP/1.1 200 OK\r\n' });
    expect(response('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n', true)!.framing).toBe(Framing.None);
    expect(response('HTTP/1.1 204 No Content\r\n\r\n')!.framing).toBe(Framing.None);
    expect(response('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n')!.framing).toBe(Framing.None);
  });

  it('refuses two different Content-Lengths and malformed status lines', () => {
    expect(response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n')).toBeNull();
    expect(response('HTTP/2 200\r\n\r\n')).toBeNull();
    expect(response('HTTP/1.1 2000 OK\r\n\r\n')).toBeNull();
  });
});

describe('the deadline list', () => {
  const item = (name: string, fired: string[]): Timed => ({
    deadlinePrev: null,
    deadlineNext: null,
    deadlineAt: 0,
    deadlineList: null,
    onDeadline: () => fired.push(name),
  });

  it('fires items in the order they were armed, skips disarmed ones, and re-arming restarts the countdown', async () => {
    const list = new DeadlineList(30);
    const fired: string[] = [];
    const [a, b, c] = [item('a', fired), item('b', fired), item('c', fired)];
    list.arm(a);
    list.arm(b);
    list.arm(c);
    list.disarm(b);
    list.arm(a); // a now expires after c
    const deadline = Date.now() + 10_000;
    while (fired.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fired).toEqual(['c', 'a']);
    list.clear();
  });
});
