/*
 * The public engine API (include/rouse/engine.h): models are mmapped,
 * decoded in place, built into a graph and optimized once; sessions prepare
 * execution plans for concrete input shapes and run them.
 *
 * A session keeps a bounded cache of plans (least recently used evicted),
 * each keyed by the input shapes and dtypes (and by the values of the few
 * inputs that shapes depend on, eng_graph_input_value_matters); a run whose
 * key is not cached prepares a new plan.
 * Thread count: oneDNN runs on OpenMP, whose team size is per calling
 * thread, so a session sets it before preparing and before every run.
 */
#include "rouse/engine.h"
#include "rouse/weight_pages.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/exec.h"
#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/optimize.h"
#include "engine/plan_file.h"
#include "engine/precision.h"
#include "engine/quantize.h"
#include "common/log.h"
#include "common/sha256.h"

struct rouse_model {
    void *map; /* mmap of the file, or NULL for a borrowed buffer */
    size_t map_len;
    const void *pages;             /* a kept huge-page copy read instead of the file, or NULL */
    rouse_weight_pages pages_kind; /* its kind; 4k for the file mapping */
    const void *src; /* the ONNX bytes (NULL for a compiled plan) */
    size_t src_len;
    bool from_plan;
    bool sha_known;          /* plan_sha256 holds the source digest */
    uint8_t plan_sha256[32]; /* source digest: recorded in the plan, or computed once */
    onnx_model onnx;
    eng_graph graph;
    rouse_tensor_info *inputs, *outputs;
    int64_t *shapes;       /* backing store of the infos' shapes */
    const char **dim_names; /* backing store of the infos' dim names (borrowed strings) */
    bool *value_matters;   /* per input: values feed shape inference */
    eng_packed_set packed; /* weights in kernel layouts (compiled plans) */
    rouse_accuracy accuracy; /* a plan's figures (strings and arrays in the graph's arena) */
};

/* One prepared plan and the inputs it was prepared for. */
typedef struct plan_slot {
    eng_plan *plan;    /* NULL: free slot */
    eng_tensor *key;   /* inputs the plan was prepared for (shapes; data NULL) */
    void **key_values; /* copies of value-dependent inputs */
    uint64_t last_use; /* session tick of its last run, for LRU eviction */
} plan_slot;

struct rouse_session {
    rouse_model *model;
    int threads;
    bool pin; /* pin the team's threads to distinct CPUs on the first run */
    bool pinned;
    bool reference;
    uint64_t max_activation_bytes; /* rouse_session_options; 0: the machine's memory */
    bool batch_dim0; /* dim 0 of every input takes any size */
    eng_dnnl_ctx *dnnl;
    plan_slot *slots; /* n_slots entries: the bounded plan cache */
    int n_slots;
    int cur;           /* slot of the last prepared or run plan, -1 */
    uint64_t tick;     /* advances on every lookup */
    uint64_t hits, misses, evictions;
    eng_tensor *bound; /* inputs of the current run, graph order */
    bool has_output;
    bool profile; /* time every kernel of the plans run (rouse_session_set_profiling) */
};

size_t rouse_dtype_size(int dtype)
{
    return eng_dtype_size(dtype);
}

const char *rouse_dtype_name(int dtype)
{
    return eng_dtype_name(dtype);
}

/* --- models ---------------------------------------------------------------------------- */

static int fill_info(rouse_model *m, rouse_errbuf *eb)
{
    const eng_graph *g = &m->graph;
    size_t n = (size_t)g->n_inputs + (size_t)g->n_outputs;
    m->inputs = calloc((size_t)g->n_inputs + 1, sizeof(*m->inputs));
    m->outputs = calloc((size_t)g->n_outputs + 1, sizeof(*m->outputs));
    m->shapes = calloc(n * ENG_MAX_RANK + 1, sizeof(int64_t));
    m->value_matters = calloc((size_t)g->n_inputs + 1, sizeof(bool));
    m->dim_names = calloc(n * ENG_MAX_RANK + 1, sizeof(*m->dim_names));
    if (!m->inputs || !m->outputs || !m->shapes || !m->value_matters || !m->dim_names)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    int64_t *sh = m->shapes;
    const char **dn = m->dim_names;
    for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
        bool is_in = i < g->n_inputs;
        const eng_value *v = &g->values[is_in ? g->inputs[i] : g->outputs[i - g->n_inputs]];
        rouse_tensor_info *ti = is_in ? &m->inputs[i] : &m->outputs[i - g->n_inputs];
        ti->name = v->name;
        ti->dtype = v->dtype;
        ti->rank = v->rank;
        if (v->rank > 0) memcpy(sh, v->shape, sizeof(int64_t) * (size_t)v->rank);
        ti->shape = sh;
        ti->dim_names = v->rank >= 0 ? dn : NULL;
        for (int k = 0; k < v->rank; k++)
            dn[k] = v->shape[k] < 0 ? v->dim_names[k] : NULL;
        sh += ENG_MAX_RANK;
        dn += ENG_MAX_RANK;
    }
    for (int i = 0; i < g->n_inputs; i++)
        m->value_matters[i] = eng_graph_input_value_matters(g, i);
    return 0;
}

/* An .onnx from memory; `dir` (NULL for none) is the folder its external
 * data files are found in. */
