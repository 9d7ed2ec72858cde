/**
 * A real kube-apiserver (built by build-apiserver.sh from Debian's kubernetes 1.20.2 source) with a real etcd
 * (Debian etcd-server), both on 127.0.0.1 free ports, TLS from a throwaway openssl CA, token-file auth.
 *
 * Use it through `describeWithKube(title, fn)`: when the binary is missing it prints why and FAILS under CI=true
 * (so CI never passes silently); outside CI it skips with the printed reason.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export const KUBE_CACHE = process.env.SLIPWAY_KUBE_CACHE ?? join(homedir(), '.cache', 'slipway', 'kube');
export const APISERVER_BINARY = join(KUBE_CACHE, 'bin', 'kube-apiserver');
const ETCD_BINARY = 'etcd';

/** For the beforeAll that starts apiserver + etcd: a loaded 2-core machine can take well over jest's default. */
export const KUBE_START_TIMEOUT_MS = 150_000;

export type Availability = { available: true } | { available: false; reason: string };

export function kubeAvailability(): Availability {
  if (!existsSync(APISERVER_BINARY)) {
    return {
      available: false,
      reason: `kube-apiserver not built at ${APISERVER_BINARY}: run test/support/setup.d/50-kube-apiserver.sh (needs root once for apt-get source)`,
    };
  }
  try {
    execFileSync(ETCD_BINARY, ['--version'], { stdio: 'ignore' });
  } catch {
    return { available: false, reason: 'etcd not found on PATH: apt-get install etcd-server' };
  }
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return { available: false, reason: 'openssl not found on PATH' };
  }
  return { available: true };
}

/**
 * `describe` that runs against a real apiserver, or says loudly why it cannot: a failing test under CI=true,
 * a skipped block with the reason printed elsewhere.
 */
export function describeWithKube(title: string, fn: () => void): void {
  const availability = kubeAvailability();
  if (availability.available) {
    describe(title, fn);
    return;
  }
  const reason = availability.reason;
  if (process.env.CI === 'true') {
    describe(title, () => {
      it(`cannot run: ${reason}`, () => {
        throw new Error(`real kube-apiserver unavailable under CI=true: ${reason}`);
      });
    });
    return;
  }
  console.warn(`SKIPPED "${title}": ${reason}`);
  describe.skip(title, fn);
}

export interface KubeApiserver {
  server: string;
  token: string;
  caPem: string;
  kubeconfigPath: string;
  kubeConfig(): KubeConfig;
  /** A kubeconfig authenticating as another token user (for RBAC checks). */
  kubeConfigFor(user: string): KubeConfig;
  dir: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function generateTls(dir: string): void {
  openssl(dir, ['genrsa', '-out', 'ca.key', '2048']);
  openssl(dir, ['req', '-x509', '-new', '-nodes', '-key', 'ca.key', '-subj', '/CN=slipway-test-ca', '-days', '2', '-out', 'ca.crt']);
  openssl(dir, ['genrsa', '-out', 'server.key', '2048']);
  openssl(dir, ['req', '-new', '-key', 'server.key', '-subj', '/CN=kube-apiserver', '-out', 'server.csr']);
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n',
  );
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.crt']);
  openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

/**
 * If the test process dies without its afterAll (killed by a timeout, SIGKILL), the child must not outlive it on a
 * shared machine: a detached watchdog stops it once the test process is gone, and ends by itself when the child does.
 */
function guardAgainstOrphans(child: ChildProcess): void {
  if (!child.pid) return;
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 2; done; kill ${child.pid} 2>/dev/null; true`;
  spawn('bash', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

function startProcess(cmd: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  guardAgainstOrphans(child);
  const chunks: Buffer[] = [];
  const keep = (b: Buffer) => {
    chunks.push(b);
    if (chunks.length > 400) chunks.splice(0, chunks.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', () => {
    try {
      writeFileSync(logFile, Buffer.concat(chunks));
    } catch {
      /* dir already removed */
    }
  });
  (child as ChildProcess & { logTail: () => string }).logTail = () => Buffer.concat(chunks).toString('utf8').slice(-3000);
  return child;
}

function logTail(child: ChildProcess): string {
  return (child as ChildProcess & { logTail?: () => string }).logTail?.() ?? '';
}

function httpsStatus(url: string, token: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function httpStatus(url: string): Promise<number> {
  return fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
    (r) => r.status,
    () => 0,
  );
}

async function waitFor(what: string, probe: () => Promise<boolean>, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${logTail(child)}`);
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${logTail(child)}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function kubeConfigFrom(server: string, ca: string, user: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: 'test', cluster: 'test', user: user, namespace: 'default' }],
    currentContext: 'test',
  });
  return kc;
}

