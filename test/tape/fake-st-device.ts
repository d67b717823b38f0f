/**
 * A recording fake of the st seam (StDeviceIo): a small simulation of a Linux st device plus
 * mt-st, so StTapeDrive can be driven end to end (even by the self-test) while the test
 * asserts the exact operations issued. Failures are injected per operation.
 *
 * Block modes, as st has them: `mt setblk N` (N > 0) is fixed-block mode, `setblk 0`
 * variable-block mode. Each block on the fake tape has its own size (`files[f][b].length`).
 * A read(2) returns one block; a block larger than the read buffer fails with ENOMEM (in
 * variable-block mode that block is skipped, as st does); in fixed-block mode a read whose
 * length is not a multiple of the block size is EINVAL and a block of another size is EIO
 * ("Incorrect block size"). Like st, the device opens once at a time: open(2) or an mt
 * command while a descriptor is open fails with EBUSY.
 */
import type { StDeviceIo, StRunResult } from '../../src/lib/tape/st-device.ts';
import { O_RDONLY, O_WRONLY } from '../../src/lib/tape/st-device.ts';

export type FakeOp =
  | { op: 'run'; cmd: string; args: string[] }
  | { op: 'open'; path: string; flags: number }
  | { op: 'read'; fd: number; len: number }
  | { op: 'write'; fd: number; len: number; buf: Buffer }
  | { op: 'close'; fd: number };

type Injection = { op: 'open' | 'read' | 'write' | 'close'; skip: number; errno?: string; returns?: number };

