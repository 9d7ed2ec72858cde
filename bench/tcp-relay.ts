/** A raw TCP relay on 127.0.0.1 (bytes copied between sockets, no HTTP): the floor for any proxy process in Node. */
import { connect, createServer, type Server } from 'node:net';

/** Starts a relay to `127.0.0.1:<port>`; resolves with the server and the URL it answers on. */
export async function startTcpRelay(port: number): Promise<{ relay: Server; url: string }> {
  const relay = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: '127.0.0.1', port, noDelay: true });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', () => resolve()));
  const address = relay.address();
  return { relay, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/` };
}
