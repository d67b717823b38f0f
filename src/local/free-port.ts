import { createServer } from 'node:net';

/** A TCP port on loopback that was free a moment ago (the kernel picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Whether something already listens on `port` (loopback). */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(true));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

/**
 * Refuses to start on ports that are taken, saying what probably holds them and what to do,
 * instead of a listen error from deep inside an emulator.
 */
export async function assertPortsFree(ports: { port: number; what: string; flag: string }[], runningConfig?: string): Promise<void> {
  const taken = [];
  for (const p of ports) if (await portInUse(p.port)) taken.push(p);
  if (!taken.length) return;
  const list = taken.map((p) => `${p.port} (${p.what})`).join(', ');
  const flags = taken.map((p) => `${p.flag} PORT`).join(' ');
  throw new PortsInUseError(
    `port ${list} is already in use: is "npm run dev", "npm run dev:api" or "npm run stack" already running${runningConfig ? ` (its endpoints are in ${runningConfig})` : ''}? ` +
      `Use that one (run-job finds it through the config file), stop it, or start this one on other ports with ${flags}.`,
  );
}

export class PortsInUseError extends Error {
  override readonly name = 'PortsInUseError';
}

/** For the entry points: refuses taken ports with the message above and exit code 1. */
export async function exitIfPortsTaken(ports: { port: number; what: string; flag: string }[], runningConfig?: string): Promise<void> {
  try {
    await assertPortsFree(ports, runningConfig);
  } catch (e) {
    if (!(e instanceof PortsInUseError)) throw e;
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
}
