/*
 * Loading a tokenizer: Hugging Face's tokenizer.json, or GPT-2's vocab.json
 * and merges.txt, both untrusted bytes.
 *
 * Both formats write tokens in GPT-2's byte-to-unicode alphabet: each of the
 * 256 bytes is one printable code point (bytes that are printable Latin-1
 * stand for themselves, the others are U+0100 onwards in byte order), so a
 * token of any bytes is a string of such code points. A token string holding
 * a code point outside that alphabet (an added special token) stands for its
 * own UTF-8 bytes. The loader turns every token into its bytes, finds the
 * ids of the 256 single bytes and resolves each merge "left right" to the ids
 * of its two sides and of their concatenation, all of which must be in the
 * vocabulary, so the encoder never meets a token it cannot name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "text/tokenizer.h"
#include "text/tokenizer_int.h"
#include "text/utf8.h"

/* A token as the files write it (in the byte alphabet), with its id. */
typedef struct entry {
    const char *s;
    size_t len;
    int32_t id;
    bool raw; /* an added token: its string is its bytes */
} entry;

typedef struct builder {
    entry *tab; /* string -> entry, open addressing; s == NULL is empty */
    size_t mask;
    entry *list; /* in insertion order */
    size_t n, cap;
    uint32_t byte_cp[256]; /* byte -> code point of the alphabet */
    int16_t cp_byte[324];  /* code point -> byte, -1 if not in the alphabet */
    rouse_errbuf *eb;
} builder;

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void alphabet_init(builder *b)
{
    int next = 256;
    for (int i = 0; i < 324; i++)
        b->cp_byte[i] = -1;
    for (int c = 0; c < 256; c++) {
        bool self = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174);
        b->byte_cp[c] = self ? (uint32_t)c : (uint32_t)next++;
        b->cp_byte[b->byte_cp[c]] = (int16_t)c;
    }
}

static entry *find(const builder *b, const char *s, size_t len)
{
    if (!b->tab) return NULL;
    for (size_t h = fnv1a(s, len) & b->mask;; h = (h + 1) & b->mask) {
        entry *e = &b->tab[h];
        if (!e->s) return NULL;
        if (e->len == len && memcmp(e->s, s, len) == 0) return e;
    }
}

static int grow(builder *b)
{
    size_t size = b->tab ? 2 * (b->mask + 1) : 1024;
    entry *tab = calloc(size, sizeof(*tab));
    if (!tab) return ROUSE_ENOMEM;
    for (size_t i = 0; b->tab && i <= b->mask; i++) {
        if (!b->tab[i].s) continue;
        size_t h = fnv1a(b->tab[i].s, b->tab[i].len) & (size - 1);
        while (tab[h].s)
            h = (h + 1) & (size - 1);
        tab[h] = b->tab[i];
    }
    free(b->tab);
    b->tab = tab;
    b->mask = size - 1;
    return 0;
}

/* Adds token s with id; a string already there keeps its first id. */
static int add(builder *b, const char *s, size_t len, int64_t id, bool raw, const char *where)
{
    if (id < 0 || id >= TOK_MAX_VOCAB)
        return rouse_err_set(b->eb, ROUSE_EFORMAT, "%s: id %lld out of range [0, %d)", where,
                             (long long)id, TOK_MAX_VOCAB);
    if (find(b, s, len)) return 0;
    if ((b->n + 1) * 2 > (b->tab ? b->mask + 1 : 0) && grow(b) < 0) goto out_nomem;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1024;
        entry *l = realloc(b->list, cap * sizeof(*l));
        if (!l) goto out_nomem;
        b->list = l;
        b->cap = cap;
    }
    entry e = {s, len, (int32_t)id, raw};
    size_t h = fnv1a(s, len) & b->mask;
    while (b->tab[h].s)
        h = (h + 1) & b->mask;
    b->tab[h] = e;
    b->list[b->n++] = e;
    return 0;
out_nomem:
    return rouse_err_set(b->eb, ROUSE_ENOMEM, "out of memory loading the vocabulary");
}

static void builder_fini(builder *b)
{
    free(b->tab);
    free(b->list);
}

