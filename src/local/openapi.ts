/**
 * docs/openapi.json, generated: every route of resources/routes.ts with its request from the
 * job's input schema and its answer from the job's output schema (jobs/output-schemas.ts),
 * the same schemas the code validates with. `npm run openapi` writes it; a test fails when the
 * committed file is not what this generates.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { jobOutputSchemas } from '../lib/jobs/output-schemas.ts';
import { JOB_NAMES, jobInputSchemas, type JobName } from '../lib/jobs/registry.ts';
import { HTTP_ROUTES } from '../lib/resources/routes.ts';

type Json = Record<string, unknown>;

const toSchema = (s: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, target: 'openapi-3.0', unrepresentable: 'any' }) as Json;
  return rest;
};

const ERROR_STATUSES = ['400', '401', '403', '404', '409'];

function operation(name: JobName): Json {
  const route = HTTP_ROUTES[name];
  const input = toSchema(jobInputSchemas[name], 'input');
  const props = { ...((input.properties as Json | undefined) ?? {}) };
  const required = new Set((input.required as string[] | undefined) ?? []);
  const parameters: Json[] = [];
  for (const [param, field] of Object.entries(route.pathParams ?? {})) {
    parameters.push({ name: param, in: 'path', required: true, schema: props[field] ?? { type: 'string' } });
    delete props[field];
    required.delete(field);
  }
  const rest = { ...input, properties: props, ...(required.size ? { required: [...required] } : {}) };
  if (!required.size) delete rest.required;
  const hasFields = Object.keys(props).length > 0;
  if (route.method === 'GET') {
    for (const [field, schema] of Object.entries(props)) parameters.push({ name: field, in: 'query', required: required.has(field), schema });
  } else {
    parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });
  }
  return {
    summary: route.summary,
    operationId: name,
    security: [{ sigv4: [] }, { bearer: [] }],
    ...(parameters.length ? { parameters } : {}),
    ...(route.method === 'POST' && hasFields ? { requestBody: { required: required.size > 0, content: { 'application/json': { schema: rest } } } } : {}),
    responses: {
      [String(route.okStatus)]: {
        description: route.okStatus === 202 ? 'accepted: the agent does the work; follow the task with GET /tasks/{id}' : "the job's result",
        content: { 'application/json': { schema: toSchema(jobOutputSchemas[name], 'output') } },
      },
      ...Object.fromEntries(ERROR_STATUSES.map((s) => [s, { $ref: '#/components/responses/Error' }])),
    },
  };
}

export function openApiDocument(): Json {
  const paths: Record<string, Json> = {};
  for (const name of JOB_NAMES) {
    const route = HTTP_ROUTES[name];
    paths[route.path] = { ...(paths[route.path] ?? {}), [route.method.toLowerCase()]: operation(name) };
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'tape-archive',
      version: '1',
      description:
        "The tape archive's jobs over HTTP; generated from the schemas the code validates with (npm run openapi). Every route needs credentials: AWS SigV4 (IAM) on AWS, or `Authorization: Bearer <token>` where no AWS authorizer runs (serverless-offline). Mutating routes accept an `Idempotency-Key` header. Errors are `{error: {code, message}}`; `run-job --json` prints the same answers on stdout and the same errors on stderr.",
    },
    paths,
    components: {
      securitySchemes: {
        sigv4: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'AWS SigV4 (IAM authorizer)' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{8,128}$' },
          description: 'the same key with the same request replays the first answer; with a different request: 409',
        },
      },
      responses: {
        Error: {
          description: 'what is wrong and what to do',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  error: {
                    type: 'object',
                    additionalProperties: false,
                    properties: { code: { type: 'string' }, message: { type: 'string' } },
                    required: ['code', 'message'],
                  },
                },
                required: ['error'],
              },
            },
          },
        },
      },
    },
  };
}

export const OPENAPI_PATH = 'docs/openapi.json';
export const renderOpenApi = (): string => `${JSON.stringify(openApiDocument(), null, 2)}\n`;

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  writeFileSync(OPENAPI_PATH, renderOpenApi());
  console.log(`wrote ${OPENAPI_PATH}`);
}
