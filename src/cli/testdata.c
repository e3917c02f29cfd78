/*
 * ONNX backend-test folders: listing the test sets and running one of them
 * through a session (see testdata.h for the matching rules).
 */
#include "cli/testdata.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tensor_file.h"

/* A numbered entry such as "test_data_set_3" or "input_0.pb". */
typedef struct numbered {
    long num;
    char *name;
} numbered;

static int cmp_numbered(const void *a, const void *b)
{
    const numbered *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

/* The number after `prefix` when `name` is prefix<digits><suffix>, else -1. */
static long parse_numbered(const char *name, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), nl = strlen(name);
    if (nl <= pl + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + nl - sl, suffix) != 0)
        return -1;
    long v = 0;
    for (size_t i = pl; i < nl - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > 100000000) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static void free_numbered(numbered *v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Entries of dir named prefix<N>suffix, sorted by N. */
static int list_numbered(const char *dir, const char *prefix, const char *suffix, numbered **out,
                         int *n_out, rouse_errbuf *eb)
{
    DIR *d = opendir(dir);
    if (!d) return rouse_err_set(eb, ROUSE_EIO, "cannot open %s: %s", dir, strerror(errno));
    numbered *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long num = parse_numbered(e->d_name, prefix, suffix);
        if (num < 0) continue;
        if (n == cap) {
            int ncap = cap ? cap * 2 : 8;
            numbered *nv = realloc(v, sizeof(*v) * (size_t)ncap);
            if (!nv) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory listing %s", dir);
                goto out_free;
            }
            v = nv;
            cap = ncap;
        }
        v[n].num = num;
        if (!(v[n].name = strdup(e->d_name))) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory listing %s", dir);
            goto out_free;
        }
        n++;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof(*v), cmp_numbered);
    *out = v;
    *n_out = n;
    return 0;
out_free:
    free_numbered(v, n);
    closedir(d);
    return rc;
}

int cli_testdata_list_sets(const char *dir, char ***names, int *n_names, rouse_errbuf *eb)
{
    numbered *v;
    int n;
    int rc = list_numbered(dir, "test_data_set_", "", &v, &n, eb);
    if (rc < 0) return rc;
    char **out = calloc(n ? (size_t)n : 1, sizeof(*out));
    if (!out) {
        free_numbered(v, n);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory listing %s", dir);
    }
    for (int i = 0; i < n; i++)
        out[i] = v[i].name; /* ownership moves to out */
    free(v);
    *names = out;
    *n_names = n;
    return 0;
}

void cli_testdata_free_list(char **names, int n_names)
{
    if (!names) return;
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
}

/* Reads every prefix<N>.pb of set_dir, sorted by N. */
static int read_pbs(const char *set_dir, const char *prefix, cli_tensor **out, int *n_out,
                    rouse_errbuf *eb)
{
    numbered *files;
    int n;
    int rc = list_numbered(set_dir, prefix, ".pb", &files, &n, eb);
    if (rc < 0) return rc;
    cli_tensor *t = calloc(n ? (size_t)n : 1, sizeof(*t));
    if (!t) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading %s", set_dir);
        goto out_files;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", set_dir, files[i].name) >= sizeof(path)) {
            rc = rouse_err_set(eb, ROUSE_ERANGE, "path too long in %s", set_dir);
            goto out_tensors;
        }
        if ((rc = cli_tensor_read_file(path, &t[i], eb)) < 0) goto out_tensors;
    }
    free_numbered(files, n);
    *out = t;
    *n_out = n;
    return 0;
out_tensors:
    for (int i = 0; i < n; i++)
        cli_tensor_fini(&t[i]);
    free(t);
out_files:
    free_numbered(files, n);
    return rc;
}

static void free_tensors(cli_tensor *t, int n)
{
    if (!t) return;
    for (int i = 0; i < n; i++)
        cli_tensor_fini(&t[i]);
    free(t);
}