/* The bytes a token string stands for, into out (room for len bytes: a code
 * point of the alphabet is at least one byte and stands for one); returns
 * their count, or -1 when the string holds a code point outside the alphabet. */
static long token_bytes(const builder *b, const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t k;
        uint32_t cp = tok_utf8_at(s, len, i, &k);
        if (cp >= 324 || b->cp_byte[cp] < 0) return -1;
        out[n++] = (char)b->cp_byte[cp];
        i += k;
    }
    return (long)n;
}

/* Builds the tokenizer's id -> bytes tables from the entries. */
static int build_vocab(builder *b, tok_tokenizer *t)
{
    size_t n_vocab = 0, total = 0;
    for (size_t i = 0; i < b->n; i++) {
        if ((size_t)b->list[i].id + 1 > n_vocab) n_vocab = (size_t)b->list[i].id + 1;
        total += b->list[i].len;
    }
    if (n_vocab == 0) return rouse_err_set(b->eb, ROUSE_EFORMAT, "the vocabulary is empty");
    if (total > UINT32_MAX - 1)
        return rouse_err_set(b->eb, ROUSE_ETOOBIG, "the vocabulary's tokens hold %zu bytes", total);
    t->n_vocab = n_vocab;
    t->tok_off = calloc(n_vocab, sizeof(*t->tok_off));
    t->tok_len = malloc(n_vocab * sizeof(*t->tok_len));
    t->bytes = malloc(total + 1);
    if (!t->tok_off || !t->tok_len || !t->bytes)
        return rouse_err_set(b->eb, ROUSE_ENOMEM, "out of memory for a vocabulary of %zu", n_vocab);
    for (size_t i = 0; i < n_vocab; i++)
        t->tok_len[i] = TOK_ABSENT;
    size_t at = 0;
    for (size_t i = 0; i < b->n; i++) {
        const entry *e = &b->list[i];
        if (t->tok_len[e->id] != TOK_ABSENT)
            return rouse_err_set(b->eb, ROUSE_EFORMAT,
                                 "id %d is given to two tokens ('%.*s' and another)", (int)e->id,
                                 (int)(e->len > 40 ? 40 : e->len), e->s);
        long n = e->raw ? -1 : token_bytes(b, e->s, e->len, t->bytes + at);
        if (n < 0) {
            memcpy(t->bytes + at, e->s, e->len);
            n = (long)e->len;
        }
        t->tok_off[e->id] = (uint32_t)at;
        t->tok_len[e->id] = (uint32_t)n;
        at += (size_t)n;
    }
    t->bytes_len = at;
    for (int c = 0; c < 256; c++) {
        char s[4];
        size_t k = tok_utf8_put(b->byte_cp[c], s);
        const entry *e = find(b, s, k);
        if (!e)
            return rouse_err_set(b->eb, ROUSE_EFORMAT,
                                 "the vocabulary has no token for byte 0x%02x ('%.*s'): byte-level "
                                 "BPE needs all 256",
                                 c, (int)k, s);
        t->byte_id[c] = e->id;
    }
    static const char *const eos_names[] = {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"};
    t->eos = -1;
    for (size_t i = 0; i < sizeof(eos_names) / sizeof(eos_names[0]) && t->eos < 0; i++) {
        const entry *e = find(b, eos_names[i], strlen(eos_names[i]));
        if (e) t->eos = e->id;
    }
    return 0;
}

static int merges_alloc(tok_tokenizer *t, size_t n, rouse_errbuf *eb)
{
    size_t size = 16;
    while (size < 2 * n + 2)
        size *= 2;
    t->merges = malloc(size * sizeof(*t->merges));
    if (!t->merges) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for %zu merges", n);
    for (size_t i = 0; i < size; i++)
        t->merges[i].key = UINT64_MAX;
    t->merge_mask = size - 1;
    return 0;
}

/* Records merge number `rank` of the two token strings; where names it in
 * errors. A pair merged twice keeps its first (lowest) rank. */
static int add_merge(builder *b, tok_tokenizer *t, const char *l, size_t l_len, const char *r,
                     size_t r_len, const char *where)
{
    const entry *el = find(b, l, l_len), *er = find(b, r, r_len);
    if (!el || !er)
        return rouse_err_set(b->eb, ROUSE_EFORMAT, "%s: token '%.*s' is not in the vocabulary",
                             where, (int)((el ? r_len : l_len) > 40 ? 40 : (el ? r_len : l_len)),
                             el ? r : l);
    char stack[256], *cat = stack;
    if (l_len + r_len > sizeof(stack) && !(cat = malloc(l_len + r_len)))
        return rouse_err_set(b->eb, ROUSE_ENOMEM, "out of memory");
    memcpy(cat, l, l_len);
    memcpy(cat + l_len, r, r_len);
    const entry *em = find(b, cat, l_len + r_len);
    if (cat != stack) free(cat);
    if (!em)
        return rouse_err_set(b->eb, ROUSE_EFORMAT,
                             "%s: the merged token '%.*s%.*s' is not in the vocabulary", where,
                             (int)(l_len > 40 ? 40 : l_len), l, (int)(r_len > 40 ? 40 : r_len), r);
    /* The merged token must be the two sides' bytes, longer than either: an
     * added token of the same spelling that is not byte-level is refused. */
    size_t ll = t->tok_len[el->id], rl = t->tok_len[er->id], ml = t->tok_len[em->id];
    if (ml != ll + rl || ll == 0 || rl == 0 ||
        memcmp(t->bytes + t->tok_off[em->id], t->bytes + t->tok_off[el->id], ll) != 0 ||
        memcmp(t->bytes + t->tok_off[em->id] + ll, t->bytes + t->tok_off[er->id], rl) != 0)
        return rouse_err_set(b->eb, ROUSE_EFORMAT,
                             "%s: the merged token is not its two sides' bytes", where);
    uint64_t key = ((uint64_t)(uint32_t)el->id << 32) | (uint32_t)er->id;
    size_t h;
    for (h = tok_merge_hash(key) & t->merge_mask; t->merges[h].key != UINT64_MAX;
         h = (h + 1) & t->merge_mask)
        if (t->merges[h].key == key) return 0;
    t->merges[h] = (tok_merge){key, (int32_t)t->n_merges, em->id};
    t->n_merges++;
    return 0;
}

static int tokenizer_new(tok_tokenizer **out, rouse_errbuf *eb)
{
    *out = calloc(1, sizeof(**out));
    if (!*out) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    (*out)->eos = -1;
    return 0;
}

/* Adds the members of a vocabulary object (token -> id). */
static int add_vocab(builder *b, const json_value *vocab, const char *where)
{
    char w[96];
    if (!vocab || vocab->type != JSON_OBJECT)
        return rouse_err_set(b->eb, ROUSE_EFORMAT, "%s: expected an object of token -> id, got %s",
                             where, vocab ? json_type_name(vocab->type) : "nothing");
    for (size_t i = 0; i < vocab->u.obj.n; i++) {
        const json_member *m = &vocab->u.obj.members[i];
        int64_t id;
        snprintf(w, sizeof(w), "%s['%.40s']", where, m->key);
        if (!json_as_int64(m->value, &id))
            return rouse_err_set(b->eb, ROUSE_EFORMAT, "%s: the id is not an integer", w);
        if (find(b, m->key, m->key_len))
            return rouse_err_set(b->eb, ROUSE_EFORMAT, "%s: the token appears twice", w);
        int rc = add(b, m->key, m->key_len, id, false, w);
        if (rc < 0) return rc;
    }
    return 0;
}

int tok_load_gpt2(const char *vocab, size_t vocab_len, const char *merges, size_t merges_len,
                  tok_tokenizer **out, rouse_errbuf *eb)
{
    rouse_arena arena;
    json_value *root;
    builder b = {.eb = eb};
    tok_tokenizer *t = NULL;
    char where[64];
    int rc;

    *out = NULL;
    rouse_arena_init(&arena, 0);
    alphabet_init(&b);
    if ((rc = json_parse(vocab, vocab_len, &arena, &root, eb)) < 0) {
        rouse_err_wrap(eb, rc, "vocab.json");
        goto out_fini;
    }
    if ((rc = add_vocab(&b, root, "vocab.json")) < 0) goto out_fini;
    if ((rc = tokenizer_new(&t, eb)) < 0) goto out_fini;
    if ((rc = build_vocab(&b, t)) < 0) goto out_free;

    /* Count the lines first to size the merge table. */
    size_t n_lines = 1;
    for (size_t i = 0; i < merges_len; i++)
        n_lines += merges[i] == '\n';
    if ((rc = merges_alloc(t, n_lines, eb)) < 0) goto out_free;
    size_t line = 0;
    for (size_t i = 0; i < merges_len;) {
        const char *s = merges + i, *nl = memchr(s, '\n', merges_len - i);
        size_t len = nl ? (size_t)(nl - s) : merges_len - i;
        i += len + (nl != NULL);
        line++;
        if (len && s[len - 1] == '\r') len--;
        if (len == 0) continue;
        if (line == 1 && len >= 8 && memcmp(s, "#version", 8) == 0) continue;
        snprintf(where, sizeof(where), "merges.txt line %zu", line);
        const char *sp = memchr(s, ' ', len);
        if (!sp || sp == s || sp == s + len - 1 ||
            memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s))) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "%s: expected two tokens separated by one space",
                               where);
            goto out_free;
        }
        if ((rc = add_merge(&b, t, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp + 1 - s),
                            where)) < 0)
            goto out_free;
    }
    builder_fini(&b);
    rouse_arena_fini(&arena);
    *out = t;
    return 0;

