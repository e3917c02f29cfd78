/*
 * Unit tests of the serve <-> instance protocol's shared regions: a region
 * is sealed against shrinking and growing (an instance cannot truncate it
 * under serve's mapping), travels with IPC_F_REGION over a real
 * SOCK_SEQPACKET socketpair, and both mappings see each other's writes;
 * mapping more than the file holds is refused; a non-blocking receive on
 * an empty socket says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/ipc.h"

static void test_region_is_sealed(void **state)
{
    (void)state;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int fd;
    void *map;
    assert_int_equal(ipc_region_create(1u << 20, &fd, &map, &eb), 0);
    memset(map, 0xab, 1u << 20); /* every byte is writable */
    assert_int_equal(ftruncate(fd, 4096), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, 2u << 20), -1);
    assert_int_equal(errno, EPERM);
    int seals = fcntl(fd, F_GET_SEALS);
    assert_true(seals & F_SEAL_SHRINK);
    assert_true(seals & F_SEAL_GROW);
    assert_true(seals & F_SEAL_SEAL); /* and the seals stay */
    close(fd);
    ipc_region_unmap(map, 1u << 20);
}

static void test_region_travels_and_is_shared(void **state)
{
    (void)state;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    int fd;
    void *serve_map;
    const uint64_t size = 2u << 20;
    assert_int_equal(ipc_region_create(size, &fd, &serve_map, &eb), 0);
    memcpy(serve_map, "request", 7);

    ipc_msg m;
    ipc_msg_init(&m, IPC_INFER, 42);
    m.flags = IPC_F_REGION | IPC_F_IN_REGION;
    m.region_size = size;
    m.body_len = 7;
    assert_int_equal(ipc_send(sv[0], &m, fd, &eb), 0);
    close(fd); /* serve keeps only its mapping */

    ipc_msg got;
    int got_fd = -1;
    assert_int_equal(ipc_recv(sv[1], &got, &got_fd, &eb), 0);
    assert_true(got_fd >= 0);
    assert_int_equal(got.id, 42);
    assert_int_equal(got.flags, IPC_F_REGION | IPC_F_IN_REGION);
    assert_int_equal(got.region_size, size);
    void *inst_map;
    assert_int_equal(ipc_region_map(got_fd, got.region_size, &inst_map, &eb), 0);
    close(got_fd);
    assert_memory_equal(inst_map, "request", 7);
    /* The reply goes over the body, at the other end of the region too. */
    memcpy(inst_map, "reply", 5);
    memcpy((char *)inst_map + size - 4, "tail", 4);
    assert_memory_equal(serve_map, "reply", 5);
    assert_memory_equal((char *)serve_map + size - 4, "tail", 4);

    ipc_region_unmap(inst_map, size);
    ipc_region_unmap(serve_map, size);
    close(sv[0]);
    close(sv[1]);
}

static void test_region_map_refuses_more_than_the_file(void **state)
{
    (void)state;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int fd;
    void *map;
    assert_int_equal(ipc_region_create(1u << 20, &fd, &map, &eb), 0);
    void *other = NULL;
    assert_int_equal(ipc_region_map(fd, 2u << 20, &other, &eb), ROUSE_EFORMAT);
    assert_null(other);
    assert_non_null(strstr(eb.msg, "shorter"));
    assert_int_equal(ipc_region_map(-1, 1u << 20, &other, &eb), ROUSE_EFORMAT);
    close(fd);
    ipc_region_unmap(map, 1u << 20);
}

static void test_recv_nowait_on_empty_socket(void **state)
{
    (void)state;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ipc_msg m;
    int fd = -1;
    assert_int_equal(ipc_recv_nowait(sv[1], &m, &fd, &eb), ROUSE_EBUSY);
    ipc_msg_init(&m, IPC_REPLY, 7);
    assert_int_equal(ipc_send(sv[0], &m, -1, &eb), 0);
    assert_int_equal(ipc_recv_nowait(sv[1], &m, &fd, &eb), 0);
    assert_int_equal(m.id, 7);
    assert_int_equal(fd, -1);
    close(sv[0]);
    assert_int_equal(ipc_recv_nowait(sv[1], &m, &fd, &eb), ROUSE_ENOTFOUND);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_is_sealed),
        cmocka_unit_test(test_region_travels_and_is_shared),
        cmocka_unit_test(test_region_map_refuses_more_than_the_file),
        cmocka_unit_test(test_recv_nowait_on_empty_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
