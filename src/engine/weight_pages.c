/*
 * Huge-page copies of compiled plans (see rouse/weight_pages.h).
 * Invariants: a kept copy is read-only and never changes while it is kept;
 * a copy in use (found and not yet released) is never unmapped; the bytes
 * kept stay within ROUSE_WEIGHT_PAGES_MAX_BYTES. The table is the
 * process's own (no locks: the processes that keep copies are single
 * threaded when they do; children get a snapshot at fork).
 */
#include "rouse/weight_pages.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define KEPT_MAX 64

typedef struct kept {
    unsigned long dev, ino;
    long long size, mtime_ns;
    void *base;     /* NULL: a free slot */
    size_t map_len; /* bytes mapped (size rounded up to 2 MiB) */
    rouse_weight_pages kind;
    int users;
    unsigned long long seq; /* order of making, for eviction */
} kept;

static kept table[KEPT_MAX];
static size_t kept_bytes;
static unsigned long long next_seq = 1;

const char *rouse_weight_pages_name(rouse_weight_pages k)
{
    switch (k) {
    case ROUSE_WEIGHT_PAGES_HUGETLB:
        return "hugetlb";
    case ROUSE_WEIGHT_PAGES_THP:
        return "thp";
    default:
        return "4k";
    }
}

int rouse_weight_pages_parse(const char *s, rouse_weight_pages *out)
{
    if (!s) return ROUSE_EINVAL;
    if (strcmp(s, "auto") == 0) return 1;
    if (strcmp(s, "hugetlb") == 0)
        *out = ROUSE_WEIGHT_PAGES_HUGETLB;
    else if (strcmp(s, "thp") == 0)
        *out = ROUSE_WEIGHT_PAGES_THP;
    else if (strcmp(s, "4k") == 0)
        *out = ROUSE_WEIGHT_PAGES_4K;
    else
        return ROUSE_EINVAL;
    return 0;
}

/* The first line of a small file, without its newline; "" when unreadable. */
static void read_line(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f) return;
    if (!fgets(buf, (int)cap, f)) buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

/* A hugetlbfs memfd of len bytes mapped shared and writable, or NULL
 * (errno set): mmap reserves the pages, so a pool too small fails here
 * rather than with SIGBUS on a later write. */
static void *hugetlb_map(size_t len)
{
    int fd = memfd_create("rouse-weights", MFD_CLOEXEC | MFD_HUGETLB);
    if (fd < 0) return NULL;
    void *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0)
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    errno = e;
    return map == MAP_FAILED ? NULL : map;
}

/* len bytes (a multiple of 2 MiB) of private anonymous memory on a 2 MiB
 * boundary, advised MADV_HUGEPAGE; NULL when out of memory. */
static void *thp_map(size_t len)
{
    void *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    size_t head = start - (uintptr_t)raw;
    if (head) munmap(raw, head);
    munmap((char *)start + len, HUGE_PAGE - head);
    madvise((void *)start, len, MADV_HUGEPAGE);
    return (void *)start;
}

int rouse_weight_pages_choose(const char *want, rouse_weight_pages *out, rouse_errbuf *eb)
{
    rouse_weight_pages k = ROUSE_WEIGHT_PAGES_4K;
    int p = rouse_weight_pages_parse(want, &k);
    if (p < 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "weight pages '%s': expected auto, hugetlb, thp or 4k",
                             want ? want : "");
    bool any = p == 1;
    if (any || k == ROUSE_WEIGHT_PAGES_HUGETLB) {
        void *map = hugetlb_map(HUGE_PAGE);
        if (map) {
            munmap(map, HUGE_PAGE);
            *out = ROUSE_WEIGHT_PAGES_HUGETLB;
            return 0;
        }
        if (!any) {
            char nr[32];
            read_line("/proc/sys/vm/nr_hugepages", nr, sizeof(nr));
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                                 "weight pages hugetlb: no 2 MiB huge page can be reserved (%s; "
                                 "vm.nr_hugepages is %s)",
                                 strerror(errno), nr[0] ? nr : "unknown");
        }
    }
    /* auto never takes thp: measured on resnet18 from zero, a private THP
     * copy made the first inference 1.4-3 ms slower than the file mapping
     * (the kernel maps large page-cache folios itself). */
    if (k == ROUSE_WEIGHT_PAGES_THP && !any) {
        char thp[128];
        read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
        if (thp[0] && !strstr(thp, "[never]")) {
            *out = ROUSE_WEIGHT_PAGES_THP;
            return 0;
        }
        if (!any)
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                                 "weight pages thp: transparent huge pages are off (%s)",
                                 thp[0] ? thp : "no /sys/kernel/mm/transparent_hugepage");
    }
    *out = ROUSE_WEIGHT_PAGES_4K;
    return 0;
}

