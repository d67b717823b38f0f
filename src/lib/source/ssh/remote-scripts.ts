/**
 * The only commands run on a data host: fixed /bin/sh scripts whose variable parts are the
 * target path, single-quoted and passed as "$1", and for a scan or listing the find patterns
 * of the nested targets it leaves out, each single-quoted and passed as "$2" ... (docs/ssh.md).
 * The names in a target flow as NUL-terminated bytes on stdin and stdout, never on a command line.
 */

// ---------------------------------------------------------------------------------------------
// Remote commands

/** Quotes one argument for a POSIX shell: '...' with every ' written as '\''. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command for the remote login shell that runs a fixed /bin/sh script with the target path
 * as "$1". The script text is constant (no variable data); the path and each further argument
 * is one single-quoted word.
 */
export function remoteCommand(script: string, path: string, ...more: string[]): string {
  return `LC_ALL=C exec /bin/sh -c ${shellQuote(script)} sh ${[path, ...more].map(shellQuote).join(' ')}`;
}

/** The longest command a Linux login shell takes as its one `-c` argument (MAX_ARG_STRLEN), with room to spare. */
export const MAX_COMMAND_LENGTH = 128 * 1024 - 1024;

/** Enters the target ("$1") or exits 90 with the reason on stderr. */
const CD_TARGET = [
  'if ! cd -- "$1" 2>/dev/null; then',
  '  if [ ! -e "$1" ]; then r=\'does not exist\'',
  '  elif [ ! -d "$1" ]; then r=\'is not a directory\'',
  "  else r='cannot be entered (permission denied)'; fi",
  '  printf \'the target %s\\n\' "$r" >&2',
  '  exit 90',
  'fi',
].join('\n');

/**
 * After CD_TARGET: the arguments after the target ("$2" ...) are find -path patterns of the
 * nested targets to leave out (excludePatterns); "$@" becomes `-o -path P ...`, used as
 * `\( -false "$@" \) -prune -o ...`, so each one is skipped with its subtree. Each pattern
 * is one argument, single-quoted on the command line and never parsed by the shell.
 */
const PRUNE_ARGS = ['shift', 'for x in "$@"; do set -- "$@" -o -path "$x"; shift; done'].join('\n');
const PRUNE = '\\( -false "$@" \\) -prune -o';

/**
 * The find -path pattern of each nested target's name relative to the target: `./NAME`, with
 * the glob characters (`\ * ? [`) escaped so that it matches that name only (under LC_ALL=C,
 * byte for byte).
 */
export function excludePatterns(relative: readonly string[]): string[] {
  return relative.map((r) => `./${r.replace(/[\\*?[]/g, '\\$&')}`);
}

/**
 * The scan runs two commands at once, on two channels (when maxConcurrentChannels allows):
 *
 * LIST_SCRIPT writes one record of 7 NUL-terminated fields per entry (find -printf):
 *   type (%y: f d l ...), size (%s), mtime (%T@: seconds.fraction), mode (%m: octal
 *   permission bits), name (%P: relative to the target, raw bytes), link target (%l, empty
 *   unless a symlink), links, identity and owner (%n:%D:%i:%U:%G: link count, device, inode,
 *   uid, gid; files with several names form hard link groups). No field can contain a NUL, so any other byte in a
 *   name is safe.
 * HASH_SCRIPT writes one NUL-terminated line per regular file (sha256sum --zero: no escaping):
 *   "<64 hex><space><space|*>./<name>"
 * Both end with the field "=" (no record or line starts with it), so output cut at a record
 * boundary is still detected. Exit status 90: the target cannot be entered (reason on
 * stderr); otherwise find's (LIST) or xargs' (HASH: 123 when a sha256sum failed).
 */
export const LIST_SCRIPT = [
  CD_TARGET,
  PRUNE_ARGS,
  `find . -ignore_readdir_race -mindepth 1 ${PRUNE} -printf '%y\\0%s\\0%T@\\0%m\\0%P\\0%l\\0%n:%D:%i:%U:%G\\0'`,
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

/**
 * Every directory, file and symlink under the target now, one record of 2 NUL-terminated
 * fields (type %y, name %P), ending with "=": the writer's check that nothing was added since
 * the scan.
 */
export const NAMES_SCRIPT = [
  CD_TARGET,
  PRUNE_ARGS,
  `find . -ignore_readdir_race -mindepth 1 ${PRUNE} \\( -type f -o -type d -o -type l \\) -printf '%y\\0%P\\0'`,
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

/** Directories exactly "$2" levels below the target, NUL-terminated, relative (scheduled import). */
export const LIST_DIRS_SCRIPT = [
  CD_TARGET,
  'find . -ignore_readdir_race -mindepth "$2" -maxdepth "$2" -type d -printf \'%P\\0\'',
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

export const HASH_SCRIPT = [
  CD_TARGET,
  PRUNE_ARGS,
  `find . -ignore_readdir_race ${PRUNE} -type f -print0 | xargs -0 -r sha256sum --zero --`,
  's=$?',
  "printf '=\\0'",
  'exit $s',
].join('\n');

/**
 * The stream script: GNU tar of exactly the NUL-terminated names read on stdin, relative to
 * the target, each taken verbatim (no option parsing, no unquoting, no wildcards, no
 * recursion), GNU format (raw name bytes). The first name is "." (the root directory: its
 * mode and mtime); a second name of a file already streamed comes as a hard link (typeflag
 * 1) to the first. Exit 90: cannot cd.
 */
export const STREAM_SCRIPT = [
  CD_TARGET,
  'exec tar --create --file=- --format=gnu --blocking-factor=256 --no-recursion --no-unquote ' + '--null --verbatim-files-from --files-from=-',
].join('\n');

/** The same, every hard-linked name stored as a file with its content (manifests without link groups). */
export const STREAM_SCRIPT_DEREFERENCE = STREAM_SCRIPT.replace('--no-recursion', '--hard-dereference --no-recursion');

// ---------------------------------------------------------------------------------------------
// Restore to a data host (lib/restore/ssh-destination.ts)

/** Creates the restore directory "$1" (and its parents). */
export const RESTORE_PREPARE_SCRIPT = 'mkdir -p -- "$1"';

/**
 * Extracts the tar the agent sends on stdin into "$1": its member names are the agent's,
 * checked safe (relative, no "..", never through a symlink); modes exactly as sent; owners
 * as sent when run as root. Each file arrives under a temporary name and gets its real name
 * as a hard link only after its checksum matched.
 */
export const RESTORE_EXTRACT_SCRIPT = [CD_TARGET, 'exec tar --extract --file=- --preserve-permissions --numeric-owner --warning=no-unknown-keyword'].join('\n');

/** Removes the temporary names of a restore under "$1" (a file whose checksum failed keeps only that name). */
export const RESTORE_CLEANUP_SCRIPT = [CD_TARGET, "find . -name '.tape-restore-*.part' -type f -delete"].join('\n');

/** Sets mode and mtime of existing files: records of 3 NUL-terminated fields (octal mode, seconds, name) on stdin. */
export const RESTORE_META_SCRIPT = [CD_TARGET, `xargs -0 -r -n 3 sh -c 'chmod -- "$1" "$3" && touch -m -d "@$2" -- "$3"' sh`].join('\n');