out_free:
    tok_free(t);
out_fini:
    builder_fini(&b);
    rouse_arena_fini(&arena);
    return rc;
}

/* Refuses a tokenizer.json part rouse does not implement, naming it. */
static int check_parts(const json_value *root, bool *add_prefix_space, rouse_errbuf *eb)
{
    const json_value *v = json_get(root, "normalizer");
    if (v && v->type != JSON_NULL)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "normalizer: only null is supported (byte-level BPE)");
    const json_value *pre = json_get(root, "pre_tokenizer");
    const char *type = json_as_string(json_get(pre, "type"));
    if (!type || strcmp(type, "ByteLevel") != 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "pre_tokenizer: only type \"ByteLevel\" is supported, got %s%.40s%s",
                             type ? "\"" : "",
                             type  ? type
                             : pre ? json_type_name(pre->type)
                                   : "nothing",
                             type ? "\"" : "");
    bool b = true;
    if ((v = json_get(pre, "use_regex")) && (!json_as_bool(v, &b) || !b))
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "pre_tokenizer.use_regex: only true is supported");
    *add_prefix_space = false;
    if ((v = json_get(pre, "add_prefix_space")) && !json_as_bool(v, add_prefix_space))
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "pre_tokenizer.add_prefix_space: expected a boolean");
    const json_value *model = json_get(root, "model");
    if (!model || model->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EFORMAT, "model: expected an object");
    type = json_as_string(json_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "model.type: only \"BPE\" is supported, got \"%.40s\"", type);
    static const char *const empty_strings[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        v = json_get(model, empty_strings[i]);
        const char *s = json_as_string(v);
        if (v && v->type != JSON_NULL && (!s || *s))
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "model.%s: only null or \"\" is supported",
                                 empty_strings[i]);
    }
    static const char *const false_flags[] = {"byte_fallback", "ignore_merges"};
    for (size_t i = 0; i < 2; i++) {
        v = json_get(model, false_flags[i]);
        if (v && v->type != JSON_NULL && v->type != JSON_FALSE)
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "model.%s: only false is supported",
                                 false_flags[i]);
    }
    double d;
    if ((v = json_get(model, "dropout")) && v->type != JSON_NULL &&
        (!json_as_double(v, &d) || d != 0))
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "model.dropout: only null is supported");
    return 0;
}

