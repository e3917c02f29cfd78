/*
 * ONNX external data: initializers whose bytes live in files next to the
 * model (data_location EXTERNAL; external_data location/offset/length), the
 * form exporters use past protobuf's 2 GiB limit.
 *
 * Each file is opened once, beneath the model's folder, and mapped whole,
 * read-only and shared (like the model file itself): weights are used in
 * place, never copied, and processes that load the same model share its
 * pages. The location comes from an untrusted file, so it must name a file
 * inside the folder: no absolute path, no ".." component, no symbolic link
 * that leads out (openat2 RESOLVE_BENEATH where the kernel has it; any
 * symbolic link is refused otherwise), and [offset, offset + length) must
 * lie inside the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __has_include
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif

#include "engine/onnx/onnx.h"

#define NAME_FMT "%.80s"

/* A location that names a file inside the folder, lexically. */
static bool location_ok(const char *loc)
{
    if (!loc[0] || loc[0] == '/') return false;
    const char *c = loc;
    while (*c) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == 2 && c[0] == '.' && c[1] == '.') return false;
        if (!end) break;
        c = end + 1;
    }
    return loc[strlen(loc) - 1] != '/';
}

static int open_beneath(int dirfd, const char *loc)
{
#ifdef HAVE_OPENAT2
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dirfd, loc, &how, sizeof(how));
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
#endif
    /* Without openat2: walk the components refusing symbolic links. */
    char part[4096];
    if (strlen(loc) >= sizeof(part)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(part, loc);
    int cur = dup(dirfd);
    if (cur < 0) return -1;
    char *save = NULL;
    char *tok = strtok_r(part, "/", &save);
    while (tok) {
        char *next = strtok_r(NULL, "/", &save);
        int flags = O_CLOEXEC | O_NOFOLLOW | (next ? O_DIRECTORY | O_PATH : O_RDONLY);
        int sub = openat(cur, tok, flags);
        close(cur);
        if (sub < 0) return -1;
        cur = sub;
        tok = next;
    }
    return cur;
}

/* Maps the file at `loc`, or finds it mapped already (several initializers
 * usually share one file). Returns the mapping's index. */
static int map_location(onnx_model *m, int dirfd, const char **names, const char *loc,
                        rouse_errbuf *eb)
{
    for (int i = 0; i < m->n_maps; i++)
        if (strcmp(names[i], loc) == 0) return i;
    int fd = open_beneath(dirfd, loc);
    if (fd < 0)
        return rouse_err_set(eb, errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EFORMAT,
                             "external data file '" NAME_FMT "': %s", loc,
                             errno == EXDEV || errno == ELOOP
                                 ? "it leads outside the model's folder"
                                 : strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "external data file '" NAME_FMT "' is not a regular file", loc);
    }
    void *addr = NULL;
    size_t len = (size_t)sb.st_size;
    if (len) {
        addr = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (addr == MAP_FAILED) {
            int e = errno;
            close(fd);
            return rouse_err_set(eb, ROUSE_EIO, "external data file '" NAME_FMT "': mmap: %s",
                                 loc, strerror(e));
        }
    }
    close(fd);
    m->maps[m->n_maps] = (onnx_mapping){.addr = addr, .len = len};
    names[m->n_maps] = loc;
    return m->n_maps++;
}

int onnx_model_map_external(onnx_model *m, const char *dir, rouse_errbuf *eb)
{
    onnx_graph *g = &m->graph;
    int n_ext = 0;
    for (int i = 0; i < g->n_initializers; i++)
        n_ext += g->initializers[i].location != NULL;
    if (!n_ext) return 0;
    const onnx_tensor *first = NULL;
    for (int i = 0; i < g->n_initializers && !first; i++)
        if (g->initializers[i].location) first = &g->initializers[i];
    if (!dir)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "initializer '" NAME_FMT "' keeps its data in the file '" NAME_FMT
                             "': load the model from its path so that the file can be found",
                             first->name, first->location);
    m->maps = rouse_arena_calloc(&m->arena, (size_t)n_ext, sizeof(*m->maps), 16);
    const char **names = rouse_arena_calloc(&m->arena, (size_t)n_ext, sizeof(*names), 16);
    if (!m->maps || !names) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return rouse_err_set(eb, ROUSE_EIO, "%s: %s", dir, strerror(errno));
    int rc = 0;
    for (int i = 0; i < g->n_initializers && rc == 0; i++) {
        onnx_tensor *t = &g->initializers[i];
        if (!t->location) continue;
        if (!location_ok(t->location)) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "initializer '" NAME_FMT "': external data location '" NAME_FMT
                               "' must be a relative path inside the model's folder",
                               t->name, t->location);
            break;
        }
        int k = map_location(m, dirfd, names, t->location, eb);
        if (k < 0) {
            rc = rouse_err_wrap(eb, k, "initializer '" NAME_FMT "'", t->name);
            break;
        }
        const onnx_mapping *mp = &m->maps[k];
        uint64_t avail = t->ext_offset <= mp->len ? mp->len - t->ext_offset : 0;
        uint64_t want = t->ext_length >= 0 ? (uint64_t)t->ext_length : avail;
        if (t->ext_offset > mp->len || want > avail || want != t->nbytes) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "initializer '" NAME_FMT "': external data at offset %llu, %llu "
                               "bytes, does not fit '" NAME_FMT "' (%zu bytes) or the tensor's "
                               "%zu bytes",
                               t->name, (unsigned long long)t->ext_offset,
                               (unsigned long long)want, t->location, mp->len, t->nbytes);
            break;
        }
        /* A zero-byte tensor still gets a non-NULL pointer (the decoder's rule). */
        t->data = mp->addr ? (const char *)mp->addr + t->ext_offset : (const void *)mp;
        t->in_place = true;
    }
    close(dirfd);
    return rc;
}
