/** Worker thread entry (workers.ts starts it): fills and compresses the blocks it is sent, one at a time. */
import { parentPort } from 'node:worker_threads';
import { isSlipwayError } from '../../lib/errors.js';
import { processBlock, transferable, warmUpBlocks } from './block.js';
import type { BlockJob } from './plan.js';

const port = parentPort;
if (!port) throw new Error('builder/image/block-worker runs as a worker thread (builder/image/workers.ts)');
warmUpBlocks();
port.postMessage({ ready: true }); // until then the pool sends it nothing: the calling thread takes the first blocks
port.on('message', ({ id, job, raw: rawInto, compressed: compressedInto }: { id: number; job: BlockJob; raw?: ArrayBuffer; compressed?: ArrayBuffer }) => {
  try {
    const { raw, compressed, freshBuffers } = processBlock(job, rawInto, compressedInto);
    const rawBytes = transferable(raw);
    const compressedBytes = transferable(compressed);
    port.postMessage({ id, raw: rawBytes, compressed: compressedBytes, freshBuffers }, [rawBytes.buffer as ArrayBuffer, compressedBytes.buffer as ArrayBuffer]);
  } catch (err) {
    const error = isSlipwayError(err)
      ? { code: err.code, message: err.message, kind: err.kind, data: err.data }
      : { message: err instanceof Error ? err.message : String(err) };
    port.postMessage({ id, error });
  }
});
