/** What orchestration reads from main of the environments repository, behind a port so the GitHub provider can answer too. */
import { readDigest, readRepository } from '../bump/index.js';
import { readPromotionState, readSlipwayConfig, Repo, servicePath, type PromotionState } from '../gitprovider/index.js';

export interface ServiceImage {
  repository: string;
  digest: string;
  /** The commit of main the file was read at. */
  commit: string;
}

export interface DesiredStateReader {
  /** Environment names in promotion order (slipway.yaml at main). */
  environments(): Promise<string[]>;
  /** Settings, freeze, quarantine and trust policy of `environment` at main. */
  state(environment: string): Promise<PromotionState>;
  /** The image a service runs in `environment` according to main, undefined when it has no service file. */
  image(environment: string, service: string): Promise<ServiceImage | undefined>;
}

export function repoStateReader(repo: Repo, mainBranch = 'main'): DesiredStateReader {
  const main = () => repo.mustResolve(`refs/heads/${mainBranch}`, 'the main branch');
  return {
    async environments() {
      return (await readSlipwayConfig(repo, await main())).spec.environments;
    },
    async state(environment) {
      return readPromotionState(repo, await main(), environment);
    },
    async image(environment, service) {
      const commit = await main();
      const path = servicePath(environment, service);
      const text = await repo.readFile(commit, path);
      if (text === undefined) return undefined;
      const digest = readDigest(text, path);
      const repository = readRepository(text, path);
      if (!digest || !repository) return undefined;
      return { repository, digest, commit };
    },
  };
}
