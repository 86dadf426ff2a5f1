// Validates rendered chart objects against the Kubernetes and prometheus-operator schemas of
// maintained npm packages, strictly. Usage: node validate_k8s.mjs NODE_MODULES OBJECTS.json
// (OBJECTS.json: [{"set": "<label>", "objects": [...]}, ...]). For every object:
//  - kubernetes-models / @kubernetes-models/prometheus-operator validate() (types, required
//    fields, enums, formats as the OpenAPI and the CRDs define them);
//  - core kinds: no field the Kubernetes OpenAPI does not define (walked with the models
//    @kubernetes/client-node generates from it), so a pass-through typo cannot slip through;
//  - the API server's name rules: object names, container and port names, label keys and
//    values, unique container names per pod, monitors' scrapeTimeout <= interval.
// Prints one line per failure and "N passed, M failed"; exits non-zero on failure.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [nodeModules, input] = process.argv.slice(2);
// Loaded by file (the packages' export maps only name their own entry points).
const load = async (file, name) =>
  (await import(pathToFileURL(path.join(nodeModules, file)).href))[name];
const classes = {
  'apps/v1/Deployment': await load('kubernetes-models/apps/v1/Deployment.js', 'Deployment'),
  'v1/Service': await load('kubernetes-models/v1/Service.js', 'Service'),
  'v1/ConfigMap': await load('kubernetes-models/v1/ConfigMap.js', 'ConfigMap'),
  'v1/Secret': await load('kubernetes-models/v1/Secret.js', 'Secret'),
  'monitoring.coreos.com/v1/ServiceMonitor': await load(
      '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js', 'ServiceMonitor'),
  'monitoring.coreos.com/v1/PodMonitor': await load(
      '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor.js', 'PodMonitor'),
  'monitoring.coreos.com/v1/PrometheusRule': await load(
      '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule.js', 'PrometheusRule'),
};
const coreModels = {
  'apps/v1/Deployment': 'V1Deployment', 'v1/Service': 'V1Service',
  'v1/ConfigMap': 'V1ConfigMap', 'v1/Secret': 'V1Secret',
};
const modelsDir = path.join(nodeModules, '@kubernetes/client-node/dist/gen/models');
const typeMaps = new Map();
function typeMap(model) {
  if (!typeMaps.has(model)) {
    const js = fs.readFileSync(path.join(modelsDir, `${model}.js`), 'utf8');
    const start = js.indexOf(`${model}.attributeTypeMap = `) + `${model}.attributeTypeMap = `.length;
    const map = new Map(JSON.parse(js.slice(start, js.indexOf('];', start) + 1)).map((a) => [a.baseName, a.type]));
    typeMaps.set(model, map);
  }
  return typeMaps.get(model);
}