static int load_onnx(const void *buf, size_t len, const char *dir, rouse_model **out,
                     rouse_errbuf *eb)
{
    rouse_model *m = calloc(1, sizeof(*m));
    if (!m) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    m->src = buf;
    m->src_len = len;
    int rc = onnx_model_decode(buf, len, &m->onnx, eb);
    if (rc < 0) {
        free(m);
        return rc;
    }
    if ((rc = onnx_model_map_external(&m->onnx, dir, eb)) < 0 ||
        (rc = eng_graph_build(&m->onnx, &m->graph, eb)) < 0) {
        onnx_model_fini(&m->onnx);
        free(m);
        return rc;
    }
    if ((rc = eng_graph_optimize(&m->graph, NULL, eb)) < 0 || (rc = fill_info(m, eb)) < 0) {
        rouse_model_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

int rouse_model_load_memory(const void *buf, size_t len, rouse_model **out, rouse_errbuf *eb)
{
    return load_onnx(buf, len, NULL, out, eb);
}

static int map_file(const char *path, void **map, size_t *len, rouse_errbuf *eb);

/* A model file's pages: opened read-only, mapped, the model (decoded in place
 * or a plan) keeps the mapping until it is destroyed. */
static int load_mapped(const char *path, rouse_model **out, rouse_errbuf *eb,
                       int (*from_memory)(const void *, size_t, rouse_model **, rouse_errbuf *))
{
    void *map = NULL;
    size_t len = 0;
    int rc = map_file(path, &map, &len, eb);
    if (rc < 0) return rc;
    rouse_model *m = NULL;
    if ((rc = from_memory(map, len, &m, eb)) < 0) {
        munmap(map, len);
        return rouse_err_wrap(eb, rc, "%s", path);
    }
    m->map = map;
    m->map_len = len;
    *out = m;
    return 0;
}

int rouse_model_load(const char *path, rouse_model **out, rouse_errbuf *eb)
{
    void *map = NULL;
    size_t len = 0;
    int rc = map_file(path, &map, &len, eb);
    if (rc < 0) return rc;
    /* External data files are named relative to the model's folder. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl >= sizeof(dir)) {
        munmap(map, len);
        return rouse_err_set(eb, ROUSE_EINVAL, "%s: path too long", path);
    }
    if (slash) {
        memcpy(dir, path, dl);
        dir[dl] = '\0';
        if (!dl) strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }
    rouse_model *m = NULL;
    if ((rc = load_onnx(map, len, dir, &m, eb)) < 0) {
        munmap(map, len);
        return rouse_err_wrap(eb, rc, "%s", path);
    }
    m->map = map;
    m->map_len = len;
    *out = m;
    return 0;
}

void rouse_model_destroy(rouse_model *m)
{
    if (!m) return;
    eng_graph_fini(&m->graph);
    onnx_model_fini(&m->onnx);
    if (m->map) munmap(m->map, m->map_len);
    if (m->pages) rouse_weight_pages_release(m->pages);
    free(m->inputs);
    free(m->outputs);
    free(m->shapes);
    free(m->dim_names);
    free(m->value_matters);
    free(m);
}

int rouse_model_n_inputs(const rouse_model *m)
{
    return m->graph.n_inputs;
}

int rouse_model_n_outputs(const rouse_model *m)
{
    return m->graph.n_outputs;
}

int rouse_model_input(const rouse_model *m, int i, rouse_tensor_info *out)
{
    if (i < 0 || i >= m->graph.n_inputs) return ROUSE_ERANGE;
    *out = m->inputs[i];
    return 0;
}

int rouse_model_output(const rouse_model *m, int i, rouse_tensor_info *out)
{
    if (i < 0 || i >= m->graph.n_outputs) return ROUSE_ERANGE;
    *out = m->outputs[i];
    return 0;
}

/* --- compiled plans ----------------------------------------------------------------------- */

static int map_file(const char *path, void **map, size_t *len, rouse_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rouse_err_set(eb, errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EIO, "%s: %s", path,
                             strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EFORMAT, "%s: empty file", path);
    }
    *len = (size_t)sb.st_size;
    /* Shared and read-only: every process that opens the same file uses the
     * same physical pages. */
    *map = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (*map == MAP_FAILED)
        return rouse_err_set(eb, ROUSE_EIO, "%s: mmap: %s", path, strerror(errno));
    return 0;
}

int rouse_model_open_plan_memory(const void *buf, size_t len, rouse_model **out, rouse_errbuf *eb)
{
    rouse_model *m = calloc(1, sizeof(*m));
    if (!m) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    eng_plan_file pf;
    int rc = eng_plan_file_read(buf, len, &pf, eb);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->graph = pf.graph; /* the model owns the graph (and the arena with the layouts) now */
    m->packed.n = pf.n_packed;
    m->packed.items = pf.packed;
    m->from_plan = true;
    m->accuracy = pf.accuracy;
    memcpy(m->plan_sha256, pf.model_sha256, 32);
    m->sha_known = true;
    if ((rc = fill_info(m, eb)) < 0) {
        rouse_model_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

int rouse_model_open_plan(const char *path, rouse_model **out, rouse_errbuf *eb)
{
    /* A huge-page copy kept for this very file (rouse/weight_pages.h)
     * is read in place of the file mapping. */
    struct stat sb;
    size_t len;
    rouse_weight_pages kind;
    const void *copy =
        stat(path, &sb) == 0
            ? rouse_weight_pages_find((unsigned long)sb.st_dev, (unsigned long)sb.st_ino,
                                      (long long)sb.st_size,
                                      (long long)sb.st_mtim.tv_sec * 1000000000ll +
                                          sb.st_mtim.tv_nsec,
                                      &len, &kind)
            : NULL;
    if (!copy) return load_mapped(path, out, eb, rouse_model_open_plan_memory);
    int rc = rouse_model_open_plan_memory(copy, len, out, eb);
    if (rc < 0) {
        rouse_weight_pages_release(copy);
        return rouse_err_wrap(eb, rc, "%s", path);
    }
    (*out)->pages = copy;
    (*out)->pages_kind = kind;
    return 0;
}

rouse_weight_pages rouse_model_weight_pages(const rouse_model *m)
{
    return m->pages ? m->pages_kind : ROUSE_WEIGHT_PAGES_4K;
}

int rouse_model_source_sha256(const rouse_model *m, uint8_t out[32])
{
    if (m->sha_known) {
        memcpy(out, m->plan_sha256, 32);
        return 0;
    }
    return rouse_sha256_digest(m->src, m->src_len, out);
}

/* rouse_model_source_sha256 that hashes an .onnx once per model: looking
 * up its plan and compiling it both need the digest. */
static int source_sha256_once(rouse_model *m, uint8_t out[32])
{
    int rc = rouse_model_source_sha256(m, out);
    if (rc == 0 && !m->sha_known) {
        memcpy(m->plan_sha256, out, 32);
        m->sha_known = true;
    }
    return rc;
}

/* Defined with the sessions below. */
static int session_create_for(rouse_model *m, const rouse_session_options *opts,
                              const eng_tensor *shapes, rouse_session **out, rouse_errbuf *eb);
static const eng_plan *session_plan(const rouse_session *s);

eng_graph *eng_model_graph(rouse_model *m)
{
    return m->from_plan ? NULL : &m->graph;
}

const eng_graph *eng_model_graph_view(const rouse_model *m)
{
    return &m->graph;
}

int rouse_model_compile(rouse_model *m, const char *path, rouse_errbuf *eb)
{
    return rouse_model_compile_with(m, path, NULL, eb);
}

int rouse_model_precision(const rouse_model *m)
{
    return m->graph.precision;
}

void rouse_model_accuracy(const rouse_model *m, rouse_accuracy *out)
{
    *out = m->accuracy;
    out->precision = m->graph.precision;
}

/* Outputs of fp32 runs over a sample set, kept to compare the lower
 * precision's with: out[s * n_outputs + k] owns its data. */
typedef struct ref_outputs {
    int n_samples, n_outputs;
    rouse_tensor *out;
} ref_outputs;

static void ref_outputs_fini(ref_outputs *r)
{
    for (int i = 0; r->out && i < r->n_samples * r->n_outputs; i++)
        free((void *)r->out[i].data);
    free(r->out);
    memset(r, 0, sizeof(*r));
}

/* Runs m (at the graph's current precision) on samples [first, first + n)
 * of s. With `ref` NULL the outputs are kept in *keep; otherwise they are
 * compared with ref's into acc. */
static int run_samples(rouse_model *m, const rouse_samples *s, int first, int n, ref_outputs *keep,
                       const ref_outputs *ref, eng_acc *acc, rouse_errbuf *eb)
{
    rouse_session *ss = NULL;
    int rc = rouse_session_create(m, NULL, &ss, eb);
    if (rc < 0) return rc;
    int n_out = m->graph.n_outputs;
    if (keep) {
        keep->n_samples = n;
        keep->n_outputs = n_out;
        keep->out = calloc((size_t)n * (size_t)n_out + 1, sizeof(*keep->out));
        if (!keep->out) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        const rouse_tensor *in = &s->t[(size_t)(first + i) * (size_t)s->n_inputs];
        if ((rc = rouse_session_run(ss, in, s->n_inputs, eb)) < 0) {
            rouse_err_wrap(eb, rc, "sample %d (%s)", first + i + 1,
                           rouse_precision_name(m->graph.precision));
            goto out;
        }
        for (int k = 0; k < n_out; k++) {
            rouse_tensor o;
            rouse_session_output(ss, k, &o);
            if (keep) {
                rouse_tensor *c = &keep->out[(size_t)i * (size_t)n_out + (size_t)k];
                *c = o;
                c->data = malloc(o.nbytes ? o.nbytes : 1);
                if (!c->data) {
                    rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
                    goto out;
                }
                memcpy((void *)c->data, o.data, o.nbytes);
            } else if ((rc = eng_acc_add(acc, k, &ref->out[(size_t)i * (size_t)n_out + (size_t)k],
                                         &o, eb)) < 0) {
                goto out;
            }
        }
    }
out:
    rouse_session_destroy(ss);
    return rc;
}

static int samples_view(const rouse_model *m, const rouse_samples *s, int first, int n,
                        eng_tensor **out, eng_samples *view, rouse_errbuf *eb)
{
    int n_in = m->graph.n_inputs;
    eng_tensor *t = calloc((size_t)n * (size_t)n_in + 1, sizeof(*t));
    if (!t) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    for (int i = 0; i < n * n_in; i++) {
        const rouse_tensor *r = &s->t[(size_t)first * (size_t)n_in + (size_t)i];
        t[i].dtype = r->dtype;
        t[i].rank = r->rank;
        memcpy(t[i].shape, r->shape, sizeof(int64_t) * (size_t)r->rank);
        t[i].data = (void *)r->data;
    }
    *out = t;
    *view = (eng_samples){n, n_in, t};
    return 0;
}

/* Lowers m's graph to opts->precision, measuring every output against fp32
 * on the validation samples into *acc (left empty without samples). */
static int lower_precision(rouse_model *m, const rouse_compile_options *opts, eng_acc *acc,
                           eng_quant_report *rep, rouse_errbuf *eb)
{
    int prec = opts ? opts->precision : ENG_PRECISION_FP32;
    const rouse_samples *cal = opts ? opts->calibration : NULL;
    const rouse_samples *val = opts ? opts->validation : NULL;
    if (!rouse_precision_name(prec))
        return rouse_err_set(eb, ROUSE_EINVAL, "unknown precision %d", prec);
    if (m->graph.precision != ENG_PRECISION_FP32)
        return rouse_err_set(eb, ROUSE_ESTATE, "the model was lowered to %s already",
                             rouse_precision_name(m->graph.precision));
    for (int k = 0; k < 2; k++) {
        const rouse_samples *s = k ? val : cal;
        if (s && s->n_inputs != m->graph.n_inputs)
            return rouse_err_set(eb, ROUSE_EINVAL, "%s samples were made for another model",
                                 k ? "validation" : "calibration");
    }
    if (prec == ENG_PRECISION_INT8 && (!cal || cal->n_samples == 0))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "int8 needs calibration samples (--calibrate INPUTS)");
    if (prec == ENG_PRECISION_BF16 && !eng_bf16_native()) {
        /* Emulated bf16 is slower than fp32 and no smaller to run: the plan
         * stays fp32 and says so (rouse_model_precision). */
        LOG_WARN("engine", "bf16: this CPU has no AVX-512 BF16 instructions; the plan "
                                  "computes in fp32");
        prec = ENG_PRECISION_FP32;
    }

    /* Which samples calibrate and which measure. */
    int cal_n = cal ? cal->n_samples : 0, val_first = 0, val_n = 0;
    const rouse_samples *vs = val;
    acc->precision = prec;
    if (val && val->n_samples > 0) {
        val_n = val->n_samples;
    } else if (cal && cal->n_samples > 0) {
        vs = cal;
        if (prec == ENG_PRECISION_INT8 && cal->n_samples >= 2) {
            val_n = cal->n_samples / 5 > 0 ? cal->n_samples / 5 : 1;
            cal_n = cal->n_samples - val_n;
            val_first = cal_n;
        } else {
            val_n = cal->n_samples;
        }
    }
    int source = !val_n                       ? ROUSE_ACCURACY_NONE
                 : vs == val                  ? ROUSE_ACCURACY_VALIDATE
                 : prec == ENG_PRECISION_INT8 && val_first ? ROUSE_ACCURACY_HELD_BACK
                                                           : ROUSE_ACCURACY_SAMPLES;
    ref_outputs ref = {0};
    int rc = 0;
    if (val_n && (rc = run_samples(m, vs, val_first, val_n, &ref, NULL, NULL, eb)) < 0)
        return rc;
    if (prec == ENG_PRECISION_INT8) {
        eng_tensor *t = NULL;
        eng_samples view;
        if ((rc = samples_view(m, cal, 0, cal_n, &t, &view, eb)) == 0)
            rc = eng_quantize_int8_with(
                &m->graph, &view,
                &(eng_quant_opts){.method = opts->calibration_method == ROUSE_CALIB_PERCENTILE
                                                ? ENG_CALIB_PERCENTILE
                                                : ENG_CALIB_MINMAX},
                rep, eb);
        free(t);
        if (rc < 0) goto out;
    }
    m->graph.precision = prec;
    if (val_n) {
        if ((rc = run_samples(m, vs, val_first, val_n, NULL, &ref, acc, eb)) < 0) goto out;
        eng_acc_finish(acc);
    }
    acc->source = source;
    acc->n_samples = val_n;
out:
    ref_outputs_fini(&ref);
    return rc;
}

int rouse_model_compile_with(rouse_model *m, const char *path, const rouse_compile_options *opts,
                             rouse_errbuf *eb)
{
    if (m->from_plan)
        return rouse_err_set(eb, ROUSE_ESTATE, "compile needs a model loaded from ONNX");
    double ratio =
        opts && opts->max_plan_ratio > 0 ? opts->max_plan_ratio : ROUSE_DEFAULT_MAX_PLAN_RATIO;
    uint8_t sha[32];
    int rc = source_sha256_once(m, sha);
    if (rc < 0) return rouse_err_set(eb, rc, "cannot hash the model");
    eng_acc acc;
    eng_quant_report rep = {0};
    if (eng_acc_init(&acc, m) < 0) {
        eng_acc_fini(&acc);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    if ((rc = lower_precision(m, opts, &acc, &rep, eb)) < 0) {
        eng_acc_fini(&acc);
        return rc;
    }
    rouse_accuracy report = {
        .precision = m->graph.precision,
        .source = acc.source,
        .n_samples = acc.n_samples,
        .n_outputs = acc.source ? acc.n : 0,
        .outputs = acc.out,
        .n_kept_fp32 = rep.n_kept,
        .kept_fp32 = rep.kept,
    };

    /* Prepare once for the declared shapes (a dynamic dim counts as 1) so the
     * file carries the weights in the layouts the kernels chose. The plan
     * keeps the whole graph: sessions over it prepare for each input shape
     * they see, as over the .onnx, and use these layouts where they fit. */
    const eng_graph *g = &m->graph;
    eng_tensor *shapes = calloc((size_t)g->n_inputs + 1, sizeof(*shapes));
    if (!shapes) {
        eng_acc_fini(&acc);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    bool preparable = true, dynamic = false;
    for (int i = 0; i < g->n_inputs; i++) {
        const rouse_tensor_info *ti = &m->inputs[i];
        preparable &= ti->rank >= 0 && !m->value_matters[i];
        shapes[i].dtype = ti->dtype;
        shapes[i].rank = ti->rank < 0 ? 0 : ti->rank;
        for (int k = 0; k < ti->rank; k++) {
            dynamic |= ti->shape[k] < 0;
            shapes[i].shape[k] = ti->shape[k] < 0 ? 1 : ti->shape[k];
        }
    }
    rouse_session *s = NULL;
    eng_packed_set made = {0, NULL};
    if (preparable) {
        rc = session_create_for(m, NULL, shapes, &s, eb);
        if (rc < 0 && !dynamic) {
            free(shapes);
            eng_acc_fini(&acc);
            return rc;
        }
        /* A size of 1 may be no valid size of a dynamic dim (a 3x3
         * convolution without padding needs 3): the plan then carries the
         * plain weights only, and kernels lay them out when preparing. */
        if (rc < 0 && eb) rouse_errbuf_clear(eb);
        if (s) eng_plan_get_made(session_plan(s), &made);
    }
    /* The model's size counts its external data files: the plan holds those
     * weights too. */
    uint64_t model_bytes = (uint64_t)m->src_len;
    for (int i = 0; i < m->onnx.n_maps; i++)
        model_bytes += m->onnx.maps[i].len;
    rc = eng_plan_file_write(path, g, sha, &made, &report, model_bytes, ratio, eb);
    rouse_session_destroy(s);
    free(shapes);
    eng_acc_fini(&acc);
    return rc;
}

int rouse_model_load_cached(const char *onnx_path, const char *cache_dir, rouse_model **out,
                            int *from_cache, rouse_errbuf *eb)
{
    rouse_model *src = NULL;
    int rc = rouse_model_load(onnx_path, &src, eb);
    if (rc < 0) return rc;
    uint8_t sha[32];
    char hex[65], path[4096];
    if ((rc = source_sha256_once(src, sha)) < 0) {
        rouse_model_destroy(src);
        return rouse_err_set(eb, rc, "cannot hash %s", onnx_path);
    }
    rouse_sha256_hex(sha, hex);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.plan", cache_dir, hex) >= sizeof(path)) {
        rouse_model_destroy(src);
        return rouse_err_set(eb, ROUSE_EINVAL, "plan cache path too long");
    }
    rouse_model *m = NULL;
    rouse_errbuf ignored;
    rc = rouse_model_open_plan(path, &m, &ignored);
    if (rc == 0 && memcmp(m->plan_sha256, sha, 32) == 0) {
        rouse_model_destroy(src);
        *from_cache = 1;
        *out = m;
        return 0;
    }
    if (rc == 0) rouse_model_destroy(m);
    /* Missing, stale (another machine or build) or damaged: compile anew. */
    *from_cache = 0;
    if (mkdir(cache_dir, 0755) < 0 && errno != EEXIST) {
        rouse_model_destroy(src);
        return rouse_err_set(eb, ROUSE_EIO, "%s: %s", cache_dir, strerror(errno));
    }
    rc = rouse_model_compile(src, path, eb);
    rouse_model_destroy(src);
    if (rc < 0) return rc;
    return rouse_model_open_plan(path, out, eb);
}

int rouse_model_load_cached_known(const char *onnx_path, const char *sha256_hex,
                                  const char *cache_dir, rouse_model **out, int *from_cache,
                                  rouse_errbuf *eb)
{
    /* Reading and hashing the .onnx costs O(weight bytes) (tens of ms for
     * resnet18); a caller that knows the digest skips both when the plan is
     * there. The plan must record that digest, so a stale or foreign file
     * under the name is never taken; any miss takes the full path. */
    char path[4096];
    if (rouse_sha256_hex_valid(sha256_hex) &&
        (size_t)snprintf(path, sizeof(path), "%s/%s.plan", cache_dir, sha256_hex) < sizeof(path)) {
        rouse_model *m = NULL;
        rouse_errbuf ignored;
        if (rouse_model_open_plan(path, &m, &ignored) == 0 && m) {
            char got[65];
            rouse_sha256_hex(m->plan_sha256, got);
            if (strcmp(got, sha256_hex) == 0) {
                *from_cache = 1;
                *out = m;
                return 0;
            }
            rouse_model_destroy(m);
        }
    }
    return rouse_model_load_cached(onnx_path, cache_dir, out, from_cache, eb);
}

/* --- sessions --------------------------------------------------------------------------- */

static void set_threads(const rouse_session *s)
{
    omp_set_num_threads(s->threads);
}

/* Pins thread k of the OpenMP team to the k-th CPU this process may use, so
 * that two of the session's threads never share a core. Runs a parallel
 * region: call it only when running, never while preparing (fork safety). */
static void pin_team(rouse_session *s)
{
    s->pinned = true;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
    int cpus[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
#pragma omp parallel num_threads(s->threads)
    {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[omp_get_thread_num() % n], &one);
        /* The calling thread (0), not pthread_self(): an instance forked
         * with a raw clone (worker_fork_sibling) has its parent's thread id
         * in its C library state. */
        sched_setaffinity(0, sizeof(one), &one);
    }
}

static void slot_clear(const rouse_model *m, plan_slot *sl)
{
    eng_plan_destroy(sl->plan);
    sl->plan = NULL;
    for (int i = 0; i < m->graph.n_inputs; i++) {
        free(sl->key_values[i]);
        sl->key_values[i] = NULL;
    }
}

static bool slot_matches(const rouse_model *m, const plan_slot *sl, const eng_tensor *inputs)
{
    if (!sl->plan) return false;
    for (int i = 0; i < m->graph.n_inputs; i++) {
        const eng_tensor *k = &sl->key[i];
        if (k->dtype != inputs[i].dtype ||
            !eng_shape_equal(k->rank, k->shape, inputs[i].rank, inputs[i].shape))
            return false;
        if (m->value_matters[i] &&
            (!sl->key_values[i] ||
             memcmp(sl->key_values[i], inputs[i].data, (size_t)eng_tensor_nbytes(&inputs[i])) != 0))
            return false;
    }
    return true;
}

/* The slot a new plan goes to: a free one, else the least recently used. */
static int slot_victim(rouse_session *s)
{
    int v = 0;
    for (int i = 0; i < s->n_slots; i++) {
        if (!s->slots[i].plan) return i;
        if (s->slots[i].last_use < s->slots[v].last_use) v = i;
    }
    s->evictions++;
    return v;
}

/* Prepares for `inputs` into a slot (evicting the least recently used plan
 * when all are taken) and makes it current. */
static int prepare(rouse_session *s, const eng_tensor *inputs, rouse_errbuf *eb)
{
    const rouse_model *m = s->model;
    set_threads(s);
    eng_plan *plan = NULL;
    int rc = eng_plan_create_limited(&m->graph, s->dnnl, inputs, s->reference, &m->packed,
                                     s->max_activation_bytes, &plan, eb);
    if (rc < 0) return rc;
    int v = slot_victim(s);
    plan_slot *sl = &s->slots[v];
    slot_clear(m, sl);
    sl->plan = plan;
    sl->last_use = s->tick;
    s->cur = v;
    for (int i = 0; i < m->graph.n_inputs; i++) {
        sl->key[i] = inputs[i];
        sl->key[i].data = NULL;
        if (m->value_matters[i] && inputs[i].data) {
            size_t nb = (size_t)eng_tensor_nbytes(&inputs[i]);
            sl->key_values[i] = malloc(nb ? nb : 1);
            if (!sl->key_values[i]) {
                slot_clear(m, sl);
                s->cur = -1;
                return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            }
            memcpy(sl->key_values[i], inputs[i].data, nb);
        }
    }
    return 0;
}

/* Makes the plan for `inputs` current: from the cache, or prepared now. */
static int plan_for(rouse_session *s, const eng_tensor *inputs, rouse_errbuf *eb)
{
    s->tick++;
    for (int i = 0; i < s->n_slots; i++) {
        if (!slot_matches(s->model, &s->slots[i], inputs)) continue;
        s->slots[i].last_use = s->tick;
        s->cur = i;
        s->hits++;
        return 0;
    }
    s->misses++;
    return prepare(s, inputs, eb);
}

static const eng_plan *session_plan(const rouse_session *s)
{
    return s->cur >= 0 ? s->slots[s->cur].plan : NULL;
}

/* A session, prepared now for `shapes` when given (graph input order). */
static int session_create_for(rouse_model *m, const rouse_session_options *opts,
                              const eng_tensor *shapes, rouse_session **out, rouse_errbuf *eb)
{
    rouse_session *s = calloc(1, sizeof(*s));
    if (!s) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    s->model = m;
    s->threads = opts && opts->threads > 0 ? opts->threads : 1;
    /* More threads than CPUs this process may use would make every barrier
     * wait for a descheduled thread (tens of times slower, measured). */
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) > 0 &&
        s->threads > CPU_COUNT(&allowed)) {
        LOG_WARN("engine", "%d threads requested, %d CPUs available: using %d", s->threads,
                 CPU_COUNT(&allowed), CPU_COUNT(&allowed));
        s->threads = CPU_COUNT(&allowed);
    }
    s->reference = opts && opts->reference_kernels;
    s->max_activation_bytes = opts ? opts->max_activation_bytes : 0;
    s->batch_dim0 = opts && opts->batch_dim0;
    s->pin = opts && opts->pin_threads && s->threads > 1;
    int n = m->graph.n_inputs, rc;
    s->cur = -1;
    if (opts && opts->plan_cache_size < 0) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "plan_cache_size must be >= 0, got %d",
                           opts->plan_cache_size);
        goto out_fail;
    }
    s->n_slots = opts && opts->plan_cache_size > 0 ? opts->plan_cache_size
                                                   : ROUSE_PLAN_CACHE_DEFAULT;
    s->slots = calloc((size_t)s->n_slots, sizeof(*s->slots));
    s->bound = calloc((size_t)n + 1, sizeof(*s->bound));
    if (!s->slots || !s->bound) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_fail;
    }
    for (int i = 0; i < s->n_slots; i++) {
        s->slots[i].key = calloc((size_t)n + 1, sizeof(eng_tensor));
        s->slots[i].key_values = calloc((size_t)n + 1, sizeof(void *));
        if (!s->slots[i].key || !s->slots[i].key_values) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            goto out_fail;
        }
    }
    if ((rc = eng_dnnl_ctx_create(&s->dnnl, eb)) < 0) goto out_fail;
    eng_dnnl_ctx_set_gemv_rows(s->dnnl, opts ? opts->gemv_max_rows : 1);
    if (shapes && (rc = plan_for(s, shapes, eb)) < 0) goto out_fail;
    *out = s;
    return 0;
