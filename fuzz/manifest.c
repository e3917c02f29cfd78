/*
 * libFuzzer target for the manifest parser (rouse apply / rouse diff,
 * src/cli/manifest.c): any bytes as a manifest file must give a manifest or
 * an error naming file and line, never a crash, a leak or an out-of-bounds
 * read. What loads is used as the CLI uses it: each function's config is
 * written as the JSON sent to serve, and its fields' lines are looked up.
 *
 * The manifest sits in a private folder beside a model file "m.onnx", so
 * that inputs naming that model get past the file check into the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/manifest.h"
#include "common/buf.h"

static char g_path[4200];

static void setup_dir(void)
{
    char dir[4096];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/rouse-fuzz-manifest-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) abort();
    char model[4200];
    snprintf(model, sizeof(model), "%s/m.onnx", dir);
    FILE *f = fopen(model, "wb");
    if (!f) abort();
    fputs("not a model: the parser only checks that the file exists", f);
    fclose(f);
    snprintf(g_path, sizeof(g_path), "%s/rouse.yaml", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) setup_dir();
    FILE *f = fopen(g_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    manifest m;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (manifest_load(g_path, &m, &eb) == 0) {
        for (int i = 0; i < m.n_fns; i++) {
            const manifest_fn *fn = &m.fns[i];
            rouse_buf b;
            rouse_buf_init(&b);
            if (fn->config) cfg_write(fn->config, &b);
            rouse_buf_fini(&b);
            static const char *const keys[] = {"scaling.max", "memory_mb", "async.max_age_ms",
                                               "nope", ""};
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                (void)manifest_key_line(fn, keys[k]);
        }
    } else if (!eb.msg[0]) {
        abort(); /* an error must say what is wrong */
    }
    manifest_fini(&m);
    return 0;
}
