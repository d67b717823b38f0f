/**
 * A TCP proxy in front of the test sshd that can cut every connection after a given number
 * of server-to-client bytes (a deterministic "network drop"), or refuse connections (host down).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class CutProxy {
  /** Server-to-client bytes forwarded since the last cutAfter()/reset (all connections). */
  bytesDown = 0;
  /** Connections accepted and forwarded. */
  connections = 0;
  /** Connections refused while `refuse` was set. */
  refused = 0;
  /** When true, new connections are closed at once (the host looks down). */
  refuse = false;
  /** Connections cut by the limit or cutNow(). */
  cuts = 0;
  private limit: number | null = null;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<CutProxy> {
    let self!: CutProxy;
    const server = createServer((client) => self.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('proxy: no port');
    self = new CutProxy(server, addr.port);
    return self;
  }

  private accept(client: Socket, port: number, host: string): void {
    if (this.refuse) {
      this.refused++;
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = connect({ host, port });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', kill).on('close', kill);
    upstream.on('error', kill).on('close', kill);
    client.on('data', (d: Buffer) => {
      if (!upstream.write(d)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (d: Buffer) => {
      if (this.limit !== null && this.bytesDown + d.length > this.limit) {
        const n = this.limit - this.bytesDown;
        if (n > 0) client.write(d.subarray(0, n));
        this.bytesDown = this.limit;
        this.cuts++;
        kill();
        return;
      }
      this.bytesDown += d.length;
      if (!client.write(d)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
  }

  /** Cuts every connection once `bytes` more server-to-client bytes have flowed. */
  cutAfter(bytes: number): void {
    this.bytesDown = 0;
    this.limit = bytes;
  }

  /** No more cutting. */
  reset(): void {
    this.limit = null;
    this.bytesDown = 0;
  }

  /** Cuts every open connection now. */
  cutNow(): void {
    for (const [a, b] of [...this.pairs]) {
      this.cuts++;
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cutNow();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
