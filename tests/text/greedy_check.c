/*
 * Greedy generation through the engine with the C tokenizer, as a generator
 * runs it: encode the prompt, one prefill run with an empty past, then one
 * decode step per token with the presents fed back as the past, the argmax
 * each time, until <|endoftext|> or the token count.
 *   greedy_check DIR
 * reads DIR/model.onnx, DIR/vocab.json, DIR/merges.txt and DIR/greedy.json
 * ([{"prompt": ..., "prompt_ids": [...], "ids": [...], "text": ...}], the
 * prompt's ids and the greedy continuation PyTorch gave), prints each
 * continuation, and exits 1 when an id or the decoded text differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "rouse/engine.h"
#include "text/tokenizer.h"

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "greedy_check: cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

#define MAX_TENSORS 64

/* Runs the greedy loop; *out gets up to max ids. Returns 0 or an error. */
static int generate(rouse_model *m, rouse_session *s, const int32_t *prompt, size_t n_prompt,
                    int32_t eos, size_t max, int32_t *out, size_t *n_out, rouse_errbuf *eb)
{
    int n_in = rouse_model_n_inputs(m), n_layers2 = n_in - 3;
    if (n_in > MAX_TENSORS || n_layers2 < 2 || rouse_model_n_outputs(m) != n_in - 2) {
        fprintf(stderr, "greedy_check: not a decoder with a KV cache in the expected layout\n");
        return -1;
    }
    rouse_tensor_info info;
    rouse_model_input(m, 3, &info);
    int64_t heads = info.shape[1], head_dim = info.shape[3];
    float *past[MAX_TENSORS] = {0};
    int64_t past_len = 0;
    int64_t *ids = malloc((n_prompt + max) * sizeof(*ids));
    int64_t *mask = malloc((n_prompt + max) * sizeof(*mask));
    int64_t *pos = malloc((n_prompt + max) * sizeof(*pos));
    int rc = 0;
    for (size_t i = 0; i < n_prompt; i++)
        ids[i] = prompt[i];
    int64_t n_new = (int64_t)n_prompt;
    *n_out = 0;
    while (*n_out < max) {
        rouse_tensor in[MAX_TENSORS];
        for (int64_t i = 0; i < past_len + n_new; i++)
            mask[i] = 1;
        for (int64_t i = 0; i < n_new; i++)
            pos[i] = past_len + i;
        in[0] = (rouse_tensor){"input_ids", ROUSE_DT_INT64, 2, {1, n_new}, ids, (size_t)n_new * 8};
        in[1] =
            (rouse_tensor){"attention_mask",      ROUSE_DT_INT64, 2,
                           {1, past_len + n_new}, mask,           (size_t)(past_len + n_new) * 8};
        in[2] =
            (rouse_tensor){"position_ids", ROUSE_DT_INT64, 2, {1, n_new}, pos, (size_t)n_new * 8};
        for (int k = 0; k < n_layers2; k++) {
            rouse_tensor_info ti;
            rouse_model_input(m, 3 + k, &ti);
            size_t nb = (size_t)(heads * past_len * head_dim) * sizeof(float);
            in[3 + k] = (rouse_tensor){ti.name,
                                       ROUSE_DT_FLOAT,
                                       4,
                                       {1, heads, past_len, head_dim},
                                       past[k] ? (const void *)past[k] : (const void *)"",
                                       nb};
        }
        if ((rc = rouse_session_run(s, in, n_in, eb)) < 0) break;
        rouse_tensor logits;
        rouse_session_output(s, 0, &logits);
        int64_t vocab = logits.shape[2];
        const float *last = (const float *)logits.data + (size_t)((n_new - 1) * vocab);
        int32_t best = 0;
        for (int64_t v = 1; v < vocab; v++)
            if (last[v] > last[best]) best = (int32_t)v;
        past_len += n_new;
        for (int k = 0; k < n_layers2; k++) {
            rouse_tensor p;
            rouse_session_output(s, 1 + k, &p);
            free(past[k]);
            past[k] = malloc(p.nbytes);
            memcpy(past[k], p.data, p.nbytes);
        }
        if (best == eos) break;
        out[(*n_out)++] = best;
        ids[0] = best;
        n_new = 1;
    }
    for (int k = 0; k < n_layers2; k++)
        free(past[k]);
    free(ids);
    free(mask);
    free(pos);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: greedy_check DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t vl, ml, gl;
    char *vocab = slurp(dir, "vocab.json", &vl), *merges = slurp(dir, "merges.txt", &ml);
    char *greedy = slurp(dir, "greedy.json", &gl);
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    rouse_errbuf eb = {0};
    tok_tokenizer *t;
    rouse_model *m;
    rouse_session *s;
    if (tok_load_gpt2(vocab, vl, merges, ml, &t, &eb) < 0 || rouse_model_load(path, &m, &eb) < 0 ||
        rouse_session_create(m, &(rouse_session_options){.threads = 1}, &s, &eb) < 0) {
        fprintf(stderr, "greedy_check: %s\n", eb.msg);
        return 1;
    }
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    json_value *root;
    if (json_parse(greedy, gl, &arena, &root, &eb) < 0 || root->type != JSON_ARRAY) {
        fprintf(stderr, "greedy_check: greedy.json: %s\n", eb.msg);
        return 1;
    }
    int bad = 0;
    for (size_t c = 0; c < root->u.arr.n; c++) {
        const json_value *g = root->u.arr.items[c];
        const json_value *pv = json_get(g, "prompt"), *piv = json_get(g, "prompt_ids"),
                         *iv = json_get(g, "ids"), *tv = json_get(g, "text");
        int32_t *pids;
        size_t n_p;
        if (tok_encode(t, pv->u.str.s, pv->u.str.len, &pids, &n_p, &eb) < 0) {
            fprintf(stderr, "greedy_check: %s\n", eb.msg);
            return 1;
        }
        bool prompt_ok = n_p == piv->u.arr.n;
        for (size_t i = 0; prompt_ok && i < n_p; i++) {
            int64_t v;
            prompt_ok = json_as_int64(piv->u.arr.items[i], &v) && v == pids[i];
        }
        size_t max = iv->u.arr.n, n_out;
        int32_t *out = malloc((max + 1) * sizeof(*out));
        if (generate(m, s, pids, n_p, tok_eos(t), max, out, &n_out, &eb) < 0) {
            fprintf(stderr, "greedy_check: run: %s\n", eb.msg);
            return 1;
        }
        bool ids_ok = n_out == max;
        for (size_t i = 0; ids_ok && i < n_out; i++) {
            int64_t v;
            ids_ok = json_as_int64(iv->u.arr.items[i], &v) && v == out[i];
        }
        char *text;
        size_t len;
        tok_decode(t, out, n_out, &text, &len, &eb);
        bool text_ok = len == tv->u.str.len && memcmp(text, tv->u.str.s, len) == 0;
        printf("%s %s|%s\n", prompt_ok && ids_ok && text_ok ? "same" : "DIFFERENT", pv->u.str.s,
               text);
        if (!prompt_ok)
            fprintf(stderr, "  the prompt encodes to other ids than PyTorch's run had\n");
        if (!ids_ok || !text_ok) fprintf(stderr, "  PyTorch: %s\n", tv->u.str.s);
        bad += !(prompt_ok && ids_ok && text_ok);
        free(text);
        free(out);
        free(pids);
    }
    rouse_arena_fini(&arena);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    tok_free(t);
    free(vocab);
    free(merges);
    free(greedy);
    return bad ? 1 : 0;
}