out_fail:
    rouse_session_destroy(s);
    return rc;
}

int rouse_session_create(rouse_model *m, const rouse_session_options *opts, rouse_session **out,
                         rouse_errbuf *eb)
{
    /* Static shapes: prepare now, so the first run pays nothing extra. */
    int n = m->graph.n_inputs;
    eng_tensor *shapes = calloc((size_t)n + 1, sizeof(*shapes));
    if (!shapes) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    bool is_static = true;
    for (int i = 0; i < n && is_static; i++) {
        const rouse_tensor_info *ti = &m->inputs[i];
        is_static = ti->rank >= 0 && !m->value_matters[i];
        for (int k = 0; k < ti->rank && is_static; k++)
            is_static = ti->shape[k] >= 0;
        shapes[i].dtype = ti->dtype;
        shapes[i].rank = ti->rank;
        if (ti->rank > 0) memcpy(shapes[i].shape, ti->shape, sizeof(int64_t) * (size_t)ti->rank);
    }
    int rc = session_create_for(m, opts, is_static ? shapes : NULL, out, eb);
    free(shapes);
    return rc;
}

/* A declared shape with symbolic dims by name: "[batch, 3, height, width]". */
static const char *declared_str(const rouse_tensor_info *ti, char *buf, size_t len)
{
    if (ti->rank < 0) return "(any)";
    size_t off = 0;
    buf[0] = '\0';
    for (int k = 0; k < ti->rank && off < len; k++) {
        const char *sep = k ? ", " : "[";
        if (ti->dim_names && ti->dim_names[k])
            off += (size_t)snprintf(buf + off, len - off, "%s%s", sep, ti->dim_names[k]);
        else if (ti->shape[k] < 0)
            off += (size_t)snprintf(buf + off, len - off, "%s?", sep);
        else
            off += (size_t)snprintf(buf + off, len - off, "%s%lld", sep, (long long)ti->shape[k]);
    }
    if (off < len) snprintf(buf + off, len - off, ti->rank ? "]" : "[]");
    return buf;
}

