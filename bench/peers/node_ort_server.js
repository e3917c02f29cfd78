#!/usr/bin/env node
// The peer of the gateway benchmark: the HTTP inference server many teams
// write by hand. One Node.js process, http.createServer, one ONNX Runtime
// InferenceSession (onnxruntime-node, CPU execution provider, 1 intra-op and
// 1 inter-op thread, sequential execution, all graph optimizations) created
// once at start, serving the Open Inference Protocol v2 subset the benchmark
// uses:
//   GET  /v2/health/ready
//   POST /v2/models/{name}[/versions/{v}]/infer
//        JSON tensors (flat or nested `data`) or the binary data extension
//        (Inference-Header-Content-Length, binary_data_size); answers JSON, or
//        binary outputs when the request asks with binary_data_output or an
//        output's binary_data parameter.
// Errors are 4xx/5xx with {"error": "..."}. Listens on loopback only and
// prints "listening on ADDR:PORT" once it accepts connections.
//
//   node node_ort_server.js MODEL.onnx [--name NAME] [--port N]
//
// Needs onnxruntime-node on NODE_PATH (the peer's node_modules).
'use strict';
const http = require('http');
const path = require('path');
const ort = require('onnxruntime-node');

// OIP datatype <-> [ORT type, TypedArray]
const OIP = {
  BOOL: ['bool', Uint8Array],
  UINT8: ['uint8', Uint8Array],
  UINT16: ['uint16', Uint16Array],
  UINT32: ['uint32', Uint32Array],
  UINT64: ['uint64', BigUint64Array],
  INT8: ['int8', Int8Array],
  INT16: ['int16', Int16Array],
  INT32: ['int32', Int32Array],
  INT64: ['int64', BigInt64Array],
  FP16: ['float16', Uint16Array],
  FP32: ['float32', Float32Array],
  FP64: ['float64', Float64Array],
};
const FROM_ORT = Object.fromEntries(Object.entries(OIP).map(([k, v]) => [v[0], k]));

class BadRequest extends Error {}

function parseArgs(argv) {
  const a = { model: null, name: null, port: 0 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--name') a.name = argv[++i];
    else if (argv[i] === '--port') a.port = Number(argv[++i]);
    else if (!a.model) a.model = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!a.model) throw new Error('usage: node node_ort_server.js MODEL.onnx [--name NAME] [--port N]');
  if (!a.name) a.name = path.basename(path.dirname(path.resolve(a.model)));
  return a;
}

function flatten(data, out) {
  for (const v of data) {
    if (Array.isArray(v)) flatten(v, out);
    else out.push(v);
  }
  return out;
}

function inputTensor(spec, binary, offset) {
  const dt = OIP[spec.datatype];
  if (!dt) throw new BadRequest(`input '${spec.name}': unsupported datatype ${spec.datatype}`);
  const [type, Arr] = dt;
  const shape = spec.shape;
  if (!Array.isArray(shape)) throw new BadRequest(`input '${spec.name}': missing shape`);
  const count = shape.reduce((n, d) => n * d, 1);
  const size = spec.parameters && spec.parameters.binary_data_size;
  let values;
  if (size !== undefined) {
    if (offset + size > binary.length) throw new BadRequest(`input '${spec.name}': binary data past the body`);
    // Copy: the body's bytes need not be aligned for the element type.
    const bytes = new Uint8Array(binary.subarray(offset, offset + size));
    values = new Arr(bytes.buffer, 0, size / Arr.BYTES_PER_ELEMENT);
  } else {
    if (!Array.isArray(spec.data)) throw new BadRequest(`input '${spec.name}': missing data`);
    const flat = flatten(spec.data, []);
    values = Arr === BigInt64Array || Arr === BigUint64Array ? Arr.from(flat, (v) => BigInt(v))
                                                             : Arr.from(flat, Number);
  }
  if (values.length !== count)
    throw new BadRequest(`input '${spec.name}': ${values.length} elements for shape [${shape}]`);
  return { tensor: new ort.Tensor(type, values, shape), used: size || 0 };
}

async function infer(session, name, headers, body) {
  const hlen = headers['inference-header-content-length'];
  const jsonLen = hlen === undefined ? body.length : Number(hlen);
  if (!(jsonLen >= 0 && jsonLen <= body.length)) throw new BadRequest('bad Inference-Header-Content-Length');
  let request;
  try {
    request = JSON.parse(body.subarray(0, jsonLen).toString('utf8'));
  } catch (e) {
    throw new BadRequest(`malformed JSON: ${e.message}`);
  }
  if (!Array.isArray(request.inputs)) throw new BadRequest("missing 'inputs'");
  const binary = body.subarray(jsonLen);
  const feeds = {};
  let offset = 0;
  for (const spec of request.inputs) {
    const { tensor, used } = inputTensor(spec, binary, offset);
    feeds[spec.name] = tensor;
    offset += used;
  }
  const wanted = Array.isArray(request.outputs) && request.outputs.length > 0
    ? request.outputs.map((o) => o.name) : session.outputNames;
  const results = await session.run(feeds, wanted);

  const allBinary = !!(request.parameters && request.parameters.binary_data_output);
  const outputs = [];
  const chunks = [];
  for (const oname of wanted) {
    const t = results[oname];
    const o = { name: oname, datatype: FROM_ORT[t.type] || t.type, shape: t.dims };
    const ospec = (request.outputs || []).find((x) => x.name === oname);
    const bin = ospec && ospec.parameters && ospec.parameters.binary_data !== undefined
      ? ospec.parameters.binary_data : allBinary;
    if (bin) {
      const d = t.data;
      o.parameters = { binary_data_size: d.byteLength };
      chunks.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    } else {
      o.data = Array.from(t.data, (v) => (typeof v === 'bigint' ? Number(v) : v));
    }
    outputs.push(o);
  }
  const reply = { model_name: name, model_version: '1', outputs };
  if (request.id !== undefined) reply.id = request.id;
  const head = Buffer.from(JSON.stringify(reply));
  if (chunks.length === 0) return { headers: { 'Content-Type': 'application/json' }, body: head };
  return {
    headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) },
    body: Buffer.concat([head, ...chunks]),
  };
}

function send(res, status, headers, body) {
  res.writeHead(status, { ...headers, 'Content-Length': body.length });
  res.end(body);
}

function sendError(res, status, msg) {
  send(res, status, { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({ error: msg })));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inferPath = new RegExp(`^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$`);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/v2/health/ready' || req.url === '/v2/health/live')) {
      send(res, 200, { 'Content-Type': 'application/json' }, Buffer.from('{"ready":true}'));
      return;
    }
    const m = inferPath.exec(req.url);
    if (!m || req.method !== 'POST') {
      sendError(res, 404, 'no such endpoint');
      return;
    }
    if (decodeURIComponent(m[1]) !== args.name) {
      sendError(res, 404, `no model named '${m[1]}'`);
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      infer(session, args.name, req.headers, Buffer.concat(chunks)).then(
        (r) => send(res, 200, r.headers, r.body),
        (e) => sendError(res, e instanceof BadRequest ? 400 : 500, e.message));
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(args.port, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`listening on ${a.address}:${a.port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`node_ort_server: ${e.message}\n`);
  process.exit(1);
});
