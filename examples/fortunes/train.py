#!/usr/bin/python3
"""Trains the fortunes example: a byte-level BPE tokenizer and a small
GPT-2-architecture decoder on the quotations Debian ships in the `fortunes`
package, and writes every file in this folder.

Only needed to REGENERATE the model: rouse's build and tests use the
committed files. It needs the Debian packages python3-torch and fortunes and
the Debian interpreter:

    apt-get install python3-torch fortunes
    /usr/bin/python3 examples/fortunes/train.py [--steps N] [--minutes M]

What it does:
  * reads every fortune file of /usr/share/games/fortunes (all but the
    drawings of ascii-art), splits them into quotations at the "%" lines,
    drops the overstrike sequences some use for underlining, and keeps the
    quotations that are valid UTF-8;
  * trains a byte-level BPE tokenizer in GPT-2's format: the 256 byte tokens
    (in GPT-2's order), 767 merges learned on the pre-tokenized words
    (GPT-2's split, written out here as rouse's C tokenizer does it), and
    <|endoftext|> last: vocab.json + merges.txt, 1024 tokens;
  * trains a GPT-2-architecture decoder (scripts/models/gpt2.py: 3 layers,
    4 heads, d 128, context 128, 0.7M parameters) on the quotations joined by
    <|endoftext|>, with AdamW, on the CPU, 95 % of the quotations to train on
    and 5 % held out for the validation loss it prints;
  * exports model.onnx with a KV cache in Hugging Face's layout, and
    test_data_set_0 (a prefill of two prompts) and test_data_set_1 (one
    decode step with that past) with PyTorch's outputs, for `rouse run`;
  * writes tokenizer_cases.json (200 held-out quotations and their ids, for
    the test that rouse's C tokenizer encodes as this script did);
  * writes greedy.json: the greedy continuations of a few prompts (up to 60
    tokens, one decode step per token with the cache), which rouse's engine
    and C tokenizer must reproduce token for token (tests/text), and prints
    them.

Seeded: the split, the initialization and the batches repeat; PyTorch's CPU
kernels may still round differently on another machine or thread count.
"""
import argparse
import collections
import glob
import json
import math
import os
import random
import re
import sys
import time
import unicodedata

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "models"))
import gpt2  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
VOCAB = 1024
EOT = "<|endoftext|>"
CFG = dict(vocab=VOCAB, layers=3, heads=4, d=128, ctx=128)

# --- corpus -------------------------------------------------------------------


def quotations():
    out = []
    for path in sorted(glob.glob(os.path.join(FORTUNES, "*"))):
        name = os.path.basename(path)
        if "." in name or name == "ascii-art" or os.path.isdir(path):
            continue
        raw = open(path, "rb").read()
        raw = re.sub(rb".\x08", b"", raw)  # overstrike: "_\bX" underlines X
        for q in re.split(rb"\n%\n", raw):
            try:
                text = q.decode("utf-8").strip("\n")
            except UnicodeDecodeError:
                continue
            if text.strip() and EOT not in text:
                out.append(text)
    return out


# --- GPT-2's byte alphabet and pre-tokenizer ------------------------------------

BYTE_CP = []
_next = 256
for _b in range(256):
    if 33 <= _b <= 126 or 161 <= _b <= 172 or _b >= 174:
        BYTE_CP.append(_b)
    else:
        BYTE_CP.append(_next)
        _next += 1
BYTE_ORDER = sorted(range(256), key=lambda b: BYTE_CP[b])  # GPT-2's ids for the bytes