/* A symbolic dim names one size: every input that declares it must give it
 * the same size in a run. */
static int check_symbols(const rouse_model *m, const eng_tensor *bound, rouse_errbuf *eb)
{
    int n = m->graph.n_inputs;
    for (int i = 0; i < n; i++) {
        const rouse_tensor_info *a = &m->inputs[i];
        for (int k = 0; a->dim_names && k < a->rank; k++) {
            if (!a->dim_names[k]) continue;
            for (int j = 0; j <= i; j++) {
                const rouse_tensor_info *b = &m->inputs[j];
                for (int l = 0; b->dim_names && l < b->rank && (j < i || l < k); l++) {
                    if (!b->dim_names[l] || strcmp(a->dim_names[k], b->dim_names[l]) != 0 ||
                        bound[i].shape[k] == bound[j].shape[l])
                        continue;
                    return rouse_err_set(eb, ROUSE_EMISMATCH,
                                         "dim '%s' is %lld in input '%s' (dim %d) but %lld in "
                                         "input '%s' (dim %d)",
                                         a->dim_names[k], (long long)bound[i].shape[k], a->name, k,
                                         (long long)bound[j].shape[l], b->name, l);
                }
            }
        }
    }
    return 0;
}

/* Matches the caller's inputs to the model's by name and checks them;
 * shapes_only takes inputs without data (preparing ahead of a run). */