static long long mtime_ns_of(const struct stat *sb)
{
    return (long long)sb->st_mtim.tv_sec * 1000000000ll + sb->st_mtim.tv_nsec;
}

static kept *lookup(unsigned long dev, unsigned long ino, long long size, long long mtime_ns)
{
    for (int i = 0; i < KEPT_MAX; i++) {
        kept *e = &table[i];
        if (e->base && e->dev == dev && e->ino == ino && e->size == size &&
            e->mtime_ns == mtime_ns)
            return e;
    }
    return NULL;
}

static void drop(kept *e)
{
    munmap(e->base, e->map_len);
    kept_bytes -= e->map_len;
    memset(e, 0, sizeof(*e));
}

/* A free slot with room for len more bytes, dropping the oldest unused
 * copies as needed; NULL when that is not enough. */
static kept *make_room(size_t len)
{
    if (len > ROUSE_WEIGHT_PAGES_MAX_BYTES) return NULL;
    for (;;) {
        kept *slot = NULL, *oldest = NULL;
        for (int i = 0; i < KEPT_MAX; i++) {
            kept *e = &table[i];
            if (!e->base) {
                if (!slot) slot = e;
            } else if (e->users == 0 && (!oldest || e->seq < oldest->seq)) {
                oldest = e;
            }
        }
        if (slot && kept_bytes + len <= ROUSE_WEIGHT_PAGES_MAX_BYTES) return slot;
        if (!oldest) return NULL;
        drop(oldest);
    }
}

/* Reads the whole file into dst. */
static int read_all(int fd, void *dst, size_t len)
{
    size_t at = 0;
    while (at < len) {
        ssize_t n = pread(fd, (char *)dst + at, len - at, (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        at += (size_t)n;
    }
    return 0;
}

int rouse_weight_pages_keep(const char *path, rouse_weight_pages k, rouse_weight_pages *got,
                            rouse_errbuf *eb)
{
    *got = ROUSE_WEIGHT_PAGES_4K;
    if (k == ROUSE_WEIGHT_PAGES_4K) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rouse_err_set(eb, ROUSE_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: not a regular file", path);
        goto out_close;
    }
    kept *e = lookup((unsigned long)sb.st_dev, (unsigned long)sb.st_ino, (long long)sb.st_size,
                     mtime_ns_of(&sb));
    if (e) {
        *got = e->kind;
        goto out_close;
    }
    size_t len = (size_t)sb.st_size;
    size_t map_len = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    kept *slot = make_room(map_len);
    if (!slot) {
        rc = rouse_err_set(eb, ROUSE_ETOOBIG,
                           "%s: %zu MiB of weight copies kept already (at most %zu MiB)", path,
                           kept_bytes >> 20, ROUSE_WEIGHT_PAGES_MAX_BYTES >> 20);
        goto out_close;
    }
    void *map = NULL;
    rouse_weight_pages kind = k;
    if (k == ROUSE_WEIGHT_PAGES_HUGETLB && !(map = hugetlb_map(map_len)))
        kind = ROUSE_WEIGHT_PAGES_THP; /* the reserved pool cannot hold it */
    if (!map && !(map = thp_map(map_len))) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "%s: no memory for a copy of %zu bytes", path, len);
        goto out_close;
    }
    if (read_all(fd, map, len) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: read: %s", path, strerror(errno));
        munmap(map, map_len);
        goto out_close;
    }
    mprotect(map, map_len, PROT_READ);
    *slot = (kept){.dev = (unsigned long)sb.st_dev,
                   .ino = (unsigned long)sb.st_ino,
                   .size = (long long)sb.st_size,
                   .mtime_ns = mtime_ns_of(&sb),
                   .base = map,
                   .map_len = map_len,
                   .kind = kind,
                   .seq = next_seq++};
    kept_bytes += map_len;
    *got = kind;
    rc = 1;
out_close:
    close(fd);
    return rc;
}

const void *rouse_weight_pages_find(unsigned long dev, unsigned long ino, long long size,
                                    long long mtime_ns, size_t *len, rouse_weight_pages *kind)
{
    kept *e = lookup(dev, ino, size, mtime_ns);
    if (!e) return NULL;
    e->users++;
    *len = (size_t)e->size;
    *kind = e->kind;
    return e->base;
}

void rouse_weight_pages_release(const void *buf)
{
    for (int i = 0; i < KEPT_MAX; i++)
        if (table[i].base && table[i].base == buf && table[i].users > 0) {
            table[i].users--;
            return;
        }
}

size_t rouse_weight_pages_kept_bytes(void)
{
    return kept_bytes;
}
