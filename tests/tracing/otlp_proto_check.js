'use strict';
// Decodes OTLP/JSON trace exports strictly with the official opentelemetry-proto definitions
// (the protobufjs module @opentelemetry/otlp-transformer compiles from them) and checks the
// semantic-convention rules pgvigil claims (1.33). Usage:
//   node otlp_proto_check.js <path to otlp-transformer's generated/root.js> <export.json>...
//   node otlp_proto_check.js ROOT_JS --self-test <good export.json>   (mutations must fail)
// A file passes when:
//  - every key is a field of its message (unknown fields rejected), ids are lowercase hex of the
//    right length, enums are integers, 64-bit integers decimal strings, and the document
//    survives fromObject -> binary encode -> decode -> toObject unchanged;
//  - the rules below hold. Prints one line per file, then "N passed, M failed".
const fs = require('fs');

const [rootPath, ...files] = process.argv.slice(2);
if (!rootPath || files.length === 0) {
  console.error('usage: otlp_proto_check.js ROOT_JS EXPORT.json...');
  process.exit(2);
}
const root = require(rootPath);
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const SpanKind = root.opentelemetry.proto.trace.v1.Span.SpanKind;

const ID_LENGTHS = { traceId: 32, spanId: 16, parentSpanId: 16 };

function fail(path, msg) {
  throw new Error(`${path}: ${msg}`);
}

// OTLP/JSON writes trace and span ids as hex (not base64 as plain protobuf JSON would);
// protobufjs wants base64 for bytes. Strict: lowercase, exact length, not all zero.
function idsToBase64(node, path) {
  if (Array.isArray(node)) return node.map((v, i) => idsToBase64(v, `${path}[${i}]`));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k in ID_LENGTHS && path.match(/(spans|links)\[\d+\]$/)) {
      if (typeof v !== 'string' || v.length !== ID_LENGTHS[k] || !/^[0-9a-f]+$/.test(v)) {
        fail(`${path}.${k}`, `not ${ID_LENGTHS[k]} lowercase hex digits: ${JSON.stringify(v)}`);
      }
      if (/^0+$/.test(v)) fail(`${path}.${k}`, 'all-zero id');
      out[k] = Buffer.from(v, 'hex').toString('base64');
    } else {
      out[k] = idsToBase64(v, `${path}.${k}`);
    }
  }
  return out;
}

function isMessage(v) {
  return v !== null && typeof v === 'object' && typeof v.constructor.decode === 'function';
}

// Every JSON key must be a field (a data property of the generated prototype; oneof names are
// accessors and do not count).
function checkKnownFields(json, msg, path) {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    fail(path, 'expected a JSON object');
  }
  const proto = Object.getPrototypeOf(msg);
  for (const key of Object.keys(json)) {
    const d = Object.getOwnPropertyDescriptor(proto, key);
    if (!d || !('value' in d) || key === 'constructor' || key === 'toJSON') {
      fail(path, `unknown field "${key}" in ${msg.constructor.name}`);
    }
    const jv = json[key];
    const mv = msg[key];
    if (Array.isArray(jv)) {
      if (!Array.isArray(mv) || mv.length !== jv.length) fail(`${path}.${key}`, 'not a list field');
      jv.forEach((e, i) => {
        if (isMessage(mv[i])) checkKnownFields(e, mv[i], `${path}.${key}[${i}]`);
      });
    } else if (jv !== null && typeof jv === 'object') {
      if (!isMessage(mv)) fail(`${path}.${key}`, 'an object where the field is not a message');
      checkKnownFields(jv, mv, `${path}.${key}`);
    }
  }
}

function isDefault(v) {
  return v === 0 || v === '0' || v === '' || v === false || v === null ||
      (Array.isArray(v) && v.length === 0) ||
      (typeof v === 'object' && Object.values(v).every(isDefault));
}

