/**
 * The on-tape format "tape-archive/1" (docs/tape-format.md): file 0 is a label tar, every
 * other tape file is one POSIX (pax) tar per target: header.json, data/..., trailer.json.
 */
export {
  FORMAT,
  FORMAT_MAJOR,
  LABEL_MEMBER,
  HEADER_MEMBER,
  TRAILER_MEMBER,
  DATA_DIR,
  NotALabelError,
  SourceChangedError,
  TapeFormatError,
  formatMajor,
  filesDigest,
  type BadEntry,
  type RootMeta,
  type SourceEntry,
  type SourceEntryFields,
  type TapeLabel,
  type TargetHeader,
  type TargetHeaderInit,
  type TargetRef,
  type Trailer,
  type TrailerFile,
  type VerifyReport,
} from './format.ts';
export { writeLabel, writeTargetFile, type WriteTargetOptions } from './writer.ts';
export { invalidName, planManifest } from './manifest-plan.ts';
export { readLabel, readTargetHeader } from './read-header.ts';
export { readTargetFile, type ReadTargetOptions } from './reader.ts';
export { HashSession, HashWorkerError, stopHashWorker, type HashSessionOptions } from './hash-worker.ts';