static int bind_inputs(rouse_session *s, const rouse_tensor *inputs, int n_inputs, bool shapes_only,
                       rouse_errbuf *eb)
{
    const rouse_model *m = s->model;
    int n = m->graph.n_inputs;
    for (int i = 0; i < n; i++)
        s->bound[i].data = NULL;
    for (int j = 0; j < n_inputs; j++) {
        const rouse_tensor *t = &inputs[j];
        int i = 0;
        while (i < n && (!t->name || strcmp(t->name, m->inputs[i].name) != 0))
            i++;
        if (i == n)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "unknown input '%s' (the model's first input is '%s')",
                                 t->name ? t->name : "(null)", n ? m->inputs[0].name : "");
        if (s->bound[i].data)
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s' is given twice", t->name);
        const rouse_tensor_info *ti = &m->inputs[i];
        if (t->dtype != ti->dtype)
            return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s' must be %s, got %s", ti->name,
                                 eng_dtype_name(ti->dtype), eng_dtype_name(t->dtype));
        if (t->rank < 0 || t->rank > ROUSE_MAX_RANK)
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s' has invalid rank %d", ti->name,
                                 t->rank);
        char want[256], got[128];
        bool ok = ti->rank < 0 || ti->rank == t->rank;
        for (int k = 0; ok && k < t->rank; k++)
            ok = t->shape[k] >= 0 && (ti->rank < 0 || ti->shape[k] < 0 ||
                                      ti->shape[k] == t->shape[k] || (k == 0 && s->batch_dim0));
        if (!ok)
            return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s' must have shape %s, got %s",
                                 ti->name, declared_str(ti, want, sizeof(want)),
                                 eng_shape_str(t->rank, t->shape, got, sizeof(got)));
        eng_tensor *b = &s->bound[i];
        b->dtype = t->dtype;
        b->rank = t->rank;
        memcpy(b->shape, t->shape, sizeof(int64_t) * (size_t)t->rank);
        int64_t nb = eng_tensor_nbytes(b);
        if (nb < 0 || (size_t)nb != t->nbytes)
            return rouse_err_set(eb, ROUSE_EMISMATCH,
                                 "input '%s': shape %s of %s needs %lld bytes, got %zu", ti->name,
                                 eng_shape_str(t->rank, t->shape, got, sizeof(got)),
                                 eng_dtype_name(t->dtype), (long long)nb, t->nbytes);
        if (!t->data && nb > 0 && !shapes_only)
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s' has no data", ti->name);
        /* A zero-size input still needs a non-NULL pointer to count as given. */
        b->data = t->data ? (void *)t->data : (void *)b;
    }
    for (int i = 0; i < n; i++)
        if (!s->bound[i].data)
            return rouse_err_set(eb, ROUSE_EINVAL, "missing input '%s'", m->inputs[i].name);
    return check_symbols(m, s->bound, eb);
}

