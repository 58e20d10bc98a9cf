// The Node.js baseline of scripts/bench: a minimal booking handler doing the same work as a
// Switchboard plugin call (parse the API Gateway event, take the org from the authorizer
// context, GetItem the plugin instance from DynamoDB, validate the parameters with ajv,
// answer the envelope), under a minimal Lambda runtime loop (GET next / POST response over
// `http`, as the AWS Node.js runtime's loop does). As in a well-written Lambda, the SDK client
// is created once at init and each function's validator is compiled once, on first use.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import Ajv from 'ajv';

const MANIFEST = JSON.parse(readFileSync(process.env.BENCH_BOOKING_MANIFEST, 'utf8'));
const TABLE = process.env.REGISTRY_TABLE || 'switchboard-registry';
const PLUGIN = MANIFEST.name;

// Region, credentials and AWS_ENDPOINT_URL come from the environment, as on Lambda.
const ddb = new DynamoDBClient({});
const ajv = new Ajv({ allErrors: true, strict: false });
const schemas = new Map(MANIFEST.functions.map((f) => [f.name, f.parameters]));
const validators = new Map();

function validatorFor(name) {
  let v = validators.get(name);
  if (!v && schemas.has(name)) {
    v = ajv.compile(schemas.get(name));
    validators.set(name, v);
  }
  return v;
}

function reply(statusCode, body) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function fail(statusCode, code, message, details) {
  return reply(statusCode, { success: false, error: { code, message, details: details || [] } });
}

export async function handler(event) {
  const org = event?.requestContext?.authorizer?.lambda?.orgId;
  if (typeof org !== 'string' || !org) return fail(401, 'unauthenticated', 'no tenant context');
  let call;
  try {
    const raw = event.isBase64Encoded ? Buffer.from(event.body || '', 'base64').toString() : event.body;
    call = JSON.parse(raw || '');
  } catch {
    return fail(400, 'invalid_request', 'the body is not JSON');
  }
  if (!call || typeof call.function !== 'string') return fail(400, 'invalid_request', 'missing function');
  const out = await ddb.send(new GetItemCommand({
    TableName: TABLE,
    Key: { PK: { S: `ORG#${org}` }, SK: { S: `INST#${PLUGIN}` } },
  }));
  const instance = out.Item?.data?.M;
  if (!instance || instance.enabled?.BOOL !== true) {
    return fail(403, 'plugin_not_enabled', `${PLUGIN} is not enabled for ${org}`);
  }
  const validate = validatorFor(call.function);
  if (!validate) return fail(404, 'unknown_function', call.function);
  const params = call.parameters ?? {};
  if (!validate(params)) {
    return fail(422, 'validation_failed', 'invalid parameters',
      validate.errors.map((e) => ({ path: e.instancePath, message: e.message })));
  }
  return reply(200, { success: true, result: { function: call.function, org, parameters: params } });
}

// The runtime loop.
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const BASE = '/2018-06-01/runtime/invocation';
for (;;) {
  const next = await request('GET', `${BASE}/next`);
  const id = next.headers['lambda-runtime-aws-request-id'];
  try {
    const result = await handler(JSON.parse(next.body));
    await request('POST', `${BASE}/${id}/response`, JSON.stringify(result));
  } catch (e) {
    await request('POST', `${BASE}/${id}/error`,
      JSON.stringify({ errorType: e?.name || 'Error', errorMessage: String(e?.message || e) }));
  }
}
