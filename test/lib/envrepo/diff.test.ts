import { affectedEnvironments, changedServicesByEnvironment, diffCommits, openRepo, type DiffStats, type EnvRepo } from '../../../lib/envrepo/index.js';
import { exampleRepo, type TestRepo } from './gitrepo.js';

const serviceFile = (name: string, replicas = 1) => `apiVersion: slipway.dev/v1
kind: Service
metadata:
  name: ${name}
spec:
  image:
    repository: 127.0.0.1:5000/${name}
    digest: sha256:${'a'.repeat(64)}
  replicas: ${replicas}
  port: 8080
`;

describe('diffing two commits of the environments repository', () => {
  let repo: TestRepo & { first: string };
  let env: EnvRepo;
  beforeEach(async () => {
    repo = exampleRepo();
    env = await openRepo({ repo: repo.dir });
  });
  afterEach(() => repo.cleanup());

  describe('when one service of one environment changes', () => {
    it('names that service, its environment and file, and nothing else', async () => {
      const hello = repo.read('production/services/hello.yaml');
      const second = repo.commit({ 'production/services/hello.yaml': hello.replace('replicas: 2', 'replicas: 4') });
      const diff = await diffCommits({ repo: env, from: repo.first, to: second });
      expect(diff).toEqual({
        from: repo.first,
        to: second,
        services: [{ environment: 'production', service: 'hello', kind: 'modified', file: 'production/services/hello.yaml' }],
        otherFiles: [],
      });
      expect(affectedEnvironments(diff, ['staging', 'production'])).toEqual(['production']);
    });
  });

  describe('when services are added and removed across environments', () => {
    it('reports each with its kind, grouped per environment', async () => {
      const second = repo.commit({
        'staging/services/api.yaml': serviceFile('api'),
        'staging/services/worker.yaml': serviceFile('worker'),
        'production/services/hello.yaml': null,
      });
      const diff = await diffCommits({ repo: env, from: repo.first, to: second });
      const grouped = changedServicesByEnvironment(diff);
      expect([...grouped.keys()]).toEqual(['production', 'staging']);
      expect(grouped.get('staging')!.map((c) => [c.service, c.kind])).toEqual([
        ['api', 'added'],
        ['worker', 'added'],
      ]);
      expect(grouped.get('production')!.map((c) => [c.service, c.kind])).toEqual([['hello', 'removed']]);
    });
  });

  describe('when a file outside services/ changes', () => {
    it('lists it as another file and marks the environments it can affect', async () => {
      const second = repo.commit({ 'production/freeze.yaml': null });
      const diff = await diffCommits({ repo: env, from: repo.first, to: second });
      expect(diff.services).toEqual([]);
      expect(diff.otherFiles).toEqual(['production/freeze.yaml']);
      expect(affectedEnvironments(diff, ['staging', 'production'])).toEqual(['production']);

      const third = repo.commit({ 'slipway.yaml': `${repo.read('slipway.yaml')}\n# touched\n` });
      const repoWide = await diffCommits({ repo: env, from: second, to: third });
      expect(repoWide.otherFiles).toEqual(['slipway.yaml']);
      expect(affectedEnvironments(repoWide, ['staging', 'production'])).toEqual(['staging', 'production']);
    });
  });

  describe('when the two commits have the same tree', () => {
    it('reads no tree beyond the two roots and reports no change', async () => {
      const empty = repo.commit({}, 'empty commit');
      const stats: DiffStats = { treesRead: 0 };
      const diff = await diffCommits({ repo: env, from: repo.first, to: empty, stats });
      expect(diff.services).toEqual([]);
      expect(diff.otherFiles).toEqual([]);
      expect(stats.treesRead).toBe(0);
    });
  });

  describe('with no previous commit', () => {
    it('reports every service as added', async () => {
      const diff = await diffCommits({ repo: env, from: undefined, to: repo.first });
      expect(diff.services.map((c) => `${c.kind} ${c.file}`)).toEqual(['added production/services/hello.yaml', 'added staging/services/hello.yaml']);
    });
  });

  describe('cost', () => {
    it('opens only the trees on the path of a change, however many services there are', async () => {
      const many: Record<string, string> = {};
      for (let i = 0; i < 300; i++) many[`staging/services/svc-${i}.yaml`] = serviceFile(`svc-${i}`);
      for (let i = 0; i < 300; i++) many[`production/services/svc-${i}.yaml`] = serviceFile(`svc-${i}`);
      const base = repo.commit(many);
      const next = repo.commit({ 'production/services/svc-7.yaml': serviceFile('svc-7', 3) });
      const stats: DiffStats = { treesRead: 0 };
      const diff = await diffCommits({ repo: env, from: base, to: next, stats });
      expect(diff.services.map((c) => c.file)).toEqual(['production/services/svc-7.yaml']);
      // root, production/, production/services/ on each side
      expect(stats.treesRead).toBe(6);
    });
  });
});