/** Extra token users (name → groups) written into the token file, for RBAC tests. */
export interface StartOptions {
  users?: Record<string, string[]>;
}

export async function startKubeApiserver(options: StartOptions = {}): Promise<KubeApiserver> {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-kube-'));
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  const stop = async () => {
    if (apiserver) await stopChild(apiserver);
    if (etcd) await stopChild(etcd);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const clientPort = await freePort();
    const peerPort = await freePort();
    etcd = startProcess(
      ETCD_BINARY,
      [
        '--name', 'slipway-test',
        '--data-dir', join(dir, 'etcd'),
        '--listen-client-urls', `http://127.0.0.1:${clientPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `slipway-test=http://127.0.0.1:${peerPort}`,
        '--listen-metrics-urls', `http://127.0.0.1:${await freePort()}`,
        '--quota-backend-bytes', String(512 * 1024 * 1024),
        '--unsafe-no-fsync',
      ],
      join(dir, 'etcd.log'),
    );
    // The apiserver's keys and tokens are made while etcd boots.
    generateTls(dir);
    const token = `admin-${Math.random().toString(36).slice(2)}`;
    const tokens = new Map<string, string>();
    const lines = [`${token},admin,admin-uid,"system:masters"`];
    for (const [user, groups] of Object.entries(options.users ?? {})) {
      const t = `${user}-${Math.random().toString(36).slice(2)}`;
      tokens.set(user, t);
      lines.push(`${t},${user},${user}-uid${groups.length ? `,"${groups.join(',')}"` : ''}`);
    }
    writeFileSync(join(dir, 'tokens.csv'), lines.join('\n') + '\n');
    await waitFor('etcd', async () => (await httpStatus(`http://127.0.0.1:${clientPort}/health`)) === 200, etcd, 40000);

    const securePort = await freePort();
    apiserver = startProcess(
      APISERVER_BINARY,
      [
        `--etcd-servers=http://127.0.0.1:${clientPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${securePort}`,
        '--insecure-port=0',
        `--cert-dir=${join(dir, 'certs')}`,
        `--tls-cert-file=${join(dir, 'server.crt')}`,
        `--tls-private-key-file=${join(dir, 'server.key')}`,
        `--client-ca-file=${join(dir, 'ca.crt')}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--authorization-mode=RBAC',
        '--enable-priority-and-fairness=false',
        '--disable-admission-plugins=ServiceAccount',
        '--profiling=false',
        '--logtostderr=true',
        '--v=0',
      ],
      join(dir, 'apiserver.log'),
    );
    const server = `https://127.0.0.1:${securePort}`;
    const caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
    await waitFor('kube-apiserver', async () => (await httpsStatus(`${server}/readyz`, token, caPem)) === 200, apiserver, 90000);

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfigPath,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: test`,
        `  cluster: { server: "${server}", certificate-authority: "${join(dir, 'ca.crt')}" }`,
        'users:',
        `- name: admin`,
        `  user: { token: "${token}" }`,
        'contexts:',
        `- name: test`,
        `  context: { cluster: test, user: admin, namespace: default }`,
        'current-context: test',
        '',
      ].join('\n'),
    );
    return {
      server,
      token,
      caPem,
      kubeconfigPath,
      dir,
      kubeConfig: () => kubeConfigFrom(server, caPem, 'admin', token),
      kubeConfigFor: (user: string) => {
        const t = tokens.get(user);
        if (!t) throw new Error(`no token user ${user}; pass it in startKubeApiserver({ users })`);
        return kubeConfigFrom(server, caPem, user, t);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