export function errnoError(code: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: simulated`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

const BIT_ORDER: [string, number][] = [
  ['EOF', 0x80000000],
  ['BOT', 0x40000000],
  ['EOT', 0x20000000],
  ['SM', 0x10000000],
  ['EOD', 0x08000000],
  ['WR_PROT', 0x04000000],
  ['ONLINE', 0x01000000],
  ['DR_OPEN', 0x00040000],
  ['IM_REP_EN', 0x00010000],
];

export class FakeStDevice implements StDeviceIo {
  readonly ops: FakeOp[] = [];
  loaded = true;
  writeProtected = false;
  /** st's current block size (0 = variable). */
  stBlockSize = 0;
  /** Tape content: files of blocks. */
  files: Buffer[][] = [];
  pos: { file: number; block: number } | null = { file: 0, block: 0 };
  /** st knows it is at EOD (after `eod` or a read that hit it). */
  eodKnown = false;
  eofHit = false;
  /** Override an mt command: return a result to use it instead of the simulation. */
  mtOverride: ((args: string[]) => StRunResult | undefined) | undefined;
  private injections: Injection[] = [];
  private nextFd = 10;
  private openFds = new Map<number, { mode: 'r' | 'w'; wrote: boolean; eodReads: number }>();

  constructor(readonly devicePath = '/dev/nst0') {}

  /** Make the next `op` call (after skipping `skip` of them) fail with errno, or return `returns`. */
  inject(op: Injection['op'], how: { errno?: string; returns?: number; skip?: number }): void {
    this.injections.push({
      op,
      skip: how.skip ?? 0,
      ...(how.errno ? { errno: how.errno } : {}),
      ...(how.returns !== undefined ? { returns: how.returns } : {}),
    });
  }

  /** Ops without the data buffers, in a compact form for exact assertions. */
  trace(): string[] {
    return this.ops.map((o) => {
      switch (o.op) {
        case 'run':
          return `${o.cmd} ${o.args.join(' ')}`;
        case 'open':
          return `open ${o.path} ${o.flags === O_WRONLY ? 'O_WRONLY' : o.flags === O_RDONLY ? 'O_RDONLY' : o.flags}`;
        case 'read':
          return `read ${o.len}`;
        case 'write':
          return `write ${o.len}`;
        case 'close':
          return 'close';
        default:
          throw new Error(`unknown op ${JSON.stringify(o)}`);
      }
    });
  }

  clearOps(): void {
    this.ops.length = 0;
  }

  statusText(): string {
    if (!this.loaded) {
      return [
        'SCSI 2 tape drive:',
        'File number=-1, block number=-1, partition=0.',
        'Tape block size 0 bytes. Density code 0x0 (default).',
        'Soft error count since last status=0',
        `General status bits on (${(0x00040000 | 0x00010000 | (this.writeProtected ? 0x04000000 : 0)).toString(16)}):`,
        ` ${this.writeProtected ? 'WR_PROT ' : ''}DR_OPEN IM_REP_EN`,
        '',
      ].join('\n');
    }
    let bits = 0x01000000 | 0x00010000;
    const p = this.pos;
    if (p && p.file === 0 && p.block === 0) bits |= 0x40000000;
    if (p && this.eodKnown && p.file === this.files.length && p.block === 0) bits |= 0x08000000;
    if (this.eofHit) bits |= 0x80000000;
    if (this.writeProtected) bits |= 0x04000000;
    const names = BIT_ORDER.filter(([, b]) => (bits & b) >>> 0 === b).map(([n]) => n);
    return [
      'SCSI 2 tape drive:',
      `File number=${p ? p.file : -1}, block number=${p ? p.block : -1}, partition=0.`,
      `Tape block size ${this.stBlockSize} bytes. Density code 0x5c (LTO-8).`,
      'Soft error count since last status=0',
      `General status bits on (${(bits >>> 0).toString(16)}):`,
      ` ${names.join(' ')}`,
      '',
    ].join('\n');
  }

  async run(cmd: string, args: string[]): Promise<StRunResult> {
    this.ops.push({ op: 'run', cmd, args: [...args] });
    const override = this.mtOverride?.(args);
    if (override) return override;
    const [f, dev, verb, arg] = args;
    if (cmd !== 'mt' || f !== '-f' || dev !== this.devicePath) return { stdout: '', stderr: `usage error`, code: 1 };
    const fail = (msg: string, code = 2): StRunResult => ({ stdout: '', stderr: `${this.devicePath}: ${msg}\n`, code });
    if (this.openFds.size > 0) return { stdout: '', stderr: `${this.devicePath}: Device or resource busy\n`, code: 1 };
    if (verb === 'status') return { stdout: this.statusText(), stderr: '', code: 0 };
    if (!this.loaded) return fail('No medium found');
    this.eofHit = false;
    switch (verb) {
      case 'rewind':
        this.pos = { file: 0, block: 0 };
        this.eodKnown = false;
        return { stdout: '', stderr: '', code: 0 };
      case 'asf': {
        const n = Number(arg);
        this.eodKnown = false;
        if (n > this.files.length) {
          this.pos = { file: this.files.length, block: 0 };
          this.eodKnown = true;
          return fail('Input/output error');
        }
        this.pos = { file: n, block: 0 };
        return { stdout: '', stderr: '', code: 0 };
      }
      case 'eod':
        this.pos = { file: this.files.length, block: 0 };
        this.eodKnown = true;
        return { stdout: '', stderr: '', code: 0 };
      case 'weof': {
        if (this.writeProtected) return fail('Read-only file system');
        const p = this.pos!;
        this.files.length = p.file;
        for (let i = 0; i < Number(arg ?? 1); i++) this.files.push([]);
        this.pos = { file: this.files.length, block: 0 };
        this.eodKnown = false;
        return { stdout: '', stderr: '', code: 0 };
      }
      case 'setblk':
        this.stBlockSize = Number(arg);
        return { stdout: '', stderr: '', code: 0 };
      default:
        return { stdout: '', stderr: `mt: unknown command ${verb}`, code: 1 };
    }
  }

  private injected(op: Injection['op']): Injection | undefined {
    const i = this.injections.findIndex((x) => x.op === op);
    if (i < 0) return undefined;
    const inj = this.injections[i]!;
    if (inj.skip > 0) {
      inj.skip--;
      return undefined;
    }
    this.injections.splice(i, 1);
    if (inj.errno) throw errnoError(inj.errno);
    return inj;
  }

  async open(path: string, flags: number): Promise<number> {
    this.ops.push({ op: 'open', path, flags });
    this.injected('open');
    if (path !== this.devicePath) throw errnoError('ENOENT');
    if (!this.loaded) throw errnoError('ENOMEDIUM');
    if (this.openFds.size > 0) throw errnoError('EBUSY');
    if (flags === O_WRONLY && this.writeProtected) throw errnoError('EROFS');
    const fd = this.nextFd++;
    this.openFds.set(fd, { mode: flags === O_WRONLY ? 'w' : 'r', wrote: false, eodReads: 0 });
    return fd;
  }

  async read(fd: number, buf: Buffer): Promise<number> {
    this.ops.push({ op: 'read', fd, len: buf.length });
    const inj = this.injected('read');
    if (inj?.returns !== undefined) return inj.returns;
    const h = this.openFds.get(fd);
    if (h?.mode !== 'r') throw errnoError('EBADF');
    const p = this.pos!;
    if (p.file >= this.files.length) {
      this.eodKnown = true;
      if (h.eodReads++ > 0) throw errnoError('EIO');
      return 0;
    }
    const file = this.files[p.file]!;
    if (p.block >= file.length) {
      this.pos = { file: p.file + 1, block: 0 };
      this.eofHit = true;
      return 0;
    }
    const block = file[p.block]!;
    if (this.stBlockSize > 0 && buf.length % this.stBlockSize !== 0) throw errnoError('EINVAL');
    if (buf.length < block.length) {
      if (this.stBlockSize === 0) p.block++; // the block is lost at this position
      throw errnoError('ENOMEM');
    }
    // st spaces back over a block of the wrong size: the position stays.
    if (this.stBlockSize > 0 && block.length !== this.stBlockSize) throw errnoError('EIO');
    block.copy(buf);
    p.block++;
    return block.length;
  }

  async write(fd: number, buf: Buffer): Promise<number> {
    this.ops.push({ op: 'write', fd, len: buf.length, buf });
    const inj = this.injected('write');
    const h = this.openFds.get(fd);
    if (h?.mode !== 'w') throw errnoError('EBADF');
    if (this.stBlockSize > 0 && buf.length % this.stBlockSize !== 0) throw errnoError('EINVAL');
    const p = this.pos!;
    if (!h.wrote) {
      // First write at this position: everything after it is gone.
      this.files.length = p.file;
      this.files.push([]);
      h.wrote = true;
    }
    const n = inj?.returns ?? buf.length;
    if (n > 0) {
      this.files[p.file]!.push(Buffer.from(buf.subarray(0, n)));
      p.block++;
    }
    return n;
  }

  async close(fd: number): Promise<void> {
    this.ops.push({ op: 'close', fd });
    const h = this.openFds.get(fd);
    this.openFds.delete(fd);
    this.injected('close');
    if (h?.mode === 'w' && h.wrote) {
      // st writes a filemark on close after writing.
      this.pos = { file: this.pos!.file + 1, block: 0 };
    }
  }
}