// The round trip must give back what was sent: a value protobufjs had to coerce (a number
// for an int64, an enum by name, a string for a bool) comes back different.
function compare(sent, back, path) {
  if (Array.isArray(sent)) {
    if (!Array.isArray(back) || back.length !== sent.length) fail(path, 'list changed in the round trip');
    sent.forEach((v, i) => compare(v, back[i], `${path}[${i}]`));
    return;
  }
  if (sent !== null && typeof sent === 'object') {
    for (const [k, v] of Object.entries(sent)) {
      if (back === undefined || !(k in back)) {
        if (!isDefault(v)) fail(`${path}.${k}`, `lost in the round trip: ${JSON.stringify(v)}`);
        continue;
      }
      compare(v, back[k], `${path}.${k}`);
    }
    for (const k of Object.keys(back || {})) {
      if (!(k in sent) && !isDefault(back[k])) fail(`${path}.${k}`, 'appeared in the round trip');
    }
    return;
  }
  if (sent !== back) {
    fail(path, `changed in the round trip: ${JSON.stringify(sent)} -> ${JSON.stringify(back)}`);
  }
}

function attrMap(list, path) {
  const m = new Map();
  for (const a of list || []) {
    if (m.has(a.key)) fail(path, `duplicate attribute "${a.key}"`);
    m.set(a.key, a.value);
  }
  return m;
}

function str(v) {
  return v && typeof v.stringValue === 'string' ? v.stringValue : undefined;
}

// The semantic-convention rules of issue 16 (semconv 1.33).
function checkRules(doc, file) {
  const allKeys = new Set();
  const add = (m) => m.forEach((_, k) => allKeys.add(k));
  const spans = [];
  doc.resourceSpans.forEach((rs, i) => {
    add(attrMap(rs.resource && rs.resource.attributes, `resourceSpans[${i}].resource`));
    (rs.scopeSpans || []).forEach((ss) => (ss.spans || []).forEach((s) => spans.push(s)));
  });
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (const s of spans) {
    const p = `span "${s.name}" ${s.spanId}`;
    const a = attrMap(s.attributes, p);
    add(a);
    (s.events || []).forEach((e) => add(attrMap(e.attributes, `${p} event ${e.name}`)));
    (s.links || []).forEach((l) => add(attrMap(l.attributes, `${p} link`)));
    if (a.has('db.user')) fail(p, 'db.user is obsolete (semconv 1.33): use pgvigil.backend.user');
    const status = str(a.get('db.response.status_code'));
    if (status !== undefined) {
      if (s.kind !== SpanKind.SPAN_KIND_CLIENT) {
        fail(p, 'db.response.status_code on a span that is not a database CLIENT call');
      }
      if (str(a.get('error.type')) !== status) {
        fail(p, `error.type ${JSON.stringify(str(a.get('error.type')))} != db.response.status_code ${status}`);
      }
    }
    if (s.status && s.status.code === 2 && !a.has('error.type')) fail(p, 'ERROR status without error.type');
    if (s.name === 'pgvigil.probe' && (s.kind !== SpanKind.SPAN_KIND_INTERNAL || s.parentSpanId)) {
      fail(p, 'pgvigil.probe must be an INTERNAL root span');
    }
    const observed = a.has('pgvigil.observed') || s.name === 'pgvigil.long_running_query';
    if (observed) {
      if (s.kind !== SpanKind.SPAN_KIND_INTERNAL) fail(p, 'an observed query must be INTERNAL, not a call');
      for (const k of a.keys()) {
        if (k.startsWith('db.') || k.startsWith('server.')) fail(p, `observed query carries ${k}`);
      }
      const parent = byId.get(s.parentSpanId);
      if (parent && parent.name !== 'pgvigil.sample.activity') {
        fail(p, `observed query under ${parent.name}, not the activity sampler`);
      }
      if (!s.parentSpanId) fail(p, 'observed query without its sampler parent');
    }
    if (s.kind === SpanKind.SPAN_KIND_CLIENT && a.has('pgvigil.observed')) fail(p, 'observed CLIENT span');
  }
  // An attribute name must not also be a namespace (semconv naming rules).
  for (const k of allKeys) {
    for (const other of allKeys) {
      if (other.startsWith(k + '.')) fail(file, `attribute "${k}" is also the namespace of "${other}"`);
    }
  }
  return spans.length;
}