int rouse_session_prepare(rouse_session *s, const rouse_tensor *inputs, int n_inputs,
                          rouse_errbuf *eb)
{
    for (int i = 0; i < s->model->graph.n_inputs; i++)
        if (s->model->value_matters[i])
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "shapes depend on the values of input '%s': nothing to prepare "
                                 "ahead of a run",
                                 s->model->inputs[i].name);
    int rc = bind_inputs(s, inputs, n_inputs, true, eb);
    if (rc < 0) return rc;
    s->has_output = false;
    return plan_for(s, s->bound, eb);
}

int rouse_session_run(rouse_session *s, const rouse_tensor *inputs, int n_inputs, rouse_errbuf *eb)
{
    int rc = bind_inputs(s, inputs, n_inputs, false, eb);
    if (rc < 0) return rc;
    s->has_output = false;
    if ((rc = plan_for(s, s->bound, eb)) < 0) return rc;
    set_threads(s);
    if (s->pin && !s->pinned) pin_team(s);
    if (s->profile && eng_plan_set_profiling(s->slots[s->cur].plan, true) < 0)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if ((rc = eng_plan_run(s->slots[s->cur].plan, s->bound, eb)) < 0) return rc;
    s->has_output = true;
    return 0;
}

int rouse_session_output(const rouse_session *s, int i, rouse_tensor *out)
{
    if (!s->has_output) return ROUSE_ESTATE;
    if (i < 0 || i >= s->model->graph.n_outputs) return ROUSE_ERANGE;
    const eng_tensor *t = eng_plan_output(session_plan(s), i);
    memset(out, 0, sizeof(*out));
    out->name = s->model->outputs[i].name;
    out->dtype = t->dtype;
    out->rank = t->rank;
    memcpy(out->shape, t->shape, sizeof(int64_t) * (size_t)t->rank);
    out->data = t->data;
    out->nbytes = (size_t)eng_tensor_nbytes(t);
    return 0;
}