int tok_load_hf_json(const char *json, size_t len, tok_tokenizer **out, rouse_errbuf *eb)
{
    rouse_arena arena;
    json_value *root;
    builder b = {.eb = eb};
    tok_tokenizer *t = NULL;
    char where[64];
    bool prefix;
    int rc;

    *out = NULL;
    rouse_arena_init(&arena, 0);
    alphabet_init(&b);
    if ((rc = json_parse(json, len, &arena, &root, eb)) < 0) goto out_fini;
    if (root->type != JSON_OBJECT) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "expected a JSON object, got %s",
                           json_type_name(root->type));
        goto out_fini;
    }
    if ((rc = check_parts(root, &prefix, eb)) < 0) goto out_fini;
    const json_value *model = json_get(root, "model");
    if ((rc = add_vocab(&b, json_get(model, "vocab"), "model.vocab")) < 0) goto out_fini;

    const json_value *added = json_get(root, "added_tokens");
    if (added && added->type != JSON_ARRAY && added->type != JSON_NULL) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "added_tokens: expected an array");
        goto out_fini;
    }
    for (size_t i = 0; added && added->type == JSON_ARRAY && i < added->u.arr.n; i++) {
        const json_value *a = added->u.arr.items[i], *content = json_get(a, "content");
        int64_t id;
        snprintf(where, sizeof(where), "added_tokens[%zu]", i);
        if (!json_as_int64(json_get(a, "id"), &id) || !content || content->type != JSON_STRING) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "%s: expected an object with \"id\" and \"content\"", where);
            goto out_fini;
        }
        const entry *e = find(&b, content->u.str.s, content->u.str.len);
        if (e && e->id == id) continue;
        if (e) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "%s: '%.40s' has id %d in the vocabulary, not %lld", where,
                               content->u.str.s, (int)e->id, (long long)id);
            goto out_fini;
        }
        if ((rc = add(&b, content->u.str.s, content->u.str.len, id, true, where)) < 0)
            goto out_fini;
    }
    if ((rc = tokenizer_new(&t, eb)) < 0) goto out_fini;
    t->add_prefix_space = prefix;
    if ((rc = build_vocab(&b, t)) < 0) goto out_free;

    const json_value *merges = json_get(model, "merges");
    if (!merges || merges->type != JSON_ARRAY) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "model.merges: expected an array");
        goto out_free;
    }
    if ((rc = merges_alloc(t, merges->u.arr.n, eb)) < 0) goto out_free;
    for (size_t i = 0; i < merges->u.arr.n; i++) {
        const json_value *m = merges->u.arr.items[i];
        snprintf(where, sizeof(where), "model.merges[%zu]", i);
        const char *l, *r;
        size_t l_len, r_len;
        if (m->type == JSON_STRING) {
            /* "left right" (tokenizers before 0.20) */
            const char *sp = memchr(m->u.str.s, ' ', m->u.str.len);
            if (!sp || sp == m->u.str.s || sp == m->u.str.s + m->u.str.len - 1 ||
                memchr(sp + 1, ' ', m->u.str.len - (size_t)(sp + 1 - m->u.str.s))) {
                rc = rouse_err_set(eb, ROUSE_EFORMAT,
                                   "%s: expected two tokens separated by one space", where);
                goto out_free;
            }
            l = m->u.str.s;
            l_len = (size_t)(sp - l);
            r = sp + 1;
            r_len = m->u.str.len - l_len - 1;
        } else if (m->type == JSON_ARRAY && m->u.arr.n == 2 &&
                   m->u.arr.items[0]->type == JSON_STRING &&
                   m->u.arr.items[1]->type == JSON_STRING) {
            /* ["left", "right"] (tokenizers 0.20 on) */
            l = m->u.arr.items[0]->u.str.s;
            l_len = m->u.arr.items[0]->u.str.len;
            r = m->u.arr.items[1]->u.str.s;
            r_len = m->u.arr.items[1]->u.str.len;
        } else {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "%s: expected \"left right\" or [\"left\", \"right\"]", where);
            goto out_free;
        }
        if ((rc = add_merge(&b, t, l, l_len, r, r_len, where)) < 0) goto out_free;
    }
    builder_fini(&b);
    rouse_arena_fini(&arena);
    *out = t;
    return 0;

out_free:
    tok_free(t);
out_fini:
    builder_fini(&b);
    rouse_arena_fini(&arena);
    return rc;
}