WHITE_SPACE = set([0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
                  + list(range(0x09, 0x0E)) + [0x20] + list(range(0x2000, 0x200B)))


def cls(ch):
    if ord(ch) in WHITE_SPACE:
        return "s"
    c = unicodedata.category(ch)[0]
    return c if c in "LN" else "o"


def pretokenize(text):
    """GPT-2's regex split, the same rules as src/text/pretok.c."""
    pieces, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "'" and i + 1 < n and text[i + 1] in "stmd":
            j = i + 2
        elif text[i] == "'" and text[i + 1:i + 3] in ("re", "ve", "ll"):
            j = i + 3
        else:
            c = cls(text[i])
            if c != "s":
                j = i + 1
                while j < n and cls(text[j]) == c:
                    j += 1
            elif text[i] == " " and i + 1 < n and cls(text[i + 1]) != "s":
                c2 = cls(text[i + 1])
                j = i + 2
                while j < n and cls(text[j]) == c2:
                    j += 1
            else:
                j = i + 1
                while j < n and cls(text[j]) == "s":
                    j += 1
                if j < n and j - i > 1:
                    j -= 1
        pieces.append(text[i:j])
        i = j
    return pieces


# --- BPE ------------------------------------------------------------------------------


def train_bpe(texts, n_merges):
    """Merges learned on word counts, the most frequent pair first (ties to
    the smaller pair of ids, for determinism); returns [(left, right)] as ids
    and the bytes of every token."""
    counts = collections.Counter()
    for t in texts:
        counts.update(pretokenize(t))
    byte_id = {b: i for i, b in enumerate(BYTE_ORDER)}
    words = [[byte_id[b] for b in w.encode()] for w in counts]
    freq = list(counts.values())
    tok_bytes = [bytes([b]) for b in BYTE_ORDER]
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for wi, w in enumerate(words):
        for p in zip(w, w[1:]):
            pairs[p] += freq[wi]
            where[p].add(wi)
    merges = []
    for _ in range(n_merges):
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], -p[0], -p[1]))
        new = len(tok_bytes)
        tok_bytes.append(tok_bytes[best[0]] + tok_bytes[best[1]])
        merges.append(best)
        for wi in list(where[best]):
            w, f = words[wi], freq[wi]
            for p in zip(w, w[1:]):
                pairs[p] -= f
                if pairs[p] <= 0:
                    del pairs[p]
            out, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and (w[k], w[k + 1]) == best:
                    out.append(new)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pairs[p] += f
                where[p].add(wi)
        del where[best]
    return merges, tok_bytes


class Encoder:
    def __init__(self, merges, tok_bytes):
        self.rank = {p: (r, 256 + r) for r, p in enumerate(merges)}
        self.byte_id = {b: i for i, b in enumerate(BYTE_ORDER)}
        self.tok_bytes = tok_bytes
        self.cache = {}

    def word(self, w):
        if w in self.cache:
            return self.cache[w]
        s = [self.byte_id[b] for b in w.encode()]
        while len(s) > 1:
            best = min(range(len(s) - 1),
                       key=lambda k: (self.rank.get((s[k], s[k + 1]), (1 << 30,))[0], k))
            m = self.rank.get((s[best], s[best + 1]))
            if m is None:
                break
            s[best:best + 2] = [m[1]]
        self.cache[w] = s
        return s

    def encode(self, text):
        return [i for w in pretokenize(text) for i in self.word(w)]

    def decode(self, ids):
        return b"".join(self.tok_bytes[i] for i in ids if i < len(self.tok_bytes)).decode(
            "utf-8", "replace")


def spell(bs):
    return "".join(chr(BYTE_CP[b]) for b in bs)


def read_tokenizer():
    """The merges and token bytes of the committed vocab.json + merges.txt."""
    vocab = json.load(open(os.path.join(HERE, "vocab.json")))
    cp_byte = {chr(c): b for b, c in enumerate(BYTE_CP)}
    tok_bytes = [None] * (len(vocab) - 1)
    for tok, i in vocab.items():
        if tok != EOT:
            tok_bytes[i] = bytes(cp_byte[ch] for ch in tok)
    lines = open(os.path.join(HERE, "merges.txt")).read().split("\n")[1:]
    merges = [tuple(vocab[t] for t in line.split(" ")) for line in lines if line]
    return merges, tok_bytes


