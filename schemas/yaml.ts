/**
 * The `yaml` package, loaded from its browser build when that build is there.
 *
 * Why: yaml 2.x's Node build checks `process.env.LOG_TOKENS` once per token in `Parser#next` (and
 * `process.env.LOG_STREAM` once per document). `process.env` is not a plain object but a native
 * interceptor (~1 µs a read), and a 35-line service file has about 230 tokens: for the 3,000 files of
 * a 1,000-service repository that debug hook alone cost several hundred milliseconds of a load. The
 * browser build in the same package is the same code (same version, same classes; node identity uses
 * `Symbol.for`, so `isMap` and friends work across both builds) without those hooks and without the
 * Node-only bits we do not use (Buffer for `!!binary`, `process.emitWarning` for warnings). The
 * package's `exports` only hands it to browsers, so it is imported by file path; if that fails for any
 * reason (a trimmed install, a bundler) the Node build is used and only speed differs.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as nodeBuild from 'yaml';

type Yaml = typeof nodeBuild;

async function loadFastestBuild(): Promise<{ yaml: Yaml; build: 'browser' | 'node' }> {
  try {
    const packageJson = createRequire(import.meta.url).resolve('yaml/package.json');
    const browser = (await import(pathToFileURL(join(dirname(packageJson), 'browser', 'dist', 'index.js')).href)) as Yaml;
    const complete = [browser.parse, browser.parseDocument, browser.LineCounter, browser.isMap, browser.isPair, browser.isScalar, browser.isSeq, browser.Parser, browser.Schema, browser.CST?.resolveAsScalar].every(
      (f) => typeof f === 'function',
    );
    return complete ? { yaml: browser, build: 'browser' } : { yaml: nodeBuild, build: 'node' };
  } catch {
    return { yaml: nodeBuild, build: 'node' };
  }
}

const loaded = await loadFastestBuild();

/** Which build parses (for the benchmark report and a test). */
export const yamlBuild: 'browser' | 'node' = loaded.build;

export const { parse, parseDocument, LineCounter, isMap, isPair, isScalar, isSeq, Parser, Schema, CST } = loaded.yaml;
export type LineCounter = nodeBuild.LineCounter;
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace CST {
  export type Token = nodeBuild.CST.Token;
  export type SourceToken = nodeBuild.CST.SourceToken;
  export type Document = nodeBuild.CST.Document;
  export type BlockMap = nodeBuild.CST.BlockMap;
  export type BlockSequence = nodeBuild.CST.BlockSequence;
  export type FlowCollection = nodeBuild.CST.FlowCollection;
}
export type { Document, Node } from 'yaml';
