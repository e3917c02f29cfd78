#!/usr/bin/env node
// Turns ONNX TensorProto files (test_data_set_K/input_N.pb) into the two
// Open Inference Protocol v2 request bodies the gateway benchmark sends:
//   OUT/body.json        JSON request, flat `data` arrays
//   OUT/body.bin         binary data extension: JSON header, then raw little-endian
//                        tensors; asks for binary outputs (binary_data_output)
//   OUT/body.bin.hlen    the header's byte count (Inference-Header-Content-Length)
// Tensor names come from the TensorProto `name` field, which the backend-test
// layout sets to the graph input's name.
//
//   node gateway_bodies.js OUT_DIR INPUT.pb [INPUT.pb...]
//
// Needs protobufjs (the ONNX Runtime peer's node_modules on NODE_PATH).
'use strict';
const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');

const PROTO = `
syntax = "proto2";
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
}`;
const TensorProto = protobuf.parse(PROTO).root.lookupType('TensorProto');

// ONNX data_type -> [OIP datatype, TypedArray, typed field of TensorProto]
const DT = {
  1: ['FP32', Float32Array, 'floatData'],
  2: ['UINT8', Uint8Array, 'int32Data'],
  3: ['INT8', Int8Array, 'int32Data'],
  6: ['INT32', Int32Array, 'int32Data'],
  7: ['INT64', BigInt64Array, 'int64Data'],
  9: ['BOOL', Uint8Array, 'int32Data'],
  11: ['FP64', Float64Array, 'doubleData'],
};

function readTensor(file) {
  const msg = TensorProto.decode(fs.readFileSync(file));
  const spec = DT[msg.dataType];
  if (!spec) throw new Error(`${file}: unsupported TensorProto data_type ${msg.dataType}`);
  const [datatype, Arr, field] = spec;
  const dims = msg.dims.map(Number);
  let values;
  if (msg.rawData && msg.rawData.length > 0) {
    const raw = Uint8Array.from(msg.rawData); // aligned copy
    values = new Arr(raw.buffer, 0, raw.length / Arr.BYTES_PER_ELEMENT);
  } else {
    const src = msg[field];
    values = Arr === BigInt64Array ? BigInt64Array.from(src.map((v) => BigInt(v.toString())))
                                   : Arr.from(src);
  }
  if (!msg.name) throw new Error(`${file}: the tensor has no name`);
  return { name: msg.name, datatype, shape: dims, values };
}

// JSON numbers: float32 values with 9 significant digits round-trip exactly.
function jsonData(t) {
  const out = new Array(t.values.length);
  for (let i = 0; i < t.values.length; i++) {
    const v = t.values[i];
    if (typeof v === 'bigint') out[i] = v.toString();
    else if (t.datatype === 'BOOL') out[i] = v ? 'true' : 'false';
    else if (t.datatype === 'FP32') out[i] = String(parseFloat(v.toPrecision(9)));
    else out[i] = String(v);
  }
  return '[' + out.join(',') + ']';
}

function main() {
  const [outDir, ...files] = process.argv.slice(2);
  if (!outDir || files.length === 0) {
    process.stderr.write('usage: node gateway_bodies.js OUT_DIR INPUT.pb [INPUT.pb...]\n');
    process.exit(2);
  }
  const tensors = files.map(readTensor);
  const jsonInputs = tensors.map((t) =>
    `{"name":${JSON.stringify(t.name)},"shape":${JSON.stringify(t.shape)},` +
    `"datatype":"${t.datatype}","data":${jsonData(t)}}`);
  fs.writeFileSync(path.join(outDir, 'body.json'), `{"id":"bench","inputs":[${jsonInputs.join(',')}]}`);

  const header = Buffer.from(JSON.stringify({
    id: 'bench',
    inputs: tensors.map((t) => ({
      name: t.name, shape: t.shape, datatype: t.datatype,
      parameters: { binary_data_size: t.values.byteLength },
    })),
    parameters: { binary_data_output: true },
  }));
  const parts = [header];
  for (const t of tensors)
    parts.push(Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  fs.writeFileSync(path.join(outDir, 'body.bin'), Buffer.concat(parts));
  fs.writeFileSync(path.join(outDir, 'body.bin.hlen'), `${header.length}\n`);
}

module.exports = { readTensor };
if (require.main === module) main();
