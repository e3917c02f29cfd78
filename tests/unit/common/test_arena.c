/* Arena: alignment of every allocation, growth past a block, big one-offs, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "common/arena.h"

static void allocations_are_aligned(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 256);
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (size_t size = 1; size < 40; size += 7) {
            unsigned char *p = rouse_arena_alloc(&a, size, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            memset(p, 0xab, size); /* ASan catches an overrun here */
        }
    }
    rouse_arena_fini(&a);
}

static void grows_past_one_block_and_keeps_old_data(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 128);
    uint32_t *ptrs[500];
    for (uint32_t i = 0; i < 500; i++) {
        ptrs[i] = rouse_arena_alloc(&a, sizeof(uint32_t) * 4, 16);
        assert_non_null(ptrs[i]);
        for (int k = 0; k < 4; k++)
            ptrs[i][k] = i * 4 + (uint32_t)k;
    }
    for (uint32_t i = 0; i < 500; i++)
        for (int k = 0; k < 4; k++)
            assert_int_equal(ptrs[i][k], i * 4 + (uint32_t)k);
    assert_int_equal(a.total, 500 * 16);
    rouse_arena_fini(&a);
    assert_null(a.head);
}

static void big_allocation_keeps_head_usable(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 1024);
    char *small1 = rouse_arena_alloc(&a, 10, 1);
    char *big = rouse_arena_alloc(&a, 100000, 64);
    char *small2 = rouse_arena_alloc(&a, 10, 1);
    assert_non_null(small1);
    assert_non_null(big);
    assert_non_null(small2);
    memset(big, 1, 100000);
    /* small2 comes from the same block as small1, right behind it. */
    assert_ptr_equal(small2, small1 + 10);
    rouse_arena_fini(&a);
}

static void overflow_and_zero_sizes(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    assert_null(rouse_arena_alloc(&a, SIZE_MAX - 8, 16));
    assert_null(rouse_arena_calloc(&a, SIZE_MAX / 2, 4, 4));
    void *z1 = rouse_arena_alloc(&a, 0, 1);
    void *z2 = rouse_arena_alloc(&a, 0, 1);
    assert_non_null(z1);
    assert_ptr_not_equal(z1, z2);
    int *zeros = rouse_arena_calloc(&a, 100, sizeof(int), sizeof(int));
    for (int i = 0; i < 100; i++)
        assert_int_equal(zeros[i], 0);
    rouse_arena_fini(&a);
}

static void strdup_and_reset(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 64);
    char *s = rouse_arena_strndup(&a, "conv1_weight_extra", 12);
    assert_string_equal(s, "conv1_weight");
    assert_string_equal(rouse_arena_strdup(&a, "relu"), "relu");
    for (int i = 0; i < 100; i++)
        assert_non_null(rouse_arena_alloc(&a, 50, 8));
    rouse_arena_reset(&a);
    assert_int_equal(a.total, 0);
    assert_non_null(a.head);
    assert_non_null(rouse_arena_alloc(&a, 10, 8));
    rouse_arena_fini(&a);
}

static bool one_of(void *const *set, int n, const void *p)
{
    for (int i = 0; i < n; i++)
        if (set[i] == p) return true;
    return false;
}

static void reset_keeps_blocks_for_reuse(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 1024);
    rouse_arena_keep(&a, 8 * 1024);
    /* 20 regular blocks of 1024 bytes, one allocation filling each. */
    void *first[20];
    for (int i = 0; i < 20; i++) {
        first[i] = rouse_arena_alloc(&a, 1000, 8);
        assert_non_null(first[i]);
        memset(first[i], i, 1000);
    }
    rouse_arena_reset(&a);
    /* The head stays; of the 19 others, 8 fit the budget exactly. */
    assert_int_equal(a.kept, 8 * 1024);
    /* The next allocations reuse the head, then the 8 kept blocks. */
    for (int i = 0; i < 9; i++) {
        void *p = rouse_arena_alloc(&a, 1000, 8);
        assert_true(one_of(first, 20, p));
        memset(p, 0xee, 1000);
    }
    assert_int_equal(a.kept, 0);
    void *fresh = rouse_arena_alloc(&a, 1000, 8);
    assert_non_null(fresh);
    /* A one-off block larger than the budget is freed, not kept; a smaller
     * kept block never serves a larger request. */
    assert_non_null(rouse_arena_alloc(&a, 100000, 8));
    rouse_arena_reset(&a);
    assert_true(a.kept <= 8 * 1024);
    assert_non_null(rouse_arena_alloc(&a, 5000, 64));
    rouse_arena_fini(&a);
    assert_int_equal(a.kept, 0);
    assert_null(a.spare);

    /* Without a budget, reset keeps nothing but the head. */
    rouse_arena_init(&a, 1024);
    for (int i = 0; i < 5; i++)
        assert_non_null(rouse_arena_alloc(&a, 1000, 8));
    rouse_arena_reset(&a);
    assert_int_equal(a.kept, 0);
    assert_null(a.spare);
    rouse_arena_fini(&a);
}

/* A limit bounds the bytes handed out between resets: the allocation that
 * would pass it fails and marks the arena, a reset clears both. */
static void limit_bounds_until_reset(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 4096);
    rouse_arena_set_limit(&a, 10000);
    assert_non_null(rouse_arena_alloc(&a, 6000, 8));
    assert_false(a.over);
    assert_null(rouse_arena_alloc(&a, 5000, 8));
    assert_true(a.over);
    assert_non_null(rouse_arena_alloc(&a, 4000, 8)); /* what still fits */
    assert_null(rouse_arena_alloc(&a, SIZE_MAX / 2, 8));
    rouse_arena_reset(&a);
    assert_false(a.over);
    assert_non_null(rouse_arena_alloc(&a, 9000, 8));
    rouse_arena_set_limit(&a, 0); /* no limit */
    assert_non_null(rouse_arena_alloc(&a, 1 << 20, 8));
    rouse_arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocations_are_aligned),
        cmocka_unit_test(grows_past_one_block_and_keeps_old_data),
        cmocka_unit_test(big_allocation_keeps_head_usable),
        cmocka_unit_test(overflow_and_zero_sizes),
        cmocka_unit_test(strdup_and_reset),
        cmocka_unit_test(reset_keeps_blocks_for_reuse),
        cmocka_unit_test(limit_bounds_until_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
