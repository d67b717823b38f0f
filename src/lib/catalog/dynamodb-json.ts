/**
 * Items as DynamoDB's own JSON (what `aws dynamodb scan` prints): binary attributes as base64,
 * so a dump written to a file (a catalog snapshot, a test fixture) reads back byte for byte.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

export type Item = Record<string, AttributeValue>;

function encode(v: AttributeValue): unknown {
  if (v.B !== undefined) return { B: Buffer.from(v.B).toString('base64') };
  if (v.BS !== undefined) return { BS: v.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (v.L !== undefined) return { L: v.L.map(encode) };
  if (v.M !== undefined) return { M: Object.fromEntries(Object.entries(v.M).map(([k, x]) => [k, encode(x)])) };
  return v;
}

function decode(v: Record<string, unknown>): AttributeValue {
  if (typeof v.B === 'string') return { B: Buffer.from(v.B, 'base64') };
  if (Array.isArray(v.BS)) return { BS: (v.BS as string[]).map((b) => Buffer.from(b, 'base64')) };
  if (Array.isArray(v.L)) return { L: (v.L as Record<string, unknown>[]).map(decode) };
  if (v.M && typeof v.M === 'object')
    return { M: Object.fromEntries(Object.entries(v.M as Record<string, Record<string, unknown>>).map(([k, x]) => [k, decode(x)])) };
  return v as unknown as AttributeValue;
}

export const encodeItem = (i: Item): Record<string, unknown> => Object.fromEntries(Object.entries(i).map(([k, v]) => [k, encode(v)]));
export const decodeItem = (i: Record<string, Record<string, unknown>>): Item => Object.fromEntries(Object.entries(i).map(([k, v]) => [k, decode(v)]));

export const itemsToJson = (items: Item[]): string => `${JSON.stringify(items.map(encodeItem), null, 1)}\n`;

export const itemsFromJson = (text: string): Item[] => (JSON.parse(text) as Record<string, Record<string, unknown>>[]).map(decodeItem);