/* Index of the model input (outputs when `outputs`) named name, else -1. */
static int find_io(const rouse_model *m, bool outputs, const char *name)
{
    if (!name || !name[0]) return -1;
    int n = outputs ? rouse_model_n_outputs(m) : rouse_model_n_inputs(m);
    for (int i = 0; i < n; i++) {
        rouse_tensor_info info;
        int rc = outputs ? rouse_model_output(m, i, &info) : rouse_model_input(m, i, &info);
        if (rc == 0 && info.name && strcmp(info.name, name) == 0) return i;
    }
    return -1;
}

/* ONNX's backend tests store bfloat16 tensors as uint16 bit patterns
 * (numpy has no bfloat16): data of type uint16 stands for a bfloat16 model
 * input or output. */
static void bf16_from_uint16(rouse_tensor *t, int model_dtype)
{
    if (t->dtype == ROUSE_DT_UINT16 && model_dtype == ROUSE_DT_BFLOAT16) t->dtype = model_dtype;
}

int cli_testdata_run_set(rouse_model *m, rouse_session *s, const char *set_dir, cli_tolerance tol,
                         cli_set_result *res, rouse_errbuf *eb)
{
    memset(res, 0, sizeof(*res));
    cli_tensor *in = NULL, *ref = NULL;
    int n_in = 0, n_ref = 0, rc;
    rouse_tensor *feeds = NULL;
    if ((rc = read_pbs(set_dir, "input_", &in, &n_in, eb)) < 0) return rc;
    if ((rc = read_pbs(set_dir, "output_", &ref, &n_ref, eb)) < 0) goto out_in;

    int n_model_in = rouse_model_n_inputs(m);
    feeds = calloc(n_in ? (size_t)n_in : 1, sizeof(*feeds));
    if (!feeds) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_ref;
    }
    for (int i = 0; i < n_in; i++) {
        int k = find_io(m, false, in[i].name);
        if (k < 0) k = i;
        rouse_tensor_info info;
        if (k >= n_model_in || rouse_model_input(m, k, &info) < 0) {
            rc = rouse_err_set(eb, ROUSE_EMISMATCH,
                               "input_%d.pb ('%s') matches no model input (the model has %d)", i,
                               in[i].name, n_model_in);
            goto out_feeds;
        }
        feeds[i] = cli_tensor_view(&in[i], info.name);
        bf16_from_uint16(&feeds[i], info.dtype);
    }
    if ((rc = rouse_session_run(s, feeds, n_in, eb)) < 0) {
        res->engine_error = true;
        goto out_feeds;
    }

    int n_model_out = rouse_model_n_outputs(m);
    rouse_errbuf first;
    rouse_errbuf_clear(&first);
    for (int i = 0; i < n_ref; i++) {
        int k = find_io(m, true, ref[i].name);
        if (k < 0) k = i;
        rouse_tensor got;
        if (k >= n_model_out || rouse_session_output(s, k, &got) < 0) {
            rc = rouse_err_set(eb, ROUSE_EMISMATCH,
                               "output_%d.pb ('%s') matches no model output (the model has %d)", i,
                               ref[i].name, n_model_out);
            goto out_feeds;
        }
        rouse_tensor want = cli_tensor_view(&ref[i], NULL);
        bf16_from_uint16(&want, got.dtype);
        cli_compare_result cr;
        rouse_errbuf ceb;
        rouse_errbuf_clear(&ceb);
        int crc = cli_tensor_compare(&got, &want, tol, &cr, &ceb);
        if (cr.max_abs > res->max_abs) res->max_abs = cr.max_abs;
        if (cr.max_rel > res->max_rel) res->max_rel = cr.max_rel;
        if (crc < 0 && first.code == 0) {
            first = ceb;
            rouse_err_wrap(&first, crc, "output '%s'", got.name ? got.name : ref[i].name);
        }
    }
    rc = first.code;
    if (rc < 0 && eb) *eb = first;
out_feeds:
    free(feeds);
out_ref:
    free_tensors(ref, n_ref);
out_in:
    free_tensors(in, n_in);
    return rc;
}
