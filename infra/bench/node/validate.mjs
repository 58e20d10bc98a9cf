// ajv's cost for the payload the criterion bench `pipeline/validate_create_appointment`
// validates (booking CreateAppointment), for scripts/bench. Prints JSON.
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';

const manifest = JSON.parse(readFileSync(process.env.BENCH_BOOKING_MANIFEST, 'utf8'));
const schema = manifest.functions.find((f) => f.name === 'CreateAppointment').parameters;
const ajv = new Ajv({ allErrors: true, strict: false });
let t = process.hrtime.bigint();
const validate = ajv.compile(schema);
const compileNs = Number(process.hrtime.bigint() - t);
const params = { PatNum: 1, ProvNum: 1, AptDateTime: '2027-06-01 10:00', durationMinutes: 30,
  Note: 'first visit', ProcDescript: 'Cleaning' };
if (!validate(params)) throw new Error(JSON.stringify(validate.errors));
const batch = 20000;
const samples = [];
for (let s = 0; s < 60; s++) {
  t = process.hrtime.bigint();
  for (let i = 0; i < batch; i++) validate(params);
  samples.push(Number(process.hrtime.bigint() - t) / batch);
}
const warm = samples.slice(10).sort((a, b) => a - b);
console.log(JSON.stringify({ validator: 'ajv 8.20.0 (allErrors)', compile_ns: compileNs,
  validate_ns_median: warm[Math.floor(warm.length / 2)], validate_ns_min: warm[0], batches: warm.length, batch }));