function checkFile(doc, file) {
  if (!Array.isArray(doc.resourceSpans)) fail(file, 'no resourceSpans list');
  const sent = idsToBase64(doc, 'request');
  const err = Request.verify(Request.fromObject(sent));
  if (err) fail(file, err);
  const decoded = Request.decode(Request.encode(Request.fromObject(sent)).finish());
  checkKnownFields(sent, decoded, 'request');
  const back = Request.toObject(decoded,
      { longs: String, enums: Number, bytes: String, json: true, defaults: false });
  compare(sent, back, 'request');
  return checkRules(doc, file);
}

// Mutations of a good export that the checker must refuse: proves it is strict.
const MUTATIONS = {
  'unknown span field': (d, s) => { s.parentSpanID = s.spanId; },
  'unknown attribute value field': (d, s) => { s.attributes.push({ key: 'x.y', value: { strValue: 'a' } }); },
  'uppercase hex id': (d, s) => { s.traceId = s.traceId.toUpperCase().replace(/^./, 'A'); },
  'base64 id': (d, s) => { s.spanId = Buffer.from(s.spanId, 'hex').toString('base64'); },
  'short span id': (d, s) => { s.spanId = s.spanId.slice(2); },
  'enum by name': (d, s) => { s.kind = 'SPAN_KIND_INTERNAL'; },
  'int64 as a JSON number': (d, s) => { s.startTimeUnixNano = Number(s.startTimeUnixNano); },
  'db.user': (d, s) => { s.attributes.push({ key: 'db.user', value: { stringValue: 'app' } }); },
  'error.type != SQLSTATE': (d, s) => {
    s.kind = 3;
    s.attributes.push({ key: 'db.response.status_code', value: { stringValue: '57P01' } },
        { key: 'error.type', value: { stringValue: 'admin_shutdown' } });
  },
  'status code on INTERNAL': (d, s) => {
    s.kind = 1;
    s.attributes.push({ key: 'db.response.status_code', value: { stringValue: '57P01' } },
        { key: 'error.type', value: { stringValue: '57P01' } });
  },
  'name is also a namespace': (d, s) => {
    s.attributes.push({ key: 'pgvigil.db_state', value: { stringValue: 'up' } },
        { key: 'pgvigil.db_state.before', value: { stringValue: 'up' } });
  },
  'observed CLIENT span': (d, s) => {
    s.kind = 3;
    s.attributes.push({ key: 'pgvigil.observed', value: { boolValue: true } });
  },
};

if (files[0] === '--self-test') {
  const good = JSON.parse(fs.readFileSync(files[1], 'utf8'));
  checkFile(JSON.parse(JSON.stringify(good)), 'unmodified');
  let refused = 0;
  const names = Object.keys(MUTATIONS);
  for (const name of names) {
    const doc = JSON.parse(JSON.stringify(good));
    const span = doc.resourceSpans[0].scopeSpans[0].spans[0];
    span.attributes = span.attributes || [];
    MUTATIONS[name](doc, span);
    try {
      checkFile(doc, name);
      console.log(`FAIL self-test: "${name}" was accepted`);
    } catch (e) {
      refused += 1;
      console.log(`ok   self-test: "${name}" refused (${e.message.slice(0, 120)})`);
    }
  }
  console.log(`${refused} passed, ${names.length - refused} failed`);
  process.exit(refused === names.length ? 0 : 1);
}

let passed = 0;
let failed = 0;
const seen = { spans: 0, links: 0, errors: 0, observed: 0 };
for (const file of files) {
  try {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    seen.spans += checkFile(doc, file);
    for (const rs of doc.resourceSpans) {
      for (const ss of rs.scopeSpans || []) {
        for (const s of ss.spans || []) {
          seen.links += (s.links || []).length;
          if (s.status && s.status.code === 2) seen.errors += 1;
          if (s.name === 'pgvigil.long_running_query') seen.observed += 1;
        }
      }
    }
    passed += 1;
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${file}: ${e.message}`);
  }
}
console.log(`decoded ${seen.spans} spans (${seen.errors} errors, ${seen.observed} observed queries, ` +
    `${seen.links} links) from ${files.length} exports`);
// The exports must have shown every shape the rules are about.
const required = { errors: seen.errors, 'observed queries': seen.observed, links: seen.links };
for (const [what, n] of Object.entries(required)) {
  if (n === 0) {
    failed += 1;
    console.log(`FAIL: no ${what} in any export; the rules were not exercised`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
