#!/usr/bin/env node
// Stacks ONNX TensorProto files (test_data_set_K/input_N.pb of one input)
// along their first axis into one .npy file: the calibration samples of an
// int8 deploy, `"calibration": {"<input>": "sha256:<blob of the .npy>"}`,
// whose samples lie stacked on the batch axis. Prints the input's name.
//
//   node pb_to_npy.js OUT.npy SAMPLE.pb [SAMPLE.pb...]
//
// Needs protobufjs (the ONNX Runtime peer's node_modules on NODE_PATH).
'use strict';
const fs = require('fs');
const { readTensor } = require('./gateway_bodies.js');

const DESCR = { FP32: '<f4', UINT8: '|u1', INT8: '|i1', INT32: '<i4', INT64: '<i8', FP64: '<f8' };

function main() {
  const [out, ...files] = process.argv.slice(2);
  if (!out || files.length === 0) {
    process.stderr.write('usage: node pb_to_npy.js OUT.npy SAMPLE.pb [SAMPLE.pb...]\n');
    process.exit(2);
  }
  const ts = files.map(readTensor);
  const t0 = ts[0];
  const descr = DESCR[t0.datatype];
  if (!descr) throw new Error(`${files[0]}: no .npy type for ${t0.datatype}`);
  if (t0.shape.length < 1) throw new Error(`${files[0]}: a scalar has no batch axis`);
  for (let i = 1; i < ts.length; i++) {
    const t = ts[i];
    if (t.name !== t0.name || t.datatype !== t0.datatype ||
        JSON.stringify(t.shape.slice(1)) !== JSON.stringify(t0.shape.slice(1)))
      throw new Error(`${files[i]}: not the same input, type and sample shape as ${files[0]}`);
  }
  const shape = [ts.reduce((n, t) => n + t.shape[0], 0), ...t0.shape.slice(1)];
  let hdr = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  hdr += ' '.repeat((64 - ((10 + hdr.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(hdr.length, 8);
  const parts = [pre, Buffer.from(hdr, 'latin1')];
  for (const t of ts) parts.push(Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  fs.writeFileSync(out, Buffer.concat(parts));
  process.stdout.write(`${t0.name}\n`);
}

main();
