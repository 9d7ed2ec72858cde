import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer, Controller, GitEnvironmentSource, freezeCalendar } from '../../../controller/index.js';
import { EnvRepo, digestOf } from '../../support/envrepo.js';
import { MemoryTarget } from '../../support/memory-target.js';
import { GitCliRevert } from '../../support/git-revert.js';
import { LocalGitProvider } from '../../../lib/gitprovider/index.js';
import type { Strategy } from '../../../schemas/index.js';

const TOKEN = 'test-token-1234';
const SECRET = 'webhook-secret';
const A = digestOf('a');
const B = digestOf('b');
const PAUSING: Strategy = { canary: { steps: [{ setWeight: 25 }, { pause: {} }, { setWeight: 100 }] } };

let repo: EnvRepo;
let stateDir: string;
let controller: Controller;
let api: ApiServer;
let url: string;

beforeAll(async () => {
  repo = EnvRepo.create({ services: { web: { digest: A, strategy: PAUSING } } });
  stateDir = mkdtempSync(join(tmpdir(), 'slipway-api-'));
  const target = new MemoryTarget();
  controller = new Controller({
    source: new GitEnvironmentSource({ location: repo.dir }),
    targetFor: () => target,
    verifier: { verify: async (r) => ({ ok: true, provenance: { digest: r.digest, builderId: 't', sourceRepo: 't', sourceRef: 't', sourceCommit: 't', keyName: 'ci' } }) },
    freeze: freezeCalendar({ activeWindows: () => [] }),
    analysis: { analyze: async (ctx) => ({ outcome: 'pass', summary: 'ok', slos: [], at: ctx.end.toISOString() }) },
    rollback: new GitCliRevert(repo.dir),
    proposals: new LocalGitProvider({
      repo: repo.dir,
      verify: async (r) => ({ ok: true, provenance: { digest: r.digest, builderId: 't', sourceRepo: 't', sourceRef: 't', sourceCommit: 't', keyName: 'ci' } }),
    }),
    stateDir,
  });
  await controller.start();
  api = new ApiServer({ controller, token: TOKEN, webhookSecret: SECRET });
  url = await api.listen();
});

