// Writes a byte-level BPE tokenizer.json with VOCAB tokens (the 256 bytes,
// then merges of an earlier token with a byte), so that every id of a
// random-weight decoder with that vocabulary turns into text and streams as
// such (bench/textgen.sh). No end-of-text token: a greedy run goes to
// max_tokens.
//   node textgen_tokenizer.js VOCAB OUT.json
'use strict';
const fs = require('fs');
const [vocabSize, out] = [Number(process.argv[2]), process.argv[3]];
const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
const byteChar = [];
let n = 0;
for (let b = 0; b < 256; b++) byteChar.push(String.fromCharCode(printable(b) ? b : 256 + n++));
const vocab = {};
const tokens = [];
byteChar.forEach((c, b) => {
  vocab[c] = b;
  tokens.push(c);
});
const merges = [];
for (let k = 1; tokens.length < vocabSize; k++) {
  const left = tokens[(k * 7919) % tokens.length];
  const right = byteChar[(k * 104729) % 256];
  const s = left + right;
  if (s in vocab || left.length > 12) continue;
  vocab[s] = tokens.length;
  tokens.push(s);
  merges.push(left + ' ' + right);
}
fs.writeFileSync(out, JSON.stringify({
  version: '1.0', added_tokens: [], pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
  model: { type: 'BPE', vocab, merges },
}));
