/** docs/openapi.json is generated from the schemas the code validates with, and is current. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { jobOutputSchemas } from '../../src/lib/jobs/output-schemas.ts';
import { JOB_NAMES } from '../../src/lib/jobs/registry.ts';
import { HTTP_ROUTES } from '../../src/lib/resources/routes.ts';
import { OPENAPI_PATH, openApiDocument, renderOpenApi } from '../../src/local/openapi.ts';

describe('docs/openapi.json', () => {
  it('is what the generator makes from the schemas (run "npm run openapi" after changing a job)', async () => {
    expect(await readFile(OPENAPI_PATH, 'utf8')).toBe(renderOpenApi());
  });

  it('describes every job with a real answer schema, not just an object', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, any> }>> };
    const ops = Object.values(doc.paths).flatMap((p) => Object.values(p));
    expect(ops.map((o) => o.operationId).sort()).toEqual([...JOB_NAMES].sort());
    for (const o of ops) {
      const ok = o.responses[String(HTTP_ROUTES[o.operationId as keyof typeof HTTP_ROUTES].okStatus)];
      const schema = ok.content['application/json'].schema;
      expect(schema.properties ?? schema.anyOf ?? schema.oneOf, o.operationId).toBeDefined();
    }
  });

  it('the answer schemas refuse an answer that breaks the contract', () => {
    expect(jobOutputSchemas.tapes.safeParse({ tapes: [{ name: 'x' }] }).success).toBe(false);
    expect(jobOutputSchemas.archive.safeParse({ status: 'idle', tape: 't', pool: 'default', message: 'm' }).success).toBe(true);
    expect(jobOutputSchemas.archive.safeParse({ status: 'started', tape: 't' }).success).toBe(false);
  });
});