int rouse_session_warm_up(rouse_session *s, rouse_errbuf *eb)
{
    const rouse_model *m = s->model;
    int n = m->graph.n_inputs;
    if (s->cur < 0)
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "warm-up needs static input shapes (nothing prepared)");
    const eng_tensor *key = s->slots[s->cur].key;
    rouse_tensor *in = calloc((size_t)n + 1, sizeof(*in));
    void **bufs = calloc((size_t)n + 1, sizeof(void *));
    int rc = 0;
    if (!in || !bufs) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    /* Zeros of the shapes the session was prepared for: every index input
     * (Gather) stays in range, and the run touches exactly the memory a real
     * one does. */
    for (int i = 0; i < n; i++) {
        const eng_tensor *k = &key[i];
        size_t nb = (size_t)eng_tensor_nbytes(k);
        bufs[i] = calloc(1, nb ? nb : 1);
        if (!bufs[i]) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            goto out;
        }
        in[i] = (rouse_tensor){.name = m->inputs[i].name,
                               .dtype = k->dtype,
                               .rank = k->rank,
                               .data = bufs[i],
                               .nbytes = nb};
        memcpy(in[i].shape, k->shape, sizeof(int64_t) * (size_t)k->rank);
    }
    rc = rouse_session_run(s, in, n, eb);
    s->has_output = false; /* nobody asked for these outputs */
