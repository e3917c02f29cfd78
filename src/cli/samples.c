/*
 * Sample inputs from files (samples.h): finds the layout, reads every
 * tensor file and hands them to the engine's sample set, which checks them
 * against the model.
 */
#include "cli/samples.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/tensor_file.h"
#include "cli/testdata.h"

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries of dir (no dot files), sorted; dirs_only picks folders, else
 * .npy files. Owned: free each and the array. */
static int list(const char *dir, bool dirs_only, char ***out, int *n_out, rouse_errbuf *eb)
{
    DIR *d = opendir(dir);
    if (!d) return rouse_err_set(eb, ROUSE_EIO, "%s: %s", dir, strerror(errno));
    char **v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= sizeof(p)) continue;
        if (dirs_only ? !is_dir(p) : (is_dir(p) || !ends_with(e->d_name, ".npy"))) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, sizeof(*v) * (size_t)cap);
            if (!nv) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[n] = strdup(e->d_name))) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (n) qsort(v, (size_t)n, sizeof(*v), cmp_str);
    *out = v;
    *n_out = n;
    return 0;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int cli_samples_layout(const char *dir)
{
    char **names = NULL;
    int n = 0;
    rouse_errbuf eb;
    if (cli_testdata_list_sets(dir, &names, &n, &eb) == 0 && n > 0) {
        cli_testdata_free_list(names, n);
        return 1;
    }
    if (names) cli_testdata_free_list(names, n);
    if (list(dir, true, &names, &n, &eb) == 0) {
        free_list(names, n);
        if (n > 0) return 2;
    }
    return 3;
}

/* Reads files[0..n) (full paths) as tensors named after the file (NAME.npy)
 * or, for .pb, after their TensorProto name or model input k. */
static int read_files(char **paths, int n, const rouse_model *m, bool pb, cli_tensor *t,
                      rouse_tensor *views, rouse_errbuf *eb)
{
    for (int k = 0; k < n; k++) {
        int rc = cli_tensor_read_file(paths[k], &t[k], eb);
        if (rc < 0) return rc;
        const char *name = t[k].name;
        if (pb) {
            rouse_tensor_info ti;
            bool known = false;
            for (int i = 0; name[0] && i < rouse_model_n_inputs(m); i++)
                known |= rouse_model_input(m, i, &ti) == 0 && strcmp(ti.name, name) == 0;
            if (!known && rouse_model_input(m, k, &ti) == 0) name = ti.name;
        } else {
            const char *base = strrchr(paths[k], '/');
            base = base ? base + 1 : paths[k];
            free(t[k].name);
            t[k].name = strndup(base, strlen(base) - 4); /* without .npy */
            if (!t[k].name) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            name = t[k].name;
        }
        views[k] = cli_tensor_view(&t[k], name);
    }
    return 0;
}

/* One sample (or, stacked, all of them) from the given files. */
static int add_files(rouse_samples *s, const rouse_model *m, char **paths, int n, bool pb,
                     bool stacked, const char *where, rouse_errbuf *eb)
{
    cli_tensor *t = calloc((size_t)n + 1, sizeof(*t));
    rouse_tensor *views = calloc((size_t)n + 1, sizeof(*views));
    int rc;
    if (!t || !views) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = read_files(paths, n, m, pb, t, views, eb)) < 0) goto out;
    rc = stacked ? rouse_samples_add_stacked(s, m, views, n, eb)
                 : rouse_samples_add(s, m, views, n, eb);
    if (rc < 0) rouse_err_wrap(eb, rc, "%s", where);
out:
    for (int k = 0; t && k < n; k++)
        cli_tensor_fini(&t[k]);
    free(t);
    free(views);
    return rc;
}

/* Full paths of the .npy files (or input_N.pb files) of dir. */
static int files_of(const char *dir, bool pb, char ***paths, int *n, rouse_errbuf *eb)
{
    char **names = NULL;
    int k = 0, rc = 0;
    if (pb) {
        /* input_0.pb, input_1.pb, ... up to the first missing number */
        names = calloc(ROUSE_MAX_RANK * 8 + 1, sizeof(*names));
        if (!names) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        for (; k < ROUSE_MAX_RANK * 8; k++) {
            char p[4096];
            struct stat sb;
            if ((size_t)snprintf(p, sizeof(p), "%s/input_%d.pb", dir, k) >= sizeof(p) ||
                stat(p, &sb) != 0)
                break;
            if (!(names[k] = strdup(p))) {
                free_list(names, k);
                return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            }
        }
    } else {
        if ((rc = list(dir, false, &names, &k, eb)) < 0) return rc;
        for (int i = 0; i < k; i++) {
            char *p = malloc(strlen(dir) + strlen(names[i]) + 2);
            if (!p) {
                free_list(names, k);
                return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            }
            sprintf(p, "%s/%s", dir, names[i]);
            free(names[i]);
            names[i] = p;
        }
    }
    *paths = names;
    *n = k;
    return 0;
}

int cli_samples_read(const char *dir, const rouse_model *m, rouse_samples **out, rouse_errbuf *eb)
{
    if (!is_dir(dir))
        return rouse_err_set(eb, ROUSE_EINVAL, "%s: not a folder of samples", dir);
    rouse_samples *s;
    int rc = rouse_samples_create(m, &s, eb);
    if (rc < 0) return rc;
    int layout = cli_samples_layout(dir);
    char **subs = NULL;
    int n_subs = 0;
    if (layout == 1) {
        rc = cli_testdata_list_sets(dir, &subs, &n_subs, eb);
    } else if (layout == 2) {
        rc = list(dir, true, &subs, &n_subs, eb);
    }
    if (rc < 0) goto out_fail;
    for (int i = 0; i < (layout == 3 ? 1 : n_subs) && rc == 0; i++) {
        char sub[4096];
        if (layout == 3)
            snprintf(sub, sizeof(sub), "%s", dir);
        else if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]) >= sizeof(sub)) {
            rc = rouse_err_set(eb, ROUSE_EINVAL, "%s: path too long", dir);
            break;
        }
        char **paths = NULL;
        int n = 0;
        if ((rc = files_of(sub, layout == 1, &paths, &n, eb)) < 0) break;
        if (n == 0)
            rc = rouse_err_set(eb, ROUSE_EINVAL,
                               "%s: no samples (expected test_data_set_*/input_N.pb, one folder "
                               "per sample with NAME.npy per input, or NAME.npy per input "
                               "stacked on the batch axis)",
                               sub);
        else
            rc = add_files(s, m, paths, n, layout == 1, layout == 3, sub, eb);
        free_list(paths, n);
    }
    if (subs) free_list(subs, n_subs);
    if (rc < 0) goto out_fail;
    *out = s;
    return 0;
out_fail:
    rouse_samples_destroy(s);
    return rc;
}