afterAll(async () => {
  await controller.stop();
  await api.close();
  repo.cleanup();
  rmSync(stateDir, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}` };
const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('the controller API', () => {
  it('serves /healthz without a token', async () => {
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true });
  });

  describe('status endpoints', () => {
    it('answer 401 without the bearer token, and with a wrong one', async () => {
      expect((await fetch(`${url}/api/v1/environments`)).status).toBe(401);
      expect((await fetch(`${url}/api/v1/environments`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
    });

    it('list each service with desired and running digest, phase, step and weights', async () => {
      const res = await fetch(`${url}/api/v1/environments`, { headers: auth });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { environments: { environment: string; services: unknown[] }[] };
      expect(body.environments[0]).toMatchObject({
        environment: 'staging',
        lastAppliedCommit: repo.head(),
        services: [{ service: 'web', desiredDigest: A, runningDigest: A, phase: 'Completed', weights: { stable: 100, canary: 0 } }],
      });
    });

    it('show one service with its audit history', async () => {
      const res = await fetch(`${url}/api/v1/environments/staging/services/web`, { headers: auth });
      const body = (await res.json()) as { history: { action: string }[] };
      expect(body.history.map((e) => e.action)).toContain('Completed');
    });

    it('name the field of a bad path parameter, and 404 an unknown service', async () => {
      const bad = await fetch(`${url}/api/v1/environments/Staging!/services/web`, { headers: auth });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { code: 'BAD_NAME', field: 'env' } });
      const missing = await fetch(`${url}/api/v1/environments/staging/services/nope`, { headers: auth });
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: { field: 'svc' } });
    });

    it('expose the controller metrics in Prometheus text', async () => {
      const res = await fetch(`${url}/metrics`, { headers: auth });
      const text = await res.text();
      expect(text).toContain('slipway_reconcile_duration_seconds_bucket');
      expect(text).toContain('slipway_rollouts{environment="staging",phase="Completed"} 1');
    });
  });

  describe('the git webhook', () => {
    it('answers 401 when the signature is missing or made with another secret', async () => {
      const body = JSON.stringify({ ref: 'refs/heads/main' });
      expect((await fetch(`${url}/api/v1/webhooks/git`, { method: 'POST', body })).status).toBe(401);
      const wrong = await fetch(`${url}/api/v1/webhooks/git`, { method: 'POST', body, headers: { 'x-hub-signature-256': sign(body, 'other') } });
      expect(wrong.status).toBe(401);
    });

    it('syncs at once on a signed push, and a person promotes the paused canary through the API', async () => {
      repo.setService('staging', 'web', { digest: B, strategy: PAUSING });
      const head = repo.commit('web to B');
      const body = JSON.stringify({ ref: 'refs/heads/main', after: head });
      const res = await fetch(`${url}/api/v1/webhooks/git`, { method: 'POST', body, headers: { 'x-hub-signature-256': sign(body), 'x-github-event': 'push' } });
      expect(res.status).toBe(202);
      let status: { phase: string; weights: { canary: number } } | undefined;
      for (let i = 0; i < 200 && status?.phase !== 'Paused'; i++) {
        status = (await (await fetch(`${url}/api/v1/rollouts/staging/web`, { headers: auth })).json()) as typeof status;
        if (status?.phase !== 'Paused') await new Promise((r) => setTimeout(r, 25));
      }
      expect(status).toMatchObject({ phase: 'Paused', weights: { canary: 25 } });

      const unknown = await fetch(`${url}/api/v1/rollouts/staging/web/promote`, { method: 'POST', headers: auth, body: JSON.stringify({ actor: 'alice', force: true }) });
      expect(unknown.status).toBe(400);
      expect(await unknown.json()).toMatchObject({ error: { code: 'UNKNOWN_FIELD', field: 'force' } });
      const badJson = await fetch(`${url}/api/v1/rollouts/staging/web/promote`, { method: 'POST', headers: auth, body: '{"actor":' });
      expect(badJson.status).toBe(400);

      const promoted = await fetch(`${url}/api/v1/rollouts/staging/web/promote`, { method: 'POST', headers: auth, body: JSON.stringify({ actor: 'alice' }) });
      expect(promoted.status).toBe(200);
      expect(await promoted.json()).toMatchObject({ phase: 'Completed', runningDigest: B });
      const again = await fetch(`${url}/api/v1/rollouts/staging/web/promote`, { method: 'POST', headers: auth });
      expect(again.status).toBe(409);
    });

    it('proposes a digest through the git provider, naming the field of bad input', async () => {
      const missing = await fetch(`${url}/api/v1/deployments`, { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'staging', service: 'web' }) });
      expect(missing.status).toBe(400);
      expect(await missing.json()).toMatchObject({ error: { code: 'MISSING_FIELD', field: 'digest' } });
      const tag = await fetch(`${url}/api/v1/deployments`, { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'staging', service: 'web', digest: 'latest' }) });
      expect(await tag.json()).toMatchObject({ error: { field: 'digest' } });
      const C = digestOf('c');
      const res = await fetch(`${url}/api/v1/deployments`, { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'staging', service: 'web', digest: C }) });
      expect(res.status).toBe(201);
      const proposal = (await res.json()) as { id: string; digest: string; state: string; branch: string };
      expect(proposal).toMatchObject({ digest: C, state: 'open' });
      expect(repo.git('show', `${proposal.branch}:staging/services/web.yaml`)).toContain(C);
      expect(repo.git('show', 'main:staging/services/web.yaml')).not.toContain(C);
    });

    it('rolls back through the API with a revert commit on main, which the controller then applies', async () => {
      const bad = await fetch(`${url}/api/v1/deployments/staging/web/rollback`, { method: 'POST', headers: auth, body: JSON.stringify({ why: 'x' }) });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { field: 'why' } });
      const res = await fetch(`${url}/api/v1/deployments/staging/web/rollback`, { method: 'POST', headers: auth, body: JSON.stringify({ actor: 'bob', reason: 'customers report errors' }) });
      expect(res.status).toBe(201);
      const body = (await res.json()) as { commit: string; restoredDigest: string };
      expect(body.restoredDigest).toBe(A);
      expect(repo.head()).toBe(body.commit);
      expect(repo.git('log', '-1', '--format=%B')).toContain('Slipway-Rollback:');
      let status: { runningDigest?: string; phase?: string } = {};
      for (let i = 0; i < 200 && status.runningDigest !== A; i++) {
        await new Promise((r) => setTimeout(r, 25));
        status = (await (await fetch(`${url}/api/v1/rollouts/staging/web`, { headers: auth })).json()) as typeof status;
      }
      expect(status).toMatchObject({ runningDigest: A, phase: 'Completed' });
    });
  });
});
