/**
 * The ingest hot path's finding check: the zod schema (finding-schema.ts) turned into JSON Schema and
 * compiled once by ajv into straight-line code. zod walks its schema per value and copies every object
 * it returns; this checks the parsed JSON in place, which was most of a replica's CPU per finding.
 *
 * Same answers as the zod schema (test/unit/collector/finding-validator.test.ts holds them side by side):
 * unknown keys are removed, absent fields get the schema's defaults, and the first problem is reported
 * with its field path. String lengths count UTF-16 units, as zod does (ajv's `unicode: false`).
 * A refinement has no JSON Schema form; the one the schema has (a date that exists) is checked here as
 * a format, and any other one refuses to compile rather than be silently left out.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { z } from 'zod';
import { ingestedFindingSchema, isIsoTime, isoTime, type IngestedFinding } from './finding-schema';

const ISO_TIME_FORMAT = 'credwatch-iso-time';

function jsonSchemaOfFinding(): Record<string, unknown> {
  return z.toJSONSchema(ingestedFindingSchema, {
    // Input side: a field with a default may be absent (the validator fills it in).
    io: 'input',
    target: 'draft-7',
    unrepresentable: 'throw',
    override: (ctx) => {
      if (ctx.zodSchema === isoTime) {
        // The format checks the form and the date; the pattern's error would echo a regex.
        delete ctx.jsonSchema.pattern;
        ctx.jsonSchema.format = ISO_TIME_FORMAT;
        return;
      }
      const checks = (ctx.zodSchema._zod.def as { checks?: { _zod: { def: { check: string } } }[] }).checks ?? [];
      if (checks.some((c) => c._zod.def.check === 'custom')) throw new Error('finding schema: a refinement the compiled validator cannot check (give it a format here)');
    },
  }) as Record<string, unknown>;
}

let compiled: ValidateFunction | undefined;

/**
 * Compiled on first use (about 0.2 s): the CLI loads this module too, and most of its commands never
 * validate. The collector calls it at start, so its first batch does not wait and a schema that cannot
 * compile stops it there.
 */
export function compiledValidator(): ValidateFunction {
  if (compiled === undefined) {
    const ajv = new Ajv({
      removeAdditional: 'all',
      useDefaults: true,
      // The first problem is all we report, and stopping there keeps a hostile line cheap.
      allErrors: false,
      // UTF-16 length, as zod counts (the option is deprecated, not gone: without it every string is walked).
      unicode: false,
      strict: true,
      // strict makes schema problems throw; the only thing left to log is the notice about `unicode`.
      logger: false,
    });
    ajv.addFormat(ISO_TIME_FORMAT, { type: 'string', validate: isIsoTime });
    compiled = ajv.compile(jsonSchemaOfFinding());
  }
  return compiled;
}

/** JSON Pointer to the dotted path zod reports ("/evidence/0/records" -> "evidence.0.records"). */
function dotted(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function why(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'enum':
      return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'format':
      return 'must be an ISO 8601 time with a zone, of a date that exists';
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

/** The first problem, as `field "container.id": must be string` (short, no input echoed). */
function describe(e: ErrorObject): string {
  let path = dotted(e.instancePath);
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: unknown }).missingProperty);
    path = path === '' ? missing : `${path}.${missing}`;
  }
  return path === '' ? why(e) : `field "${path.slice(0, 120)}": ${why(e).slice(0, 200)}`;
}

/**
 * Checks a value fresh from JSON.parse and makes it a finding in place: unknown keys removed, defaults
 * set. Returns null when `value` is now an IngestedFinding, else the first problem (the value is then
 * half-cleaned and must be dropped).
 */
export function findingProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const validate = compiledValidator();
  if (validate(value)) return null;
  const first = validate.errors?.[0];
  return first === undefined ? 'invalid finding' : describe(first);
}

/** `findingProblem` as a type guard, for callers that only keep or drop. */
export function isFinding(value: unknown): value is IngestedFinding {
  return findingProblem(value) === null;
}
