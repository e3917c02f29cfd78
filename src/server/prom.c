/*
 * The Prometheus text exposition format (prom.h).
 */
#include "server/prom.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const uint64_t bounds_us[PROM_N_BUCKETS] = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};
static const char *const bounds_text[PROM_N_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "30",    "60",
};

void prom_hist_observe(prom_hist *h, uint64_t us)
{
    int i = 0;
    while (i < PROM_N_BUCKETS && us > bounds_us[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_us += us;
}

int prom_family(rouse_buf *b, const char *name, const char *type, const char *help)
{
    return rouse_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_labels_init(prom_labels *l)
{
    l->len = 0;
    l->text[0] = '\0';
}

/* Appends one character, keeping room for the closing brace. */
static void put(prom_labels *l, char c)
{
    if (l->len < (int)sizeof(l->text) - 2) {
        l->text[l->len++] = c;
        l->text[l->len] = '\0';
    }
}

void prom_label(prom_labels *l, const char *key, const char *value)
{
    put(l, l->len ? ',' : '{');
    for (const char *k = key; *k; k++)
        put(l, *k);
    put(l, '=');
    put(l, '"');
    for (const char *v = value; *v; v++) {
        if (*v == '\\' || *v == '"') {
            put(l, '\\');
            put(l, *v);
        } else if (*v == '\n') {
            put(l, '\\');
            put(l, 'n');
        } else {
            put(l, *v);
        }
    }
    put(l, '"');
}

void prom_label_int(prom_labels *l, const char *key, int64_t value)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, value);
    prom_label(l, key, num);
}

static const char *labels_text(const prom_labels *l)
{
    return l && l->len ? l->text : "";
}

int prom_sample(rouse_buf *b, const char *name, const prom_labels *l, double value)
{
    return rouse_buf_appendf(b, "%s%s%s %.15g\n", name, labels_text(l), l && l->len ? "}" : "",
                             value);
}

int prom_sample_u64(rouse_buf *b, const char *name, const prom_labels *l, uint64_t value)
{
    return rouse_buf_appendf(b, "%s%s%s %" PRIu64 "\n", name, labels_text(l),
                             l && l->len ? "}" : "", value);
}

int prom_hist_write(rouse_buf *b, const char *name, const prom_labels *l, const prom_hist *h)
{
    const char *lt = labels_text(l);
    const char *sep = l && l->len ? "," : "{";
    uint64_t cum = 0;
    int rc = 0;
    for (int i = 0; i <= PROM_N_BUCKETS && rc == 0; i++) {
        cum += h->bucket[i];
        rc = rouse_buf_appendf(b, "%s_bucket%s%sle=\"%s\"} %" PRIu64 "\n", name, lt, sep,
                               i < PROM_N_BUCKETS ? bounds_text[i] : "+Inf", cum);
    }
    if (rc == 0)
        rc = rouse_buf_appendf(b, "%s_sum%s%s %.6f\n", name, lt, l && l->len ? "}" : "",
                               (double)h->sum_us / 1e6);
    if (rc == 0)
        rc = rouse_buf_appendf(b, "%s_count%s%s %" PRIu64 "\n", name, lt, l && l->len ? "}" : "",
                               h->count);
    return rc;
}
