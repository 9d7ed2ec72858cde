/** Real images in an OCI layout, signed with a real P-256 key the way `slipway build` signs them (or left unsigned). */
import { mkdtempSync } from 'node:fs';
import { stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProvenance } from '../../builder/provenance/index.js';
import { signAndAttach } from '../../builder/sign/index.js';
import { openImageStore, pushImage } from '../../lib/oci/index.js';
import { DEFAULT_BUILDER_ID } from '../../lib/provenance/index.js';
import { description, makeKey } from '../lib/provenance/fixtures.js';
import { smallImage } from './images.js';

export const SHOP_SOURCE = { repo: 'https://git.example/shop/web', ref: 'refs/heads/main', commit: '0123456789abcdef0123456789abcdef01234567' };

export interface ImageShelf {
  repository: string;
  publicKeyPem: string;
  signed(body: string): Promise<string>;
  unsigned(body: string): Promise<string>;
}

export function imageShelf(dir = mkdtempSync(join(tmpdir(), 'slipway-images-'))): ImageShelf {
  const key = makeKey('builder');
  const repository = `oci:${dir}`;
  const store = openImageStore(repository);
  return {
    repository,
    publicKeyPem: key.publicKeyPem,
    async unsigned(body) {
      return pushImage(store, await smallImage([{ name: 'app.txt', body }]));
    },
    async signed(body) {
      const digest = await pushImage(store, await smallImage([{ name: 'app.txt', body }]));
      const statement = buildProvenance(description(digest, { image: { name: repository, digest }, source: SHOP_SOURCE }));
      await signAndAttach({ store, digest, key, statement });
      return digest;
    },
  };
}

/** Writes the shelf's public key and a slipway.yaml for `environments` that trusts it (and builds of git.example/shop). */
export function writeTrustingSlipwayFile(repo: { write(path: string, content: string): void }, shelf: ImageShelf, environments: string[]): void {
  repo.write('keys/ci.pub', shelf.publicKeyPem);
  repo.write(
    'slipway.yaml',
    stringify({
      apiVersion: 'slipway.dev/v1',
      kind: 'Slipway',
      metadata: { name: 'shop' },
      spec: { environments, trust: { keys: [{ name: 'ci', publicKey: 'keys/ci.pub' }], builders: [DEFAULT_BUILDER_ID], sources: [{ repo: 'https://git.example/shop/*' }] } },
    }),
  );
}
