/* See raw_http.h. */
#include "raw_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int raw_connect(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (src) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int raw_send(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r;
}

int raw_response(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t got = 0;
    buf[0] = '\0';
    for (;;) {
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t want = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            if (got >= want || (want >= len && got == len - 1)) break;
        }
        if (got + 1 >= len) break;
        if (wait_readable(fd, timeout_ms) <= 0) return -1;
        ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* closed (or reset) */
        got += (size_t)n;
        buf[got] = '\0';
    }
    if (got == 0) return 0;
    int status;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    return status;
}

bool raw_closed(int fd, int timeout_ms)
{
    char sink[4096];
    for (;;) {
        if (wait_readable(fd, timeout_ms) <= 0) return false;
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return true;
    }
}

int raw_get(const char *src, int port, const char *path, char *buf, size_t len, int timeout_ms)
{
    int fd = raw_connect(src, port);
    if (fd < 0) return -1;
    char req[512], local[4096];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    int status = -1;
    if (raw_send(fd, req, (size_t)n) == 0)
        status = raw_response(fd, buf ? buf : local, buf ? len : sizeof(local), timeout_ms);
    close(fd);
    return status;
}
