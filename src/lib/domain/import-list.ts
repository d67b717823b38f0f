/**
 * Parses an import list: one target directory per line, `/abs/path` or `host:/abs/path`.
 * Pure: returns every accepted entry and every problem with its line number, so the caller
 * can refuse the whole file (the default) or import the valid lines (--skip-invalid).
 *
 * A line is the path exactly: whitespace at either end is part of a name on Linux, so a line
 * with leading or trailing whitespace is refused rather than trimmed into another directory.
 * Line ends may be LF or CRLF. Blank lines and lines starting with `#` are ignored.
 */

export interface ImportEntry {
  line: number;
  host: string;
  path: string;
}

export interface ImportProblem {
  line: number;
  /** The line, cut to MAX_SHOWN characters. */
  text: string;
  message: string;
}

/** Characters of an offending line kept for the message. */
const MAX_SHOWN = 120;
const shown = (s: string) => (s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}...` : s);
const WS_RE = /^\s|\s$/;

export interface ParsedImportList {
  entries: ImportEntry[];
  errors: ImportProblem[];
  /** Lines naming a target already listed earlier in the same file. */
  duplicates: { line: number; firstLine: number }[];
}

const HOST_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_PATH = 4096;

export function normalizeTargetPath(raw: string): { path?: string; error?: string } {
  if (!raw.startsWith('/')) return { error: `"${shown(raw)}" is not an absolute path; write the full path starting with /` };
  if (raw.length > MAX_PATH) return { error: `path is longer than ${MAX_PATH} characters` };
  const segments = raw.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '..' || s === '.')) {
    return { error: `"${shown(raw)}" contains "." or ".." segments; write the plain full path` };
  }
  if (segments.length === 0) return { error: 'refusing to import / (the whole file system) as one target' };
  return { path: '/' + segments.join('/') };
}

function describeControl(text: string): string {
  const m = CONTROL_RE.exec(text);
  const code = m ? m[0].charCodeAt(0) : 0;
  return `contains a control character (0x${code.toString(16).padStart(2, '0')} at column ${(m?.index ?? 0) + 1})`;
}

export function parseImportList(content: string | Uint8Array, defaultHost: string): ParsedImportList {
  let text: string;
  const result: ParsedImportList = { entries: [], errors: [], duplicates: [] };
  if (typeof content === 'string') {
    text = content;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(content);
    } catch {
      // Find the offending line(s) so the message points at them.
      const bytes = Buffer.from(content);
      const binary = bytes.includes(0);
      const lines = bytes.toString('latin1').split('\n');
      lines.forEach((l, i) => {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(l, 'latin1'));
        } catch {
          const message = binary
            ? 'is binary data (NUL bytes): is this an import list? It must be text, one directory per line'
            : 'is not valid UTF-8; save the list as UTF-8';
          result.errors.push({ line: i + 1, text: shown(Buffer.from(l, 'latin1').toString('utf8')), message });
        }
      });
      return result;
    }
  }
  if (text.startsWith('\ufeff')) text = text.slice(1);

  const seen = new Map<string, number>();
  text.split('\n').forEach((rawLine, i) => {
    const lineNo = i + 1;
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (WS_RE.test(line)) {
      const where = /^\s/.test(line) ? (/\s$/.test(line) ? 'begins and ends' : 'begins') : 'ends';
      result.errors.push({
        line: lineNo,
        text: shown(line),
        message:
          `${where} with whitespace; whitespace is part of a directory name on Linux, so this line names another directory than ${JSON.stringify(shown(trimmed))}. ` +
          'Remove the whitespace (a directory whose name really begins or ends with whitespace cannot be listed here: rename it or import its parent)',
      });
      return;
    }
    if (CONTROL_RE.test(trimmed)) {
      result.errors.push({ line: lineNo, text: shown(trimmed), message: describeControl(trimmed) });
      return;
    }
    let host = defaultHost;
    let rawPath = trimmed;
    const colon = trimmed.indexOf(':');
    if (!trimmed.startsWith('/') && colon > 0) {
      host = trimmed.slice(0, colon);
      rawPath = trimmed.slice(colon + 1);
      if (!HOST_RE.test(host)) {
        result.errors.push({ line: lineNo, text: shown(trimmed), message: `host "${shown(host)}" is not a valid host name` });
        return;
      }
    }
    const { path, error } = normalizeTargetPath(rawPath);
    if (!path) {
      result.errors.push({ line: lineNo, text: shown(trimmed), message: error ?? 'invalid path' });
      return;
    }
    const key = `${host}:${path}`;
    const first = seen.get(key);
    if (first !== undefined) {
      result.duplicates.push({ line: lineNo, firstLine: first });
      return;
    }
    seen.set(key, lineNo);
    result.entries.push({ line: lineNo, host, path });
  });
  return result;
}
