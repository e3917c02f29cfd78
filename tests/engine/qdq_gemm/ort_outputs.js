#!/usr/bin/env node
// ONNX Runtime's outputs for the QDQ Gemm cases: for every DIR/CASE holding
// model.onnx and x.npy (written by `engine_qdq_gemm --write DIR`), runs the
// model on onnxruntime-node's CPU provider and writes each output as
// DIR/CASE/<output name>.npy.
//
//   NODE_PATH=PEER/node_modules node ort_outputs.js DIR
//
// (PEER: the folder bench/ort_peer.sh installs onnxruntime-node into.)
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const DTYPES = { '|u1': 'uint8', '|i1': 'int8', '<f4': 'float32' };
const DESCR = { uint8: '|u1', int8: '|i1', float32: '<f4' };
const ARRAYS = { uint8: Uint8Array, int8: Int8Array, float32: Float32Array };

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim())
    .filter((s) => s.length).map(Number);
  const type = DTYPES[descr];
  if (!type) throw new Error(`${file}: dtype ${descr} not handled`);
  const Arr = ARRAYS[type];
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Arr(n);
  new Uint8Array(data.buffer).set(b.subarray(start, start + n * Arr.BYTES_PER_ELEMENT));
  return new ort.Tensor(type, data, shape);
}

function writeNpy(file, t) {
  const descr = DESCR[t.type];
  if (!descr) throw new Error(`${file}: output type ${t.type} not handled`);
  const dims = t.dims.length === 1 ? `${t.dims[0]},` : t.dims.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), data]));
}

async function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node ort_outputs.js DIR');
    process.exit(2);
  }
  for (const name of fs.readdirSync(dir).sort()) {
    const cdir = path.join(dir, name);
    if (!fs.existsSync(path.join(cdir, 'model.onnx'))) continue;
    const s = await ort.InferenceSession.create(path.join(cdir, 'model.onnx'), {
      intraOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    const out = await s.run({ [s.inputNames[0]]: readNpy(path.join(cdir, 'x.npy')) });
    for (const o of s.outputNames) writeNpy(path.join(cdir, `${o}.npy`), out[o]);
    console.log(`${name}: ${s.outputNames.map((o) => `${o} ${out[o].type}[${out[o].dims}]`).join(', ')}`);
  }
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
