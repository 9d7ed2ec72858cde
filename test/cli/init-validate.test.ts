import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEnvironmentsRepo } from '../../lib/envrepo/index.js';
import { listFiles } from '../lib/envrepo/gitrepo.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'slipway.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('slipway init and slipway validate', () => {
  let work: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const slipway = (args: string[], cwd = work): Run => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env, encoding: 'utf8' }).trim();

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'slipway-cli-'));
    home = join(work, 'home');
    env = {
      PATH: process.env.PATH,
      HOME: work,
      SLIPWAY_HOME: home,
      SLIPWAY_FROM_SOURCE: '1',
      GIT_AUTHOR_NAME: 'Ada Ops',
      GIT_AUTHOR_EMAIL: 'ada@example.com',
      GIT_COMMITTER_NAME: 'Ada Ops',
      GIT_COMMITTER_EMAIL: 'ada@example.com',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
    };
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  describe('slipway init <dir>', () => {
    let init: Run;
    beforeAll(() => {
      init = slipway(['init', 'envs']);
    });

    it('creates a git repository with one clean commit of the example', () => {
      expect(init.stderr).toBe('');
      expect(init.status).toBe(0);
      const repo = join(work, 'envs');
      expect(git(repo, 'rev-list', '--count', 'HEAD')).toBe('1');
      expect(git(repo, 'branch', '--show-current')).toBe('main');
      expect(git(repo, 'status', '--porcelain')).toBe('');
      expect(git(repo, 'log', '-1', '--format=%an <%ae>')).toBe('Ada Ops <ada@example.com>');
      expect(git(repo, 'ls-files').split('\n')).toEqual(
        expect.arrayContaining(['slipway.yaml', 'keys/slipway.pub', 'staging/environment.yaml', 'staging/services/hello.yaml', 'production/environment.yaml', 'production/freeze.yaml', 'production/services/hello.yaml']),
      );
      execFileSync('git', ['fsck', '--strict'], { cwd: repo, env });
    });

    it('makes an ECDSA P-256 key pair under $SLIPWAY_HOME/keys, private key readable only by its owner', () => {
      const key = join(home, 'keys', 'slipway.key');
      expect(statSync(key).mode & 0o777).toBe(0o600);
      const text = execFileSync('openssl', ['pkey', '-in', key, '-noout', '-text'], { encoding: 'utf8' });
      expect(text).toMatch(/prime256v1|P-256/);
      expect(init.stdout).toContain(key);
    });

    it('commits the public key, names it in the trust policy, and never puts the private key in the repository', () => {
      const repo = join(work, 'envs');
      const publicFromPrivate = execFileSync('openssl', ['pkey', '-in', join(home, 'keys', 'slipway.key'), '-pubout'], { encoding: 'utf8' });
      expect(git(repo, 'show', 'HEAD:keys/slipway.pub')).toBe(publicFromPrivate.trim());
      expect(git(repo, 'show', 'HEAD:slipway.yaml')).toMatch(/- name: slipway\n\s+publicKey: keys\/slipway.pub/);
      for (const file of listFiles(repo)) expect(readFileSync(join(repo, file), 'utf8')).not.toContain('PRIVATE KEY');
    });

    it('names the repository after its directory and keeps the example comments', () => {
      const text = readFileSync(join(work, 'envs', 'slipway.yaml'), 'utf8');
      expect(text).toContain('  name: envs\n');
      expect(text).toContain('# Promotion order');
    });

    describe('when the directory is not empty', () => {
      it('refuses, exits 2 and leaves everything as it was', () => {
        const before = git(join(work, 'envs'), 'rev-parse', 'HEAD');
        const again = slipway(['init', 'envs']);
        expect(again.status).toBe(2);
        expect(again.stderr).toMatch(/already a git repository; slipway init never overwrites/);
        expect(again.stderr).not.toMatch(/\n\s+at /);
        expect(git(join(work, 'envs'), 'rev-parse', 'HEAD')).toBe(before);

        mkdirSync(join(work, 'notes'));
        writeFileSync(join(work, 'notes', 'todo.txt'), 'keep me');
        const intoNotes = slipway(['init', 'notes']);
        expect(intoNotes.status).toBe(2);
        expect(intoNotes.stderr).toMatch(/is not empty \(todo.txt\)/);
        expect(listFiles(join(work, 'notes'))).toEqual(['todo.txt']);
      });
    });

    describe('when a key already exists', () => {
      it('reuses it and never overwrites it', () => {
        const keyBefore = readFileSync(join(home, 'keys', 'slipway.key'), 'utf8');
        const second = slipway(['init', '--json', 'second']);
        expect(second.status).toBe(0);
        const result = JSON.parse(second.stdout);
        expect(result).toMatchObject({ ok: true, branch: 'main', key: { created: false, name: 'slipway' } });
        expect(readFileSync(join(home, 'keys', 'slipway.key'), 'utf8')).toBe(keyBefore);
        expect(readFileSync(join(work, 'second', 'keys', 'slipway.pub'), 'utf8')).toBe(readFileSync(join(work, 'envs', 'keys', 'slipway.pub'), 'utf8'));
      });
    });
  });

  describe('slipway validate', () => {
    let repo: string;
    let good: string;
    let bad: string;
    beforeAll(async () => {
      repo = join(work, 'validated');
      await initEnvironmentsRepo({ dir: repo, env });
      good = git(repo, 'rev-parse', 'HEAD');
      const hello = join(repo, 'production', 'services', 'hello.yaml');
      writeFileSync(hello, readFileSync(hello, 'utf8').replace(/digest: sha256:[0-9a-f]+/, 'digest: latest').replace('setWeight: 100', 'setWeight: 60'));
      git(repo, 'commit', '-q', '-am', 'break production');
      bad = git(repo, 'rev-parse', 'HEAD');
    });

    describe('on a clean commit', () => {
      it('exits 0 and says what it checked', () => {
        const run = slipway(['validate', '--ref', good], repo);
        expect(run.status).toBe(0);
        expect(run.stdout).toMatch(/^ok: .* is valid: 2 environments \(staging → production\), 2 service files/);
      });
    });

    describe('on a commit with problems', () => {
      it('exits 1 and lists every problem as file:line:col field.path: message', () => {
        const run = slipway(['validate'], repo);
        expect(run.status).toBe(1);
        expect(run.stdout.trim().split('\n')).toEqual([
          'production/services/hello.yaml:9:13 spec.image.digest: must be a sha256 digest (sha256:<64 hex>), got "latest"; a tag is never deployed, pin the image by its digest',
          expect.stringMatching(/^production\/services\/hello\.yaml:\d+:22 spec\.strategy\.canary\.steps\[4\]\.setWeight: canary steps end at weight 60 and never reach 100/),
        ]);
        expect(run.stderr).toMatch(/^2 problems in HEAD \(/);
      });

      it('gives the same problems as JSON with --json', () => {
        const run = slipway(['validate', '--json', '--repo', repo], work);
        expect(run.status).toBe(1);
        const out = JSON.parse(run.stdout);
        expect(out).toMatchObject({ ok: false, commit: bad });
        expect(out.problems.map((p: { rule: string; path: string }) => `${p.rule} ${p.path}`)).toEqual(['pattern spec.image.digest', 'canary-reaches-100 spec.strategy.canary.steps[4].setWeight']);
      });
    });

    describe('reading commits, not the working tree', () => {
      it('validates the commit named by --commit even when the files on disk are broken', () => {
        writeFileSync(join(repo, 'slipway.yaml'), 'not: [valid');
        try {
          const json = slipway(['validate', repo, '--commit', 'HEAD~1', '--json'], work);
          expect(json.status).toBe(0);
          expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, commit: good, environments: [{ name: 'staging', services: ['hello'] }, { name: 'production', services: ['hello'] }] });
        } finally {
          git(repo, 'checkout', '--', 'slipway.yaml');
        }
      });
    });

    describe('when it cannot read a repository', () => {
      it('exits 2 with a sentence, never a stack trace', () => {
        const run = slipway(['validate', '--repo', join(work, 'nowhere')]);
        expect(run.status).toBe(2);
        expect(run.stderr).toMatch(/does not exist; pass --repo <path\|url> of an environments repository/);
        expect(run.stderr).not.toMatch(/\n\s+at /);
        const unknownRef = slipway(['validate', '--ref', 'no-such-branch', '--json'], repo);
        expect(unknownRef.status).toBe(2);
        expect(JSON.parse(unknownRef.stdout)).toMatchObject({ ok: false, error: { code: 'REF_NOT_FOUND' } });
      });
    });
  });

  describe('slipway validate on a commit with every kind of bad input at once', () => {
    it('exits 1 and names each problem with file:line:col and its field path', async () => {
      const repo = join(work, 'broken');
      await initEnvironmentsRepo({ dir: repo, env });
      const edit = (path: string, fn: (text: string) => string) => writeFileSync(join(repo, path), fn(readFileSync(join(repo, path), 'utf8')));
      edit('production/services/hello.yaml', (t) => t.replace(/digest: sha256:[0-9a-f]+/, 'digest: latest').replace('  port: 8080', '  port: "8080"\n  colour: blue'));
      edit('staging/services/hello.yaml', (t) => t.replace('setWeight: 100', 'setWeight: 70'));
      writeFileSync(join(repo, 'staging', 'services', 'hello-2.yaml'), readFileSync(join(repo, 'staging', 'services', 'hello.yaml')));
      writeFileSync(join(repo, 'staging', 'services', 'api.yaml'), 'apiVersion: slipway.dev/v1\nkind: Service\nmetadata:\n  name: api\nspec: {image: [\n');
      edit('slipway.yaml', (t) => t.replace('    - production\n', '    - production\n    - europe\n'));
      git(repo, 'add', '-A');
      git(repo, 'commit', '-q', '-m', 'everything wrong');

      const run = slipway(['validate'], repo);
      expect(run.status).toBe(1);
      const lines = run.stdout.trim().split('\n');
      const expectations: [string, RegExp][] = [
        ['a digest that is a tag', /^production\/services\/hello\.yaml:9:13 spec\.image\.digest: must be a sha256 digest/],
        ['a wrong type', /^production\/services\/hello\.yaml:11:9 spec\.port: must be a whole number, got "8080"/],
        ['an unknown field', /^production\/services\/hello\.yaml:12:3 spec\.colour: unknown field "colour"/],
        ['an unknown environment in the promotion order', /^slipway\.yaml:12:7 spec\.environments\[2\]: unknown environment "europe"/],
        ['malformed YAML', /^staging\/services\/api\.yaml:\d+:\d+ malformed YAML: /],
        ['a duplicate service name', /^staging\/services\/hello-2\.yaml:4:9 metadata\.name: duplicate service name "hello"/],
        ['a canary that never reaches 100', /^staging\/services\/hello\.yaml:\d+:22 spec\.strategy\.canary\.steps\[4\]\.setWeight: canary steps end at weight 70/],
      ];
      for (const [what, pattern] of expectations) {
        expect({ what, found: lines.some((l) => pattern.test(l)) }).toEqual({ what, found: true });
      }
      expect(run.stdout + run.stderr).not.toMatch(/\n\s+at /);
    });
  });

  describe('slipway --help', () => {
    it('lists init and validate with their one-line summaries', () => {
      const run = slipway(['--help']);
      expect(run.status).toBe(0);
      const text = run.stdout.replace(/\s+/g, ' ');
      expect(text).toContain('init [options] <dir> create an environments repo and a signing key');
      expect(text).toContain('validate [options] [dir] validate a commit of the environments repo');
    });
  });
});
