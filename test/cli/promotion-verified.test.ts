/** `slipway promote`, `merge` and `log` as a user runs them, with images signed in an OCI layout and the real verifier. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageShelf, SHOP_SOURCE, type ImageShelf } from '../support/promotion-images.js';
import { makeEnvRepo, type TestRepo } from '../support/promotion-repo.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('slipway promote and merge with signed provenance', () => {
  let shelf: ImageShelf;
  let r: TestRepo;
  let home: string;
  let signed: string;
  let unsigned: string;

  function slipway(cwd: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [join(root, 'bin', 'slipway.js'), ...args], {
        cwd,
        env: { ...process.env, SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, SLIPWAY_ACTOR: 'Robin <robin@example.com>', NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'slipway-home-'));
    shelf = imageShelf();
    signed = await shelf.signed('v2');
    unsigned = await shelf.unsigned('v2-unsigned');
  });
  afterAll(() => {
    r?.cleanup();
    rmSync(home, { recursive: true, force: true });
    rmSync(shelf.repository.slice('oci:'.length), { recursive: true, force: true });
  });

  it('proposes the signed digest staging runs, merges it into production, and log shows who and from which source', async () => {
    r = makeEnvRepo({ publicKeyPem: shelf.publicKeyPem, images: { staging: { repository: shelf.repository, digest: signed } } });
    const promote = await slipway(r.work, 'promote', 'web', '--from', 'staging', '--to', 'production');
    expect(promote.stderr).toBe('');
    expect(promote.code).toBe(0);
    const id = /^proposed (\S+) /.exec(promote.stdout)?.[1];
    expect(id).toBe(`production/web-${signed.slice(7, 19)}`);
    const merge = await slipway(r.work, 'merge', id!);
    expect(merge.code).toBe(0);
    expect(merge.stdout).toMatch(new RegExp(`^merged ${id}: web ${signed} into production \\([0-9a-f]{12}\\)\\n$`));
    expect(r.git(['status', '--porcelain'])).toBe('');
    expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Commit,valueonly)'])).toBe(SHOP_SOURCE.commit);
    const log = await slipway(r.work, 'log', '--service', 'web', '--env', 'production', '--limit', '1');
    expect(log.stdout).toMatch(new RegExp(`^\\S+  production/web  promotion ${signed.slice(0, 19)}  by Robin; source ${SHOP_SOURCE.commit.slice(0, 12)}  \\([0-9a-f]{12}\\)\\n$`));
  });

  it('refuses to promote an unsigned digest with exit 1 and the refusal code', async () => {
    r.cleanup();
    r = makeEnvRepo({ publicKeyPem: shelf.publicKeyPem, images: { staging: { repository: shelf.repository, digest: unsigned } } });
    const out = await slipway(r.work, 'promote', 'web', '--from', 'staging', '--to', 'production');
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('does not verify (NO_ATTESTATION)');
    expect(r.git(['branch', '--list', 'slipway/*'])).toBe('');
    const audit = readFileSync(join(home, 'audit', 'promotion.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.map((e) => e.action)).toEqual(['proposed', 'merged', 'refused']);
    expect(audit[2]).toMatchObject({ code: 'NOT_VERIFIED', environment: 'production', service: 'web', digest: unsigned, actor: 'Robin' });
  });
});
