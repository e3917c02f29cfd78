/*
 * What listing usage records to ship costs the registry's writer
 * (`serve --state postgres://`, store/usage.h): the writer's CPU per
 * record inserting batches of 1,024 (64 rows per call, as usage.c's batch
 * does) into a fresh store without the list and into one with it (the
 * TEMP trigger), three rounds of 204,800 records each, in the same run.
 * Prints the CPU µs per record of both and their ratio.
 *
 *   build/usage_list_cost
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"
#include "store/usage.h"

#define BATCHES 200
#define BATCH 1024
#define SLICE 64

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static usage_rec recs[BATCH];

/* CPU µs per record into a new store in dir, listed or not. */
static double run(const char *dir, int listed)
{
    store *st;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (store_open(dir, &st, &eb) < 0 || (listed && usage_outbox_create(st, &eb) < 0)) {
        fprintf(stderr, "%s\n", eb.msg);
        exit(1);
    }
    for (int i = 0; i < BATCH; i++) {
        usage_rec *r = &recs[i];
        memset(r, 0, sizeof(*r));
        r->ts_us = 1796000000000000LL + i * 7;
        r->version = 1;
        r->run_us = 1234;
        r->total_us = 2000;
        r->memory_mb = 512;
        r->start = 1;
        r->status = 200;
        snprintf(r->request_id, sizeof(r->request_id), "%016x", i * 2654435761u);
        snprintf(r->function, sizeof(r->function), "mlp");
        snprintf(r->tenant, sizeof(r->tenant), "default");
    }
    double t0 = cpu_s();
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++)
            recs[i].ts_us += 10000;
        store_lock(st);
        sqlite3_exec(store_db(st), "BEGIN IMMEDIATE", NULL, NULL, NULL);
        int rc = listed ? usage_outbox_tx(st, &eb) : 0;
        for (int i = 0; i < BATCH && rc == 0; i += SLICE)
            rc = usage_insert_tx(st, recs + i, SLICE, &eb);
        sqlite3_exec(store_db(st), "COMMIT", NULL, NULL, NULL);
        store_unlock(st);
        if (rc < 0) {
            fprintf(stderr, "%s\n", eb.msg);
            exit(1);
        }
    }
    double us = (cpu_s() - t0) / (BATCHES * BATCH) * 1e6;
    store_close(st);
    return us;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    for (int round = 0; round < 3; round++) {
        char a[512], b[512];
        snprintf(a, sizeof(a), "%s/usage-list-cost-XXXXXX", tmp);
        snprintf(b, sizeof(b), "%s/usage-list-cost-XXXXXX", tmp);
        if (!mkdtemp(a) || !mkdtemp(b)) return 1;
        double plain = run(a, 0), listed = run(b, 1);
        printf("writer CPU per record: not listed %.2f us, listed %.2f us, ratio %.2f\n", plain,
               listed, listed / plain);
        char cmd[1100];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", a, b);
        if (system(cmd) != 0) return 1;
    }
    return 0;
}