function strictFields(value, type, where, errors) {
  let m;
  if (value === null || value === undefined) return;
  if ((m = type.match(/^Array<(.+)>$/))) {
    if (!Array.isArray(value)) return errors.push(`${where}: not a list`);
    value.forEach((v, i) => strictFields(v, m[1], `${where}[${i}]`, errors));
  } else if ((m = type.match(/^\{ \[key: string\]: (.+); \}$/))) {
    if (typeof value !== 'object' || Array.isArray(value)) return errors.push(`${where}: not a map`);
    for (const [k, v] of Object.entries(value)) strictFields(v, m[1], `${where}.${k}`, errors);
  } else if (/^(V1|Core|Apps)/.test(type) && fs.existsSync(path.join(modelsDir, `${type}.js`))) {
    if (typeof value !== 'object' || Array.isArray(value)) return errors.push(`${where}: not an object`);
    const fields = typeMap(type);
    for (const [k, v] of Object.entries(value)) {
      if (!fields.has(k)) errors.push(`${where}: unknown field "${k}" (${type})`);
      else strictFields(v, fields.get(k), `${where}.${k}`, errors);
    }
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QNAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function checkKey(k, where, errors) {
  const slash = k.lastIndexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : '';
  const name = k.slice(slash + 1);
  if (slash >= 0 && (!SUBDOMAIN.test(prefix) || prefix.length > 253)) errors.push(`${where}: bad key prefix in "${k}"`);
  if (!QNAME.test(name) || name.length > 63) errors.push(`${where}: bad key "${k}"`);
}
function checkLabels(labels, where, errors) {
  for (const [k, v] of Object.entries(labels || {})) {
    checkKey(k, where, errors);
    if (typeof v !== 'string' || !LABEL_VALUE.test(v) || v.length > 63) errors.push(`${where}.${k}: bad label value ${JSON.stringify(v)}`);
  }
}
function millis(d) {
  const units = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8, y: 3.1536e10 };
  let t = 0;
  for (const m of String(d).matchAll(/([0-9]+)(ms|[smhdwy])/g)) t += Number(m[1]) * units[m[2]];
  return t;
}

function checkObject(obj, errors) {
  const id = `${obj.apiVersion}/${obj.kind}`;
  const where = `${obj.kind} ${obj.metadata && obj.metadata.name}`;
  const Cls = classes[id];
  if (!Cls) return errors.push(`${where}: no schema for ${id}`);
  try {
    new Cls(obj).validate();
  } catch (e) {
    errors.push(`${where}: ${e.message || e}`);
  }
  if (coreModels[id]) {
    const { apiVersion, kind, ...rest } = obj;
    strictFields(rest, coreModels[id], where, errors);
  }
  const md = obj.metadata || {};
  const nameRule = obj.kind === 'Service' ? DNS1035 : SUBDOMAIN;
  if (!nameRule.test(md.name || '') || (md.name || '').length > (obj.kind === 'Service' ? 63 : 253)) {
    errors.push(`${where}: invalid metadata.name`);
  }
  if (md.namespace !== undefined && !DNS_LABEL.test(md.namespace)) errors.push(`${where}: invalid namespace`);
  checkLabels(md.labels, `${where} metadata.labels`, errors);
  for (const k of Object.keys(md.annotations || {})) checkKey(k, `${where} metadata.annotations`, errors);
  if (obj.kind === 'Deployment') {
    const tpl = obj.spec.template;
    checkLabels(tpl.metadata.labels, `${where} template labels`, errors);
    for (const k of Object.keys(tpl.metadata.annotations || {})) checkKey(k, `${where} template annotations`, errors);
    for (const [k, v] of Object.entries(obj.spec.selector.matchLabels || {})) {
      if (tpl.metadata.labels[k] !== v) errors.push(`${where}: selector ${k}=${v} does not match the pod template`);
    }
    const names = new Set();
    for (const c of [...(tpl.spec.initContainers || []), ...(tpl.spec.containers || [])]) {
      if (!DNS_LABEL.test(c.name) || c.name.length > 63) errors.push(`${where}: invalid container name "${c.name}"`);
      if (names.has(c.name)) errors.push(`${where}: duplicate container name "${c.name}"`);
      names.add(c.name);
      for (const p of c.ports || []) {
        if (p.name !== undefined && (!PORT_NAME.test(p.name) || p.name.length > 15 || !/[a-z]/.test(p.name))) {
          errors.push(`${where}: container ${c.name}: invalid port name "${p.name}"`);
        }
      }
    }
    checkLabels(tpl.spec.nodeSelector, `${where} nodeSelector`, errors);
  }
  if (obj.kind === 'ServiceMonitor' || obj.kind === 'PodMonitor') {
    for (const e of obj.spec.endpoints || obj.spec.podMetricsEndpoints || []) {
      if (e.scrapeTimeout && e.interval && millis(e.scrapeTimeout) > millis(e.interval)) {
        errors.push(`${where}: scrapeTimeout ${e.scrapeTimeout} > interval ${e.interval}`);
      }
    }
  }
}

const sets = JSON.parse(fs.readFileSync(input, 'utf8'));
let passed = 0;
let failed = 0;
let objects = 0;
for (const { set, objects: objs } of sets) {
  const errors = [];
  for (const obj of objs) {
    objects += 1;
    checkObject(obj, errors);
  }
  if (errors.length) {
    failed += 1;
    console.log(`FAIL ${set}:\n  ${errors.join('\n  ')}`);
  } else {
    passed += 1;
  }
}
console.log(`validated ${objects} objects from ${sets.length} value sets`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
