/** Installs the Gateway API HTTPRoute CRD (structural schema kept open) so a bare apiserver serves the kind. */
import type { KubeClient, KubeObject } from '../../../controller/targets/kubernetes/index.js';

function ref(extra: Record<string, unknown>) {
  return {
    type: 'object',
    required: ['name'],
    properties: { group: { type: 'string' }, kind: { type: 'string' }, name: { type: 'string' }, namespace: { type: 'string' }, ...extra },
  };
}

export async function installHttpRouteCrd(client: KubeClient): Promise<void> {
  await client.apply({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    // The upstream CRDs carry this annotation: *.k8s.io groups are protected.
    metadata: { name: 'httproutes.gateway.networking.k8s.io', annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes-sigs/gateway-api/pull/1538' } },
    spec: {
      group: 'gateway.networking.k8s.io',
      names: { plural: 'httproutes', singular: 'httproute', kind: 'HTTPRoute', listKind: 'HTTPRouteList' },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                // The fields Slipway sets, typed as upstream types them (apiserver 1.20's server-side apply drops
                // fields that only x-kubernetes-preserve-unknown-fields would keep).
                spec: {
                  type: 'object',
                  properties: {
                    parentRefs: { type: 'array', items: ref({ sectionName: { type: 'string' } }) },
                    hostnames: { type: 'array', items: { type: 'string' } },
                    rules: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          backendRefs: { type: 'array', items: ref({ port: { type: 'integer' }, weight: { type: 'integer' } }) },
                          matches: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
                        },
                      },
                    },
                  },
                },
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
          subresources: { status: {} },
        },
      ],
    },
  } as never);
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    const crd = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      name: 'httproutes.gateway.networking.k8s.io',
    });
    if (crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('HTTPRoute CRD not established within 20 s');
}
