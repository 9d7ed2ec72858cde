/**
 * Debian's prometheus is built without Kubernetes service discovery. This serves Prometheus' `http_sd` with the
 * pods of a namespace read from the real kube-apiserver, labelled exactly as `kubernetes_sd_configs` role `pod`
 * labels them (one target per container port, `__meta_kubernetes_pod_*`), so the relabelling in
 * deploy/prometheus/scrape-config.yaml runs unchanged in a real Prometheus.
 */
import { createServer, type Server } from 'node:http';
import type { KubeClient, KubeObject } from '../../../controller/targets/kubernetes/index.js';

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

interface PodView extends KubeObject {
  spec: { containers: { name: string; image: string; ports?: { name?: string; containerPort: number; protocol?: string }[] }[] };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export function podTargetGroups(pods: PodView[]): { targets: string[]; labels: Record<string, string> }[] {
  const groups: { targets: string[]; labels: Record<string, string> }[] = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip) continue;
    const base: Record<string, string> = {
      __meta_kubernetes_namespace: pod.metadata.namespace ?? '',
      __meta_kubernetes_pod_name: pod.metadata.name,
      __meta_kubernetes_pod_ip: ip,
      __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
      __meta_kubernetes_pod_ready: pod.status?.conditions?.find((c) => c.type === 'Ready')?.status.toLowerCase() ?? 'unknown',
    };
    for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) {
      base[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      base[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
    }
    for (const c of pod.spec.containers) {
      for (const p of c.ports ?? []) {
        groups.push({
          targets: [`${ip}:${p.containerPort}`],
          labels: {
            ...base,
            __meta_kubernetes_pod_container_name: c.name,
            __meta_kubernetes_pod_container_image: c.image,
            __meta_kubernetes_pod_container_port_name: p.name ?? '',
            __meta_kubernetes_pod_container_port_number: String(p.containerPort),
            __meta_kubernetes_pod_container_port_protocol: p.protocol ?? 'TCP',
          },
        });
      }
    }
  }
  return groups;
}

export async function startPodDiscovery(client: KubeClient, namespace: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    client
      .list<PodView>('v1', 'Pod', namespace)
      .then((pods) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(podTargetGroups(pods)));
      })
      .catch((err: unknown) => {
        res.writeHead(500).end(String(err));
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/pods`, close: () => new Promise((r) => server.close(() => r())) };
}
