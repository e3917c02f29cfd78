/*
 * The serve <-> instance packet protocol (see ipc.h). Invariant: a packet is
 * accepted only when it is exactly one ipc_msg with the right magic, and a
 * passed descriptor is never leaked, whatever the packet looked like.
 */
#include "worker/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void ipc_msg_init(ipc_msg *m, ipc_type type, uint64_t id)
{
    memset(m, 0, sizeof(*m));
    m->magic = IPC_MAGIC;
    m->type = (uint32_t)type;
    m->id = id;
    m->json_len = -1;
}

int ipc_send_packet(int sock, const void *buf, size_t len, int fd)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n == (ssize_t)len) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n >= 0) errno = EMSGSIZE;
        return -1;
    }
}

ssize_t ipc_recv_packet(int sock, void *buf, size_t cap, int *fd, int flags)
{
    *fd = -1;
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    /* Collect every passed descriptor first so that none leaks on a bad packet. */
    int fds[4], n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && n_fds < 4; i++)
            memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n_fds > 1) {
        for (int i = 0; i < n_fds; i++)
            close(fds[i]);
        errno = EMSGSIZE;
        return -1;
    }
    if (n_fds == 1) *fd = fds[0];
    return n;
}

int ipc_send(int sock, const ipc_msg *m, int body_fd, rouse_errbuf *eb)
{
    if (ipc_send_packet(sock, m, sizeof(*m), body_fd) == 0) return 0;
    return rouse_err_set(eb, ROUSE_EIO, "cannot send to the instance socket: %s",
                         errno == EMSGSIZE ? "short write" : strerror(errno));
}

static int recv_flags(int sock, ipc_msg *m, int *body_fd, int flags, rouse_errbuf *eb);

int ipc_recv(int sock, ipc_msg *m, int *body_fd, rouse_errbuf *eb)
{
    return recv_flags(sock, m, body_fd, 0, eb);
}

int ipc_recv_nowait(int sock, ipc_msg *m, int *body_fd, rouse_errbuf *eb)
{
    return recv_flags(sock, m, body_fd, MSG_DONTWAIT, eb);
}

static int recv_any(int sock, ipc_msg *m, int *body_fd, void *payload, size_t cap,
                    size_t *payload_len, int flags, rouse_errbuf *eb);

static int recv_flags(int sock, ipc_msg *m, int *body_fd, int flags, rouse_errbuf *eb)
{
    return recv_any(sock, m, body_fd, NULL, 0, NULL, flags, eb);
}

int ipc_recv_chunked(int sock, ipc_msg *m, int *body_fd, void *payload, size_t cap,
                     size_t *payload_len, int flags, rouse_errbuf *eb)
{
    return recv_any(sock, m, body_fd, payload, cap, payload_len, flags, eb);
}

int ipc_send_chunk(int sock, uint64_t id, const ipc_msg *m, const void *data, size_t len,
                   rouse_errbuf *eb)
{
    if (len > IPC_CHUNK_MAX)
        return rouse_err_set(eb, ROUSE_EINVAL, "chunk of %zu bytes is too long", len);
    struct {
        ipc_msg h;
        char data[IPC_CHUNK_MAX];
    } pk;
    if (m)
        pk.h = *m;
    else
        ipc_msg_init(&pk.h, IPC_CHUNK, id);
    pk.h.magic = IPC_MAGIC;
    pk.h.type = IPC_CHUNK;
    pk.h.id = id;
    pk.h.flags = 0;
    pk.h.body_len = len;
    if (len) memcpy(pk.data, data, len);
    if (ipc_send_packet(sock, &pk, sizeof(pk.h) + len, -1) == 0) return 0;
    return rouse_err_set(eb, ROUSE_EIO, "cannot send to the instance socket: %s",
                         errno == EMSGSIZE ? "short write" : strerror(errno));
}

