// Writes what the C tokenizer is checked against, from GPT-2's encoding in
// js-tiktoken (the reference):
//   OUT/vocab.json, OUT/merges.txt      GPT-2's files, rebuilt from the ranks
//   OUT/tokenizer.json                  the same in Hugging Face's format
//   OUT/tokenizer_pairs.json            ... with merges as ["left", "right"]
//   OUT/cases.json                      [{"text": ..., "ids": [...]}, ...]
// The cases: every string of corpus.json, every line and the whole text of
// the files named after OUT, and random strings over an alphabet of hard
// cases (seeded, so a failure repeats).
//   node reference.mjs OUT [FILE...]
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tiktoken } from "js-tiktoken/lite";
import gpt2 from "js-tiktoken/ranks/gpt2";

const here = dirname(fileURLToPath(import.meta.url));
const [out, ...files] = process.argv.slice(2);
const enc = new Tiktoken(gpt2);

// --- GPT-2's byte alphabet and the ranks -------------------------------------
const byteCp = [];
{
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    byteCp.push(self ? b : next++);
  }
}
const spell = (bytes) => String.fromCodePoint(...Array.from(bytes, (b) => byteCp[b]));

const ranks = new Map(); // "b,b,b" -> rank
const tokens = [];       // rank -> bytes
for (const line of gpt2.bpe_ranks.split("\n").filter(Boolean)) {
  const [, offsetStr, ...toks] = line.split(" ");
  const offset = Number.parseInt(offsetStr, 10);
  toks.forEach((t, i) => {
    const bytes = Uint8Array.from(Buffer.from(t, "base64"));
    ranks.set(bytes.join(","), offset + i);
    tokens[offset + i] = bytes;
  });
}

// The merge that makes each token of two bytes or more: BPE over its bytes
// with only the tokens ranked below it leaves exactly two parts.
function splitOf(bytes, limit) {
  let parts = Array.from(bytes, (_, i) => [i, i + 1]);
  for (;;) {
    let best = null;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(bytes.slice(parts[i][0], parts[i + 1][1]).join(","));
      if (r !== undefined && r < limit && (best === null || r < best[0])) best = [r, i];
    }
    if (best === null) return parts;
    const i = best[1];
    parts.splice(i, 2, [parts[i][0], parts[i + 1][1]]);
  }
}
const vocab = {};
const merges = [];
tokens.forEach((bytes, rank) => {
  vocab[spell(bytes)] = rank;
  if (bytes.length < 2) return;
  const parts = splitOf(bytes, rank);
  if (parts.length !== 2) throw new Error(`token ${rank} does not split in two`);
  merges.push([spell(bytes.slice(...parts[0])), spell(bytes.slice(...parts[1]))]);
});
for (const [text, id] of Object.entries(gpt2.special_tokens)) vocab[text] = id;

writeFileSync(join(out, "vocab.json"), JSON.stringify(vocab));
writeFileSync(join(out, "merges.txt"), "#version: 0.2\n" + merges.map((m) => m.join(" ")).join("\n") + "\n");
const hf = (pairs) => ({
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: Object.entries(gpt2.special_tokens).map(([content, id]) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true,
  })),
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "",
    end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab,
    merges: pairs ? merges : merges.map((m) => m.join(" ")),
  },
});
writeFileSync(join(out, "tokenizer.json"), JSON.stringify(hf(false)));
writeFileSync(join(out, "tokenizer_pairs.json"), JSON.stringify(hf(true)));

// --- the cases ---------------------------------------------------------------
const texts = JSON.parse(readFileSync(join(here, "corpus.json"), "utf8"));
for (const f of files) {
  const whole = readFileSync(f, "utf8");
  texts.push(whole, ...whole.split("\n"));
}

// Random strings over code points of every class the pre-tokenizer tells
// apart, with runs (so words, numbers and white-space runs form), seeded.
// Left out: U+0085 and U+FEFF, where JavaScript's \s differs from Unicode's
// White_Space (the unit test covers them), and code points assigned after
// Unicode 14, the version of the C tokenizer's class table.
let seed = 20;
const rand = (n) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const alphabet = [
  ..." \t\n\r\v\f", "\u00a0", "\u1680", "\u2003", "\u2028", "\u202f", "\u3000",
  ..."abcxyzABCXYZ", ..."0123456789", ..."'sStmdrevl", ..."!?.,;:-_()[]{}<>@#$%^&*+=/\\|~`\"",
  ..."éüßñçøÅ", "e\u0301", "a\u0308\u0323", ..."αβγΩЖжщ", ..."שלוםمرحبا", ..."नमस्ते", ..."ภาษาไทย",
  ..."中文字符日本語ひらがなカタカナ한국어", ..."²³¹½Ⅻⅷ٣४０９", ..."€£¥©®™°±×÷∑∞≠≤",
  "😀", "👍🏽", "👩‍👩‍👧", "🇫🇷", "❤️", "\u200b", "\u200d", "\u0000", "\u0001", "\u007f",
  "\u{1d400}", "\u{10348}", "\u{20000}",
];
for (let n = 0; n < 3000; n++) {
  let s = "";
  const len = 1 + rand(40);
  for (let i = 0; i < len; i++) {
    const c = alphabet[rand(alphabet.length)];
    s += c.repeat(rand(4) === 0 ? 1 + rand(5) : 1);
  }
  texts.push(s);
}

const cases = texts.map((text) => ({ text, ids: enc.encode(text, [], []) }));
writeFileSync(join(out, "cases.json"), JSON.stringify(cases));
console.log(`reference: ${cases.length} cases, ${cases.reduce((a, c) => a + c.ids.length, 0)} tokens, ${merges.length} merges`);
