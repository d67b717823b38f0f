import { LocalDataSource } from '../lib/source/local-source.ts';
import type { DataSource } from '../lib/source/data-source.ts';
import { SourceUnavailableError } from '../lib/source/data-source.ts';
import type { DataSources } from './types.ts';

/** Picks the data source for a target's host: local paths for the configured local hosts. */
export function createDataSources(localHosts: string[]): DataSources {
  const sources = new Map<string, DataSource>();
  return {
    for(host) {
      let s = sources.get(host);
      if (!s) {
        if (!localHosts.includes(host)) {
          throw new SourceUnavailableError(`no data source for host "${host}": the agent reads only ${localHosts.join(', ')} locally; add the host to localHosts or configure SSH access.`);
        }
        s = new LocalDataSource(host);
        sources.set(host, s);
      }
      return s;
    },
    async closeAll() {
      await Promise.allSettled([...sources.values()].map((s) => s.close()));
      sources.clear();
    },
  };
}
