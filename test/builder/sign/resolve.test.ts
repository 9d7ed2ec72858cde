/** Choosing how a build signs, and keyless signing reaching the Fulcio it was pointed at. */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSigning, signStatement } from '../../../builder/sign/index.js';
import { buildProvenance } from '../../../builder/provenance/index.js';
import { ensureDefaultKey } from '../../../lib/keys/index.js';
import { description, digestOf, makeKey } from '../../lib/provenance/fixtures.js';

describe('choosing how a build signs', () => {
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'slipway-resolve-'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('uses the default key from slipway init when nothing else is said', () => {
    const env = { SLIPWAY_HOME: home };
    const made = ensureDefaultKey({ env });
    const options = resolveSigning({ env });
    expect(options).toEqual({ mode: 'key', key: { name: 'slipway', privateKeyPem: made.key.privateKeyPem, publicKeyPem: made.key.publicKeyPem } });
  });

  it('uses --key over the default, named after the file', () => {
    const file = join(home, 'release.key');
    writeFileSync(file, makeKey('release').privateKeyPem);
    const options = resolveSigning({ keyPath: file, env: { SLIPWAY_HOME: home } });
    expect(options.mode === 'key' && options.key.name).toBe('release');
  });

  it('picks keyless with SLIPWAY_SIGNING=keyless and passes the token and service URLs on', () => {
    const options = resolveSigning({ env: { SLIPWAY_SIGNING: 'keyless', SIGSTORE_ID_TOKEN: 'tok', SLIPWAY_FULCIO_URL: 'http://127.0.0.1:1', SLIPWAY_REKOR_URL: 'http://127.0.0.1:2' } });
    expect(options).toEqual({ mode: 'keyless', identityToken: 'tok', fulcioURL: 'http://127.0.0.1:1', rekorURL: 'http://127.0.0.1:2' });
  });

  it('refuses --key together with keyless, and an unknown mode', () => {
    expect(() => resolveSigning({ keyless: true, keyPath: 'x.key', env: {} })).toThrow(/exclude each other/);
    expect(() => resolveSigning({ env: { SLIPWAY_SIGNING: 'gpg' } })).toThrow(/SLIPWAY_SIGNING is "gpg": use key \(the default\) or keyless/);
  });

  it('says how to get a key when there is none', () => {
    expect(() => resolveSigning({ env: { SLIPWAY_HOME: join(home, 'empty') } })).toThrow(/run `slipway init`/);
  });
});

describe('keyless signing', () => {
  // No network here: a loopback server stands in for Fulcio and refuses the token. What is proven is that
  // keyless mode goes to the configured Fulcio with the identity token; a real certificate needs the network.
  let server: Server;
  let url: string;
  const seen: { path: string; body: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ path: req.url ?? '', body });
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 400, message: 'token not accepted' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('asks the configured Fulcio for a certificate with the identity token, and reports its refusal as SIGNING_FAILED', async () => {
    const statement = buildProvenance(description(digestOf('e')));
    await expect(signStatement(statement, { mode: 'keyless', identityToken: 'header.eyJzdWIiOiJ4In0.sig', fulcioURL: url, rekorURL: url, timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'SIGNING_FAILED',
      message: expect.stringContaining('(keyless)'),
    });
    expect(seen[0]?.path).toBe('/api/v2/signingCert');
    expect(JSON.parse(seen[0]!.body).credentials.oidcIdentityToken).toBe('header.eyJzdWIiOiJ4In0.sig');
  });
});