static int recv_any(int sock, ipc_msg *m, int *body_fd, void *payload, size_t cap,
                    size_t *payload_len, int flags, rouse_errbuf *eb)
{
    int fd;
    /* Only a caller that takes chunks reads past the header. */
    struct {
        ipc_msg h;
        char data[IPC_CHUNK_MAX];
    } pk;
    ssize_t n = ipc_recv_packet(sock, &pk, payload ? sizeof(pk) : sizeof(pk.h), &fd, flags);
    *m = pk.h;
    if (payload_len) *payload_len = 0;
    *body_fd = -1;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return ROUSE_EBUSY;
        if (errno == ECONNRESET) return rouse_err_set(eb, ROUSE_ENOTFOUND, "the peer is gone");
        if (errno == EMSGSIZE)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "malformed packet on the instance socket "
                                 "(too long, or more than one descriptor)");
        return rouse_err_set(eb, ROUSE_EIO, "cannot read the instance socket: %s", strerror(errno));
    }
    if (n == 0 && fd < 0) {
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "the peer closed the socket");
    }
    if (payload && n > (ssize_t)sizeof(*m) && m->magic == IPC_MAGIC && m->type == IPC_CHUNK &&
        m->body_len == (uint64_t)(n - (ssize_t)sizeof(*m)) && m->body_len <= cap && fd < 0) {
        memcpy(payload, pk.data, (size_t)m->body_len);
        *payload_len = (size_t)m->body_len;
        n = sizeof(*m);
    } else if (n == (ssize_t)sizeof(*m) && m->type == IPC_CHUNK) {
        m->body_len = 0; /* an empty chunk */
    }
    if (n != (ssize_t)sizeof(*m) || m->magic != IPC_MAGIC) {
        if (fd >= 0) close(fd);
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "malformed packet on the instance socket (%zd bytes)", n);
    }
    m->content_type[IPC_CONTENT_TYPE_MAX - 1] = '\0';
    m->warning[IPC_WARNING_MAX - 1] = '\0';
    *body_fd = fd;
    return 0;
}

int ipc_memfd_create(const char *name, int *fd, rouse_errbuf *eb)
{
    *fd = memfd_create(name, MFD_CLOEXEC);
    if (*fd < 0) return rouse_err_set(eb, ROUSE_EIO, "memfd_create: %s", strerror(errno));
    return 0;
}

int ipc_memfd_write(int fd, const void *data, size_t len, rouse_errbuf *eb)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return rouse_err_set(eb, ROUSE_EIO, "cannot write a shared buffer: %s",
                                 n < 0 ? strerror(errno) : "no progress");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ipc_memfd_from(const void *data, size_t len, int *fd, rouse_errbuf *eb)
{
    int rc = ipc_memfd_create("rouse-body", fd, eb);
    if (rc < 0) return rc;
    if ((rc = ipc_memfd_write(*fd, data, len, eb)) < 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int ipc_map(int fd, uint64_t body_len, const void **map, rouse_errbuf *eb)
{
    *map = NULL;
    if (body_len == 0) return 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size < body_len)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "shared body buffer is missing or shorter than %llu bytes",
                             (unsigned long long)body_len);
    void *p = mmap(NULL, body_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) return rouse_err_set(eb, ROUSE_EIO, "mmap of a body: %s", strerror(errno));
    *map = p;
    return 0;
}

void ipc_unmap(const void *map, uint64_t body_len)
{
    if (map) munmap((void *)map, body_len);
}

int ipc_region_create(uint64_t size, int *fd, void **map, rouse_errbuf *eb)
{
    *map = NULL;
    *fd = memfd_create("rouse-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (*fd < 0) return rouse_err_set(eb, ROUSE_EIO, "memfd_create: %s", strerror(errno));
    int rc;
    if (ftruncate(*fd, (off_t)size) < 0 ||
        fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot size a shared region of %llu bytes: %s",
                           (unsigned long long)size, strerror(errno));
        goto out_close;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, *fd, 0);
    if (p == MAP_FAILED) {
        rc = rouse_err_set(eb, ROUSE_EIO, "mmap of a shared region: %s", strerror(errno));
        goto out_close;
    }
    *map = p;
    return 0;
out_close:
    close(*fd);
    *fd = -1;
    return rc;
}

int ipc_region_map(int fd, uint64_t size, void **map, rouse_errbuf *eb)
{
    *map = NULL;
    struct stat st;
    if (fd < 0 || size == 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size < size)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "shared region is missing or shorter than %llu bytes",
                             (unsigned long long)size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED)
        return rouse_err_set(eb, ROUSE_EIO, "mmap of a shared region: %s", strerror(errno));
    *map = p;
    return 0;
}

void ipc_region_unmap(void *map, uint64_t size)
{
    if (map) munmap(map, size);
}
