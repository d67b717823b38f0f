import { LocalDataSource } from '../lib/source/local-source.ts';
import type { DataSource } from '../lib/source/data-source.ts';
import { SourceUnavailableError } from '../lib/source/data-source.ts';
import { SshDataSource } from '../lib/source/ssh-source.ts';
import type { AgentConfig } from './config.ts';
import type { DataSources } from './types.ts';

/**
 * Picks the data source for a target's host: local paths for the configured local hosts, an
 * SSH connection (one per host, shared by its scans and streams) for the configured SSH hosts.
 */
export function createDataSources(config: Pick<AgentConfig, 'localHosts' | 'sshHosts'>): DataSources {
  const sources = new Map<string, DataSource>();
  return {
    for(host) {
      let s = sources.get(host);
      if (s) return s;
      const ssh = config.sshHosts[host];
      if (config.localHosts.includes(host)) {
        s = new LocalDataSource(host);
      } else if (ssh) {
        s = new SshDataSource({
          host: ssh.address ?? host,
          hostLabel: host,
          port: ssh.port,
          username: ssh.username,
          privateKey: ssh.privateKey,
          knownHosts: ssh.knownHosts,
          maxConcurrentChannels: ssh.maxConcurrentChannels,
          keepaliveInterval: ssh.keepaliveInterval,
          ...(ssh.passphrase ? { passphrase: ssh.passphrase } : {}),
          ...(ssh.keepaliveCountMax ? { keepaliveCountMax: ssh.keepaliveCountMax } : {}),
          ...(ssh.readyTimeout ? { readyTimeout: ssh.readyTimeout } : {}),
          ...(ssh.reconnect ? { reconnect: ssh.reconnect } : {}),
          ...(ssh.readAheadBytes ? { readAheadBytes: ssh.readAheadBytes } : {}),
        });
      } else {
        const known = [...config.localHosts, ...Object.keys(config.sshHosts)];
        throw new SourceUnavailableError(
          `no data source for host "${host}": the agent knows ${known.join(', ') || 'no hosts'}; add it to localHosts or sshHosts in the agent config.`,
        );
      }
      sources.set(host, s);
      return s;
    },
    async closeAll() {
      await Promise.allSettled([...sources.values()].map((s) => s.close()));
      sources.clear();
    },
  };
}