out:
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(in);
    return rc;
}

int rouse_session_set_profiling(rouse_session *s, int on)
{
    s->profile = on != 0;
    if (!s->profile)
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].plan) eng_plan_set_profiling(s->slots[i].plan, false);
    return 0;
}

int rouse_session_profile_count(const rouse_session *s)
{
    return s->cur >= 0 ? eng_plan_profile_count(s->slots[s->cur].plan) : 0;
}

int rouse_session_profile_entry(const rouse_session *s, int i, rouse_profile_entry *out)
{
    if (i < 0 || i >= rouse_session_profile_count(s)) return ROUSE_ERANGE;
    eng_step_profile sp;
    eng_plan_profile_step(s->slots[s->cur].plan, i, &sp);
    *out = (rouse_profile_entry){.node = sp.node,
                                 .op = sp.op,
                                 .kernel = sp.kernel,
                                 .fused = sp.fused,
                                 .total_ns = sp.ns,
                                 .min_ns = sp.min_ns,
                                 .runs = sp.runs};
    return 0;
}

int rouse_session_get_stats(const rouse_session *s, rouse_session_stats *out)
{
    if (s->cur < 0) return ROUSE_ESTATE;
    eng_plan_stats st;
    eng_plan_get_stats(s->slots[s->cur].plan, &st);
    out->steps = st.n_steps;
    out->dnnl_steps = st.n_dnnl;
    out->ref_steps = st.n_ref;
    out->reorders = st.n_reorders;
    out->sum_fused = st.n_sum_fused;
    out->folded = st.n_folded;
    out->arena_bytes = st.arena_bytes;
    out->scratch_bytes = st.scratch_bytes;
    out->weight_bytes = st.weight_bytes;
    out->ref_macs = st.ref_macs;
    return 0;
}

void rouse_session_get_plan_cache(const rouse_session *s, rouse_plan_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = s->n_slots;
    for (int i = 0; i < s->n_slots; i++)
        out->entries += s->slots[i].plan != NULL;
    out->hits = s->hits;
    out->misses = s->misses;
    out->evictions = s->evictions;
}

void rouse_session_destroy(rouse_session *s)
{
    if (!s) return;
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        if (s->slots[i].key_values) slot_clear(s->model, &s->slots[i]);
        free(s->slots[i].key);
        free(s->slots[i].key_values);
    }
    free(s->slots);
    eng_dnnl_ctx_destroy(s->dnnl);
    free(s->bound);
    free(s);
}
