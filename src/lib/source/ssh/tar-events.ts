/** A pull interface over the push tar parser, for the remote tar stream. */
import { TarParser, type TarMember } from '../../tar/parse.ts';

// ---------------------------------------------------------------------------------------------
// Tar stream -> SourceEntry

type TarEvent = { k: 'member'; m: TarMember } | { k: 'data'; b: Buffer } | { k: 'end' } | { k: 'problem'; offset: number; reason: string } | { k: 'eoa' };

/** Pull interface over the push TarParser: parses one input chunk at a time, on demand. */
export class TarEvents {
  private evs: TarEvent[] = [];
  private i = 0;
  private eof = false;
  private readonly parser: TarParser;
  constructor(private readonly read: () => Promise<Buffer | null>) {
    this.parser = new TarParser({
      member: (m) => this.evs.push({ k: 'member', m }),
      data: (b) => this.evs.push({ k: 'data', b }),
      memberEnd: () => this.evs.push({ k: 'end' }),
      problem: (offset, reason) => this.evs.push({ k: 'problem', offset, reason }),
      end: () => this.evs.push({ k: 'eoa' }),
    });
  }
  async next(): Promise<TarEvent | null> {
    while (this.i >= this.evs.length) {
      if (this.eof) return null;
      this.evs = [];
      this.i = 0;
      const chunk = await this.read();
      if (chunk === null) {
        this.eof = true;
        return null;
      }
      this.parser.push(chunk);
    }
    return this.evs[this.i++]!;
  }
}

/** tar messages that mean "an entry changed or vanished since the scan" (the writer reports those). */
export const TAR_CHANGE_LINE =
  /(: Cannot (stat|open|readlink): (No such file or directory|Not a directory)|: [Ff]ile (changed as we read it|removed before we read it)|: File shrank by \d+ bytes; padding with zeros|Exiting with failure status due to previous errors)$/;
