import { runGates, type GateInput } from '../../../controller/gates/index.js';
import { freezeWindows } from '../../../controller/wiring.js';
import type { FreezeConfig, ServiceConfig } from '../../../schemas/index.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const service = (digest: string): ServiceConfig => ({ apiVersion: 'slipway.dev/v1', kind: 'Service', metadata: { name: 'web' }, spec: { image: { repository: 'oci:/x', digest }, port: 8080 } });
const freeze: FreezeConfig = {
  apiVersion: 'slipway.dev/v1',
  kind: 'FreezeWindows',
  spec: { windows: [{ name: 'weekend', reason: 'no deploys on weekends', cron: '0 18 * * 5', duration: '2d', timeZone: 'Europe/Berlin' }] },
};

function input(over: Partial<GateInput> = {}): GateInput {
  return {
    environment: 'production',
    service: 'web',
    commit: 'c'.repeat(40),
    config: service(B),
    currentDigest: A,
    rollback: false,
    quarantine: [],
    policy: { keys: [], builders: [], sources: [] },
    publicKeys: {},
    freeze,
    now: new Date('2026-11-24T10:00:00Z'),
    ...over,
  };
}

const verifier = (ok: boolean) => ({
  asked: [] as string[],
  async verify(r: { digest: string }) {
    this.asked.push(r.digest);
    return ok
      ? { ok: true as const, provenance: { digest: r.digest, builderId: 'b', sourceRepo: 'r', sourceRef: 'main', sourceCommit: 'c', keyName: 'k' } }
      : { ok: false as const, code: 'BAD_SIGNATURE' as const, message: 'signature does not verify' };
  },
});

describe('gates', () => {
  it('let a verified digest through outside freeze windows', async () => {
    expect(await runGates(input(), { verifier: verifier(true), freeze: freezeWindows })).toMatchObject({ status: 'pass' });
  });

  it('refuse a digest whose provenance does not verify, with its code', async () => {
    expect(await runGates(input(), { verifier: verifier(false), freeze: freezeWindows })).toMatchObject({ status: 'refused', code: 'BAD_SIGNATURE', digest: B });
  });

  it('do not verify again a digest that is already running (a config-only change)', async () => {
    const v = verifier(true);
    await runGates(input({ config: service(A) }), { verifier: v, freeze: freezeWindows });
    expect(v.asked).toEqual([]);
  });

  it('refuse a quarantined digest before asking for provenance', async () => {
    const v = verifier(true);
    const out = await runGates(input({ quarantine: [{ digest: B, reason: 'breached', environment: 'production' }] }), { verifier: v, freeze: freezeWindows });
    expect(out).toMatchObject({ status: 'refused', code: 'QUARANTINED' });
    expect(v.asked).toEqual([]);
  });

  describe('in a recurring freeze window (lib/freeze, Europe/Berlin, across the DST-free weekend)', () => {
    const saturday = new Date('2026-11-28T12:00:00Z');

    it('hold a change until the window ends: Sunday 18:00 Berlin time', async () => {
      const out = await runGates(input({ now: saturday }), { verifier: verifier(true), freeze: freezeWindows });
      expect(out).toMatchObject({ status: 'waiting', code: 'FROZEN', until: '2026-11-29T17:00:00.000Z' });
    });

    it('let a rollback through', async () => {
      expect(await runGates(input({ now: saturday, rollback: true }), { verifier: verifier(true), freeze: freezeWindows })).toMatchObject({ status: 'pass' });
    });

    it('let a change merged with a recorded override through, naming the window it overrode', async () => {
      const out = await runGates(input({ now: saturday, freezeOverride: 'hotfix for incident 42' }), { verifier: verifier(true), freeze: freezeWindows });
      expect(out).toMatchObject({ status: 'pass', freezeOverridden: { reason: 'hotfix for incident 42', until: '2026-11-29T17:00:00.000Z' } });
    });

    it('still refuse an overridden change that fails verification', async () => {
      const out = await runGates(input({ now: saturday, freezeOverride: 'hotfix' }), { verifier: verifier(false), freeze: freezeWindows });
      expect(out).toMatchObject({ status: 'refused' });
    });
  });
});