def write_tokenizer(merges, tok_bytes):
    vocab = {spell(b): i for i, b in enumerate(tok_bytes)}
    vocab[EOT] = len(tok_bytes)
    with open(os.path.join(HERE, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(HERE, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
        for l, r in merges:
            f.write("%s %s\n" % (spell(tok_bytes[l]), spell(tok_bytes[r])))


def write_cases(enc, texts):
    """tokenizer_cases.json: held-out quotations with the ids this script's
    encoder gives them, which rouse's C tokenizer must give too (the model
    was trained on this encoder's ids)."""
    cases = [{"text": t, "ids": enc.encode(t)} for t in texts]
    with open(os.path.join(HERE, "tokenizer_cases.json"), "w") as f:
        json.dump(cases, f, ensure_ascii=False)


# --- training -------------------------------------------------------------------------


def greedy(model, ids, n, eot):
    """The argmax continuation of ids, one decode step per token with the
    KV cache, as a generator runs it: at most n tokens, without <|endoftext|>."""
    with torch.no_grad():
        x = torch.tensor([ids])
        past = model.empty_past(1)
        out = []
        pos = 0
        for _ in range(n):
            t = x.shape[1]
            mask = torch.ones(1, pos + t, dtype=torch.long)
            posids = torch.arange(pos, pos + t).unsqueeze(0)
            logits, *past = model(x, mask, posids, *past)
            pos += t
            nxt = int(logits[0, -1].argmax())
            if nxt == eot or pos >= CFG["ctx"]:
                break
            out.append(nxt)
            x = torch.tensor([[nxt]])
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=35.0, help="stop training after this long")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse-tokenizer", action="store_true",
                    help="train the model only, with the vocab.json and merges.txt here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    random.seed(0)
    torch.manual_seed(0)

    qs = quotations()
    random.shuffle(qs)
    n_val = len(qs) // 20
    val_q, train_q = qs[:n_val], qs[n_val:]
    print("corpus: %d quotations, %d bytes" % (len(qs), sum(len(q.encode()) for q in qs)))

    t0 = time.time()
    if a.reuse_tokenizer:
        merges, tok_bytes = read_tokenizer()
    else:
        merges, tok_bytes = train_bpe(train_q, VOCAB - 256 - 1)
        write_tokenizer(merges, tok_bytes)
    enc = Encoder(merges, tok_bytes)
    eot = len(tok_bytes)

    def stream(texts):
        ids = []
        for q in texts:
            ids += enc.encode(q) + [eot]
        return torch.tensor(ids)

    train_ids, val_ids = stream(train_q), stream(val_q)
    write_cases(enc, val_q[:200])
    print("tokenizer: %d tokens, %d merges, %.1fs; train %d tokens (%.2f bytes/token), validation %d"
          % (eot + 1, len(merges), time.time() - t0, len(train_ids),
             sum(len(q.encode()) + 1 for q in train_q) / len(train_ids), len(val_ids)))

    model = gpt2.GPT2(**CFG)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    ctx = CFG["ctx"]
    warm = 100

    def batch(ids, n):
        starts = torch.randint(0, len(ids) - ctx - 1, (n,))
        x = torch.stack([ids[s:s + ctx] for s in starts])
        y = torch.stack([ids[s + 1:s + ctx + 1] for s in starts])
        return x, y

    def loss_of(x, y):
        b = x.shape[0]
        mask = torch.ones(b, ctx, dtype=torch.long)
        pos = torch.arange(ctx).unsqueeze(0).expand(b, ctx)
        logits = model(x, mask, pos, *model.empty_past(b))[0]
        return F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))

    def val_loss():
        model.eval()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            tot = 0.0
            for _ in range(8):
                starts = torch.randint(0, len(val_ids) - ctx - 1, (32,), generator=g)
                x = torch.stack([val_ids[s:s + ctx] for s in starts])
                y = torch.stack([val_ids[s + 1:s + ctx + 1] for s in starts])
                tot += float(loss_of(x, y))
        model.train()
        return tot / 8

    print("model: %.2fM parameters; training up to %d steps or %.0f minutes"
          % (n_params / 1e6, a.steps, a.minutes))
    t0 = time.time()
    model.train()
    step = 0
    for step in range(1, a.steps + 1):
        # Cosine decay over the steps or the time allowed, whichever ends first.
        progress = min(1.0, max(step / a.steps, (time.time() - t0) / (a.minutes * 60)))
        lr = 3e-3 * min(1.0, step / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(train_ids, a.batch)
        loss = loss_of(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            print("step %d: loss %.3f, %.0fs" % (step, float(loss), time.time() - t0), flush=True)
        if progress >= 1.0:
            break
    model.eval()
    print("trained %d steps in %.0fs: validation loss %.3f nats/token" % (step, time.time() - t0, val_loss()))

    # Round the weights to what the ONNX file holds, then export and write
    # the test sets from the same module.
    gpt2.export_onnx(model, os.path.join(HERE, "model.onnx"))
    prompts = ["The meaning of life is", "A man walks into a bar"]
    ids = [enc.encode(p) for p in prompts]
    n = min(len(i) for i in ids)
    gpt2.write_test_data(model, HERE, torch.tensor([i[-n:] for i in ids]))
    cases = []
    for p in prompts + ["Q: Why did the chicken cross the road?\nA:", "Linux is", "Love is"]:
        ids = enc.encode(p)
        out = greedy(model, ids, 60, eot)
        text = enc.decode(out)
        cases.append({"prompt": p, "prompt_ids": ids, "ids": out, "text": text})
        print("greedy: %r -> %r" % (p, text))
    with open(os.path.join(HERE, "greedy.json"), "w") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
