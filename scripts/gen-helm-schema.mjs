// Generates the Kubernetes parts of helm/pgvigil/values.schema.json from the Kubernetes OpenAPI
// definitions, as @kubernetes/client-node ships them (models generated from OpenAPI v1.34.0:
// field names, types, formats; required fields from its type declarations). The hand-written
// part of the schema stays (with its pgvigil.* definitions); this rewrites the other
// "definitions" (the closure of the models below) and
// points each pass-through value at its model, so a typo such as securityContext.runAsNonroot or
// tolerations[].effct is refused by `helm template` instead of the API server.
//
//   node scripts/gen-helm-schema.mjs NODE_MODULES [SCHEMA_IN] [SCHEMA_OUT]
//     (defaults: helm/pgvigil/values.schema.json, in place). NODE_MODULES comes from
//     scripts/fetch-k8s-models.sh. Deterministic: a second run changes nothing (a chart test
//     checks that the committed schema is what this script writes).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [nodeModules, input = path.join(repo, 'helm/pgvigil/values.schema.json'), output = input] =
    process.argv.slice(2);
if (!nodeModules) {
  console.error('usage: gen-helm-schema.mjs NODE_MODULES [SCHEMA_IN] [SCHEMA_OUT]');
  process.exit(2);
}
const modelsDir = path.join(nodeModules, '@kubernetes/client-node/dist/gen/models');
const clientVersion = JSON.parse(
    fs.readFileSync(path.join(nodeModules, '@kubernetes/client-node/package.json'), 'utf8')).version;

// Values that are Kubernetes objects: JSON pointer in the schema -> model (or [model] for a list).
const ROOTS = {
  '/properties/securityContext': 'V1SecurityContext',
  '/properties/podSecurityContext': 'V1PodSecurityContext',
  '/properties/extraEnv': ['V1EnvVar'],
  '/properties/tolerations': ['V1Toleration'],
  '/properties/affinity': 'V1Affinity',
  '/properties/resources': 'V1ResourceRequirements',
  '/properties/imagePullSecrets': ['V1LocalObjectReference'],
  '/properties/demo/properties/env': ['V1EnvVar'],
  '/properties/demo/properties/ports': ['V1ContainerPort'],
  '/properties/demo/properties/resources': 'V1ResourceRequirements',
};

// What the OpenAPI types as plain strings but the API server validates further (apimachinery's
// resource.Quantity and the container resource names of core/v1 validation).
const QUANTITY = {
  description: 'A resource.Quantity: a number or a string such as 100m, 64Mi, 1.5G.',
  anyOf: [
    { type: 'number', minimum: 0 },
    { type: 'string', pattern: '^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[mkMGTPE])?$' },
  ],
};
const RESOURCE_NAME = '^(cpu|memory|ephemeral-storage|hugepages-[0-9]+[KMGTPE]i?|[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$';
const RESOURCE_LIST = {
  type: 'object',
  description: 'Resource name -> quantity. Names: cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource domain/name.',
  // patternProperties rather than propertyNames: Helm then names the map and the bad key.
  patternProperties: { [RESOURCE_NAME]: { $ref: '#/definitions/Quantity' } },
  additionalProperties: false,
};
const OVERRIDES = {
  'V1ResourceRequirements.limits': { $ref: '#/definitions/ResourceList' },
  'V1ResourceRequirements.requests': { $ref: '#/definitions/ResourceList' },
};

function readModel(name) {
  const js = fs.readFileSync(path.join(modelsDir, `${name}.js`), 'utf8');
  const dts = fs.readFileSync(path.join(modelsDir, `${name}.d.ts`), 'utf8');
  const start = js.indexOf(`${name}.attributeTypeMap = `);
  if (start < 0) throw new Error(`${name}: no attributeTypeMap`);
  const text = js.slice(start + `${name}.attributeTypeMap = `.length, js.indexOf('];', start) + 1);
  const attributes = JSON.parse(text);
  const required = new Set();
  for (const m of dts.matchAll(/^\s+'([^']+)'(\?)?:/gm)) if (!m[2]) required.add(m[1]);
  const doc = js.match(/\/\*\*\n\* (.*)\n\*\/\nexport class/);
  return { attributes, required, description: doc ? doc[1] : undefined };
}

const definitions = {};
const pending = [];

function typeSchema(type, format, where) {
  if (OVERRIDES[where]) return OVERRIDES[where];
  let m;
  if ((m = type.match(/^Array<(.+)>$/))) return { type: 'array', items: typeSchema(m[1], format, `${where}[]`) };
  if ((m = type.match(/^\{ \[key: string\]: (.+); \}$/))) {
    return { type: 'object', additionalProperties: typeSchema(m[1], format, `${where}{}`) };
  }
  switch (type) {
    case 'string': return { type: 'string' };
    case 'Date': return { type: 'string' };
    case 'boolean': return { type: 'boolean' };
    case 'number': return { type: format === 'double' ? 'number' : 'integer' };
    case 'IntOrString': return { type: ['integer', 'string'] };
    case 'any': return {};
    default:
      if (!fs.existsSync(path.join(modelsDir, `${type}.js`))) throw new Error(`${where}: unknown type ${type}`);
      if (!(type in definitions)) {
        definitions[type] = null;
        pending.push(type);
      }
      return { $ref: `#/definitions/${type}` };
  }
}

function define(name) {
  const model = readModel(name);
  const properties = {};
  for (const a of model.attributes) properties[a.baseName] = typeSchema(a.type, a.format, `${name}.${a.baseName}`);
  const schema = { type: 'object' };
  if (model.description) schema.description = model.description;
  schema.additionalProperties = false;
  schema.properties = properties;
  const required = model.attributes.filter((a) => model.required.has(a.name)).map((a) => a.baseName);
  if (required.length) schema.required = required;
  definitions[name] = schema;
}

const schema = JSON.parse(fs.readFileSync(input, 'utf8'));
// Hand-written shared definitions (names, labels) are named pgvigil.* and kept as they are.
for (const [k, v] of Object.entries(schema.definitions || {})) if (k.startsWith('pgvigil.')) definitions[k] = v;
for (const [pointer, model] of Object.entries(ROOTS)) {
  const keys = pointer.split('/').slice(1);
  let parent = schema;
  for (const k of keys.slice(0, -1)) parent = parent[k];
  const last = keys[keys.length - 1];
  if (!parent || !(last in parent)) throw new Error(`${pointer}: not in ${input}`);
  const description = parent[last].description;
  const ref = typeSchema(Array.isArray(model) ? model[0] : model, '', pointer);
  parent[last] = Array.isArray(model) ? { type: 'array', items: ref } : { ...ref };
  if (description) parent[last] = { description, ...parent[last] };
}
while (pending.length) define(pending.shift());
definitions.Quantity = QUANTITY;
definitions.ResourceList = RESOURCE_LIST;

const sorted = Object.fromEntries(Object.keys(definitions).sort().map((k) => [k, definitions[k]]));
schema.$comment = `definitions generated by scripts/gen-helm-schema.mjs from the Kubernetes OpenAPI models of @kubernetes/client-node ${clientVersion}; do not edit them by hand`;
schema.definitions = sorted;
fs.writeFileSync(output, JSON.stringify(schema, null, 2) + '\n');
console.error(`gen-helm-schema: ${Object.keys(sorted).length} definitions -> ${output}`);
