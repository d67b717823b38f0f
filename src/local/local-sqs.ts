/**
 * Start/stop an in-process SQS emulator (the `local-aws-sqs` npm package, JSON and Query
 * protocols) for local runs and tests.
 *
 * The package is patched (patches/local-aws-sqs+2.0.2.patch, applied by `patch-package` on
 * postinstall) so that long polls, visibility changes, queue counters and message sizes behave
 * like real SQS; test/conformance/local-sqs.test.ts pins the behaviour the project relies on.
 */
import { createServer, type Server } from 'node:http';
import { createRequestHandler } from 'local-aws-sqs';
import { freePort } from './free-port.ts';
import { errorMessage } from '../lib/errors.ts';

export interface LocalSqs {
  /** e.g. http://127.0.0.1:41234 — pass as `endpoint` to SQSClient. */
  endpoint: string;
  port: number;
  /** Closes the server, drops every open connection (including pending long polls) and all queues. */
  stop(): Promise<void>;
}

export interface StartLocalSqsOptions {
  /** TCP port; omitted => a random free port. */
  port?: number;
  /** Bind address and endpoint host; default 127.0.0.1. */
  host?: string;
}

/** How often to retry when a port picked by freePort() was taken before we could bind it. */
const PORT_ATTEMPTS = 5;

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

export async function startLocalSqs(opts: { port?: number; host?: string } = {}): Promise<LocalSqs> {
  const host = opts.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort(host));
    const { service, requestHandler } = createRequestHandler({
      port,
      // Used only to build QueueUrls, so it must be what clients can reach.
      hostname: urlHost,
      // AWS makes you wait 60 s before re-creating a deleted queue name; tests create and
      // delete uniquely named queues, and a restarted stack must be able to re-create its own.
      emulateQueueCreationLifecycle: false,
      emulateLazyQueues: false,
      validateDlqDestination: true,
    });
    // createSqsServer() of the package never settles when listen() fails, so build the server here.
    const server = createServer((req, res) => {
      requestHandler(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.statusCode = 500;
        res.end(String(err));
      });
    });
    try {
      await listen(server, port, host);
    } catch (err) {
      server.close();
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (inUse && opts.port === undefined && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`local SQS could not listen on ${urlHost}:${port}: ${errorMessage(err)}`, { cause: err });
    }
    service.PORT = port;

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() only stops accepting; pending long polls (up to 20 s) would hold it open.
        server.closeAllConnections();
        // Drop queues and their timers. Long polls still pending inside the emulator find no
        // messages and end at their deadline on a socket that is already gone.
        service.resetAll();
      });
      return stopping;
    };

    return { endpoint: `http://${urlHost}:${port}`, port, stop };
  }
}
