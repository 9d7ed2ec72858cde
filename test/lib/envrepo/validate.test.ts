import { generateKeyPairSync } from 'node:crypto';
import { formatProblem } from '../../../schemas/index.js';
import { loadDesiredState, openRepo, type EnvRepo } from '../../../lib/envrepo/index.js';
import { exampleRepo, type TestRepo } from './gitrepo.js';

describe('validating a whole commit of the environments repository', () => {
  let repo: TestRepo & { first: string };
  let env: EnvRepo;
  beforeEach(async () => {
    repo = exampleRepo();
    env = await openRepo({ repo: repo.dir });
  });
  afterEach(() => repo.cleanup());

  const problemsAt = async (commit: string): Promise<string[]> => {
    const result = await loadDesiredState({ repo: env, commit });
    return result.ok ? [] : result.problems.map(formatProblem);
  };

  it('finds nothing wrong with the example', async () => {
    expect(await problemsAt(repo.first)).toEqual([]);
  });

  describe('when two files of one environment declare the same service', () => {
    it('names the duplicate and the file that declares it first', async () => {
      const commit = repo.commit({ 'production/services/hello-copy.yaml': repo.read('production/services/hello.yaml') });
      expect(await problemsAt(commit)).toEqual([
        'production/services/hello-copy.yaml:4:9 metadata.name: must equal the file name "hello-copy", got "hello"; rename the file or fix the name',
        'production/services/hello-copy.yaml:4:9 metadata.name: duplicate service name "hello": production/services/hello.yaml declares it already; each service appears once per environment',
      ]);
    });

    it('also when the copy has problems of its own', async () => {
      const copy = repo.read('production/services/hello.yaml').replace('replicas: 2', 'replicas: lots');
      const commit = repo.commit({ 'production/services/hello-copy.yaml': copy });
      const problems = await problemsAt(commit);
      expect(problems).toContain('production/services/hello-copy.yaml:10:13 spec.replicas: must be a whole number, got "lots"');
      expect(problems).toContain(
        'production/services/hello-copy.yaml:4:9 metadata.name: duplicate service name "hello": production/services/hello.yaml declares it already; each service appears once per environment',
      );
    });

    it('also when the second file only differs by its .yml extension', async () => {
      const commit = repo.commit({ 'staging/services/hello.yml': repo.read('staging/services/hello.yaml') });
      expect(await problemsAt(commit)).toEqual([
        'staging/services/hello.yml:1:1 duplicate service "hello": staging/services/hello.yaml declares it already; delete one of the two files',
      ]);
    });
  });

  describe('when the promotion order names an environment the commit does not have', () => {
    it('points at the entry in slipway.yaml', async () => {
      const commit = repo.commit({ 'slipway.yaml': repo.read('slipway.yaml').replace('    - production\n', '    - production\n    - canary-eu\n') });
      expect(await problemsAt(commit)).toEqual([
        'slipway.yaml:12:7 spec.environments[2]: unknown environment "canary-eu": this commit has no canary-eu/environment.yaml; create it or remove "canary-eu" from the promotion order',
      ]);
    });
  });

  describe('when an environment directory is missing from the promotion order', () => {
    it('says to add it', async () => {
      const commit = repo.commit({ 'qa/environment.yaml': repo.read('staging/environment.yaml').replace('name: staging', 'name: qa') });
      expect(await problemsAt(commit)).toEqual([
        'slipway.yaml:9:3 spec.environments: environment directory qa/ is not in the promotion order; add "qa" to spec.environments where it belongs, or delete the directory',
      ]);
    });
  });

  describe('when an environment loses its environment.yaml', () => {
    it('reports the missing file and the promotion order entry that now points nowhere', async () => {
      const commit = repo.commit({ 'staging/environment.yaml': null });
      expect(await problemsAt(commit)).toEqual([
        'slipway.yaml:10:7 spec.environments[0]: unknown environment "staging": this commit has no staging/environment.yaml; create it or remove "staging" from the promotion order',
        'staging/environment.yaml:1:1 missing: staging/ holds services/ but no environment.yaml, so its services are not deployed anywhere; add staging/environment.yaml (and "staging" to the promotion order) or remove the directory',
      ]);
    });
  });

  describe('when environment.yaml names another environment', () => {
    it('asks for the directory name', async () => {
      const commit = repo.commit({ 'staging/environment.yaml': repo.read('staging/environment.yaml').replace('name: staging', 'name: stage') });
      expect(await problemsAt(commit)).toEqual([
        'staging/environment.yaml:4:9 metadata.name: must equal the directory name "staging", got "stage"; rename the file or fix the name',
      ]);
    });
  });

  describe('when the trust policy names a key the commit does not hold, or one that is not P-256', () => {
    it('reports each key at its entry', async () => {
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
      const slipway = repo
        .read('slipway.yaml')
        .replace('        publicKey: keys/slipway.pub\n', '        publicKey: keys/slipway.pub\n      - name: ops\n        publicKey: keys/ops.pub\n      - name: legacy\n        publicKey: keys/legacy.pub\n');
      const commit = repo.commit({ 'slipway.yaml': slipway, 'keys/legacy.pub': rsa.publicKey });
      expect(await problemsAt(commit)).toEqual([
        'slipway.yaml:22:20 spec.trust.keys[1].publicKey: public key file keys/ops.pub does not exist in this commit; commit the PEM public key there or fix the path',
        'slipway.yaml:24:20 spec.trust.keys[2].publicKey: public key file keys/legacy.pub is not usable: it must be an ECDSA P-256 key, got rsa',
      ]);
    });
  });

  describe('when slipway.yaml is missing', () => {
    it('says how to create one', async () => {
      const commit = repo.commit({ 'slipway.yaml': null });
      expect(await problemsAt(commit)).toEqual([
        'slipway.yaml:1:1 missing: an environments repository has slipway.yaml at its root (`slipway init <dir>` creates one)',
      ]);
    });
  });

  describe('when an environment directory holds a file it does not know', () => {
    it('names the file', async () => {
      const commit = repo.commit({ 'production/servces.yaml': 'x: 1\n' });
      expect(await problemsAt(commit)).toEqual([
        'production/servces.yaml:1:1 unknown file: an environment directory holds environment.yaml, freeze.yaml and services/<name>.yaml',
      ]);
    });
  });

  describe('when the root holds a YAML file it does not know', () => {
    it('names the file, with a hint when it is a misnamed known one', async () => {
      const commit = repo.commit({ 'quarantine.yml': 'apiVersion: slipway.dev/v1\n', 'services.yaml': 'x: 1\n' });
      expect(await problemsAt(commit)).toEqual([
        'quarantine.yml:1:1 unknown file: the root of an environments repository holds slipway.yaml and quarantine.yaml, environments are directories; rename it to quarantine.yaml',
        'services.yaml:1:1 unknown file: the root of an environments repository holds slipway.yaml and quarantine.yaml, environments are directories',
      ]);
    });
  });

  describe('when several files are broken in one commit', () => {
    it('reports every problem of every file at once, ordered by file and position, and yields no state', async () => {
      const commit = repo.commit({
        'production/services/hello.yaml': repo.read('production/services/hello.yaml').replace(/digest: sha256:[0-9a-f]+/, 'digest: latest'),
        'staging/services/hello.yaml': repo.read('staging/services/hello.yaml').replace('setWeight: 100', 'setWeight: 90'),
        'staging/services/broken.yaml': 'apiVersion: slipway.dev/v1\nkind: Service\nspec: [\n',
        'production/freeze.yaml': repo.read('production/freeze.yaml').replace('Europe/Berlin', 'Europe/Atlantis'),
        'slipway.yaml': repo.read('slipway.yaml').replace('    - staging\n', '    - staging\n    - qa\n'),
      });
      const result = await loadDesiredState({ repo: env, commit });
      expect(result.ok).toBe(false);
      expect('state' in result).toBe(false);
      const problems = result.ok ? [] : result.problems;
      expect(problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.rule}`)).toEqual([
        'production/freeze.yaml:12:17 time-zone',
        'production/services/hello.yaml:9:13 pattern',
        'slipway.yaml:11:7 promotion-order',
        'staging/services/broken.yaml:4:1 yaml',
        'staging/services/hello.yaml:23:22 canary-reaches-100',
      ]);
    });
  });
});
