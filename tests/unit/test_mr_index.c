// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the MR cache's interval index
 * (providers/hfi1/mrcache/mr_index.c): contained, overlapping and adjacent
 * lookups, access flags, the smallest covering entry, and a randomized run
 * against a brute-force model with the tree's invariants checked after
 * every operation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mr_index.h"

#define PG 4096ull
#define A_READ 1u
#define A_WRITE 2u
#define A_REMOTE 4u

static void set(struct mr_index_entry *e, uint64_t start_pg, uint64_t end_pg,
		uint32_t access)
{
	memset(e, 0, sizeof(*e));
	e->start = start_pg * PG;
	e->end = end_pg * PG;
	e->access = access;
}

static void add(struct mr_index *idx, struct mr_index_entry *e,
		uint64_t start_pg, uint64_t end_pg, uint32_t access)
{
	set(e, start_pg, end_pg, access);
	assert_int_equal(mr_index_insert(idx, e), 0);
	assert_int_equal(mr_index_check(idx), 0);
}

static struct mr_index_entry *cover(struct mr_index *idx, uint64_t start_pg,
				    uint64_t end_pg, uint32_t access)
{
	return mr_index_find_covering(idx, start_pg * PG, end_pg * PG, access);
}

static void test_empty(void **state)
{
	struct mr_index idx = MR_INDEX_INIT;
	struct mr_index_entry e;

	(void)state;
	assert_int_equal(mr_index_count(&idx), 0);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_null(cover(&idx, 0, 1, 0));
	set(&e, 3, 3, A_READ);
	assert_int_equal(mr_index_insert(&idx, &e), -EINVAL);
	set(&e, 4, 3, A_READ);
	assert_int_equal(mr_index_insert(&idx, &e), -EINVAL);
	assert_int_equal(mr_index_count(&idx), 0);
}

static void test_contained_overlapping_adjacent(void **state)
{
	struct mr_index idx;
	struct mr_index_entry a, b;

	(void)state;
	mr_index_init(&idx);
	add(&idx, &a, 10, 20, A_READ | A_WRITE);
	add(&idx, &b, 30, 40, A_READ);
	assert_int_equal(mr_index_count(&idx), 2);

	/* The same range, and ranges contained in it. */
	assert_ptr_equal(cover(&idx, 10, 20, A_READ), &a);
	assert_ptr_equal(cover(&idx, 10, 11, A_READ), &a);
	assert_ptr_equal(cover(&idx, 19, 20, A_READ), &a);
	assert_ptr_equal(cover(&idx, 12, 15, 0), &a);
	assert_ptr_equal(cover(&idx, 31, 39, A_READ), &b);
	/* Unaligned requests inside a cached range hit too. */
	assert_ptr_equal(
		mr_index_find_covering(&idx, 10 * PG + 1, 20 * PG - 1, A_READ),
		&a);

	/* Overlapping on either side: a miss. */
	assert_null(cover(&idx, 9, 11, A_READ));
	assert_null(cover(&idx, 19, 21, A_READ));
	assert_null(cover(&idx, 5, 25, A_READ));
	assert_null(cover(&idx, 15, 35, A_READ));
	assert_null(mr_index_find_covering(&idx, 10 * PG - 1, 11 * PG, 0));
	assert_null(mr_index_find_covering(&idx, 19 * PG, 20 * PG + 1, 0));

	/* Adjacent: a miss. */
	assert_null(cover(&idx, 20, 21, A_READ));
	assert_null(cover(&idx, 9, 10, A_READ));
	assert_null(cover(&idx, 20, 30, A_READ));
	assert_null(cover(&idx, 40, 41, A_READ));

	/* An empty request finds nothing. */
	assert_null(cover(&idx, 12, 12, A_READ));

	mr_index_remove(&idx, &a);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_null(cover(&idx, 10, 20, A_READ));
	assert_ptr_equal(cover(&idx, 30, 40, A_READ), &b);
	mr_index_remove(&idx, &b);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_int_equal(mr_index_count(&idx), 0);
	assert_null(idx.root);
}

static void test_access(void **state)
{
	struct mr_index idx;
	struct mr_index_entry r, rw;

	(void)state;
	mr_index_init(&idx);
	add(&idx, &r, 0, 8, A_READ);
	assert_ptr_equal(cover(&idx, 0, 8, A_READ), &r);
	assert_null(cover(&idx, 0, 8, A_WRITE));
	assert_null(cover(&idx, 0, 8, A_READ | A_WRITE));
	assert_null(cover(&idx, 2, 4, A_REMOTE));

	/* The same buffer registered again with more access: both cached. */
	add(&idx, &rw, 0, 8, A_READ | A_WRITE);
	assert_int_equal(mr_index_count(&idx), 2);
	assert_ptr_equal(cover(&idx, 0, 8, A_READ | A_WRITE), &rw);
	assert_ptr_equal(cover(&idx, 1, 2, A_WRITE), &rw);
	assert_non_null(cover(&idx, 0, 8, A_READ));
	assert_null(cover(&idx, 0, 8, A_READ | A_REMOTE));

	mr_index_remove(&idx, &rw);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_null(cover(&idx, 0, 8, A_WRITE));
	assert_ptr_equal(cover(&idx, 0, 8, A_READ), &r);
	mr_index_remove(&idx, &r);
	assert_int_equal(mr_index_count(&idx), 0);
}

static void test_smallest(void **state)
{
	struct mr_index idx;
	struct mr_index_entry big, mid, small, small_ro, other;

	(void)state;
	mr_index_init(&idx);
	add(&idx, &big, 0, 1000, A_READ | A_WRITE);
	add(&idx, &mid, 90, 300, A_READ | A_WRITE);
	add(&idx, &small, 100, 120, A_READ | A_WRITE);
	add(&idx, &small_ro, 105, 115, A_READ);
	add(&idx, &other, 500, 510, A_READ | A_WRITE);

	assert_ptr_equal(cover(&idx, 106, 110, A_READ), &small_ro);
	assert_ptr_equal(cover(&idx, 106, 110, A_WRITE), &small);
	assert_ptr_equal(cover(&idx, 100, 120, A_READ), &small);
	assert_ptr_equal(cover(&idx, 95, 120, A_READ), &mid);
	assert_ptr_equal(cover(&idx, 200, 300, A_READ), &mid);
	assert_ptr_equal(cover(&idx, 200, 301, A_READ), &big);
	assert_ptr_equal(cover(&idx, 501, 502, A_WRITE), &other);
	assert_ptr_equal(cover(&idx, 499, 502, A_WRITE), &big);
	assert_null(cover(&idx, 999, 1001, 0));

	mr_index_remove(&idx, &small);
	assert_ptr_equal(cover(&idx, 106, 110, A_WRITE), &mid);
	mr_index_remove(&idx, &mid);
	assert_ptr_equal(cover(&idx, 106, 110, A_WRITE), &big);
	assert_ptr_equal(cover(&idx, 106, 110, A_READ), &small_ro);
	mr_index_remove(&idx, &big);
	mr_index_remove(&idx, &small_ro);
	mr_index_remove(&idx, &other);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_int_equal(mr_index_count(&idx), 0);
}

/* The randomized run against a brute-force model. */

#define NSLOT 600
#define SPACE_PG 512 /* address space, in pages */
#define MAXLEN_PG 48
#define NOPS 20000

struct slot {
	struct mr_index_entry e;
	bool in;
	unsigned int seen; /* visits by the current walk */
};

static struct slot slots[NSLOT];
static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*, a fixed seed: every run is the same run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void rnd_range(uint64_t *start, uint64_t *end)
{
	*start = rnd_below(SPACE_PG) * PG;
	*end = *start + (1 + rnd_below(MAXLEN_PG)) * PG;
	/* sometimes an unaligned request */
	if (rnd_below(8) == 0) {
		*start += rnd_below(PG);
		*end -= rnd_below(PG);
		if (*end <= *start)
			*end = *start + 1;
	}
}

static const struct mr_index_entry *model_covering(uint64_t start, uint64_t end,
						   uint32_t access)
{
	const struct mr_index_entry *best = NULL;
	int i;

	for (i = 0; i < NSLOT; i++) {
		const struct mr_index_entry *e = &slots[i].e;

		if (!slots[i].in || e->start > start || e->end < end ||
		    (e->access & access) != access)
			continue;
		if (!best || e->end - e->start < best->end - best->start ||
		    (e->end - e->start == best->end - best->start &&
		     e->start < best->start))
			best = e;
	}
	return best;
}

struct walk {
	struct mr_index *idx;
	uint64_t start, end;
	uint64_t last_start, last_end;
	unsigned int visits;
	bool remove; /* the callback removes what it is given */
	unsigned int stop_after; /* 0: never stop */
};

static int walk_cb(struct mr_index_entry *e, void *arg)
{
	struct walk *w = arg;
	struct slot *s = (struct slot *)((char *)e - offsetof(struct slot, e));

	assert_true(s >= slots && s < slots + NSLOT);
	assert_true(s->in);
	assert_true(e->start < w->end && w->start < e->end);
	/* in (start, end) order */
	assert_true(e->start > w->last_start ||
		    (e->start == w->last_start && e->end >= w->last_end));
	w->last_start = e->start;
	w->last_end = e->end;
	s->seen++;
	w->visits++;
	if (w->remove) {
		mr_index_remove(w->idx, e);
		s->in = false;
	}
	if (w->stop_after && w->visits == w->stop_after)
		return 7;
	return 0;
}

static void check_walk(struct mr_index *idx, uint64_t start, uint64_t end,
		       bool remove, unsigned int stop_after)
{
	struct walk w = { idx, start, end, 0, 0, 0, remove, stop_after };
	bool was_in[NSLOT];
	unsigned int expect = 0;
	int i, ret;

	for (i = 0; i < NSLOT; i++) {
		const struct mr_index_entry *e = &slots[i].e;

		was_in[i] = slots[i].in;
		slots[i].seen = 0;
		if (slots[i].in && e->start < end && start < e->end)
			expect++;
	}
	ret = mr_index_for_each_overlapping(idx, start, end, walk_cb, &w);
	if (stop_after && stop_after <= expect) {
		assert_int_equal(ret, 7);
		assert_int_equal(w.visits, stop_after);
	} else {
		assert_int_equal(ret, 0);
		assert_int_equal(w.visits, expect);
		/* exactly the overlapping entries, each once */
		for (i = 0; i < NSLOT; i++) {
			const struct mr_index_entry *e = &slots[i].e;
			bool ov = was_in[i] && e->start < end && start < e->end;

			assert_int_equal(slots[i].seen, ov ? 1 : 0);
		}
	}
	assert_int_equal(mr_index_check(idx), 0);
}

static void test_random_model(void **state)
{
	struct mr_index idx;
	unsigned int in = 0, peak = 0, hits = 0, op, i;

	(void)state;
	mr_index_init(&idx);
	memset(slots, 0, sizeof(slots));
	rng_state = 0x9e3779b97f4a7c15ull;

	for (op = 0; op < NOPS; op++) {
		unsigned int r = rnd_below(100);
		struct slot *s = &slots[rnd_below(NSLOT)];
		uint64_t start, end;

		if (r < 40) {
			/* insert, or remove if the slot is taken */
			if (s->in) {
				mr_index_remove(&idx, &s->e);
				s->in = false;
				in--;
			} else {
				rnd_range(&start, &end);
				s->e.start = start & ~(PG - 1);
				s->e.end = (end + PG - 1) & ~(PG - 1);
				s->e.access = rnd_below(8);
				assert_int_equal(mr_index_insert(&idx, &s->e),
						 0);
				s->in = true;
				in++;
			}
		} else if (r < 80) {
			const struct mr_index_entry *want, *got;
			uint32_t access = rnd_below(8);

			rnd_range(&start, &end);
			want = model_covering(start, end, access);
			got = mr_index_find_covering(&idx, start, end, access);
			if (!want) {
				assert_null(got);
			} else {
				assert_non_null(got);
				hits++;
				/* as good as the model's; maybe its twin */
				assert_true(got->start <= start &&
					    end <= got->end);
				assert_true((got->access & access) == access);
				assert_int_equal(got->end - got->start,
						 want->end - want->start);
				assert_int_equal(got->start, want->start);
			}
		} else if (r < 97) {
			rnd_range(&start, &end);
			check_walk(&idx, start, end, false,
				   rnd_below(4) == 0 ? 1 + rnd_below(3) : 0);
		} else {
			/* invalidation: the callback removes every entry */
			rnd_range(&start, &end);
			check_walk(&idx, start, end, true, 0);
			in = 0;
			for (i = 0; i < NSLOT; i++)
				in += slots[i].in;
		}
		assert_int_equal(mr_index_check(&idx), 0);
		assert_int_equal(mr_index_count(&idx), in);
		if (in > peak)
			peak = in;
	}
	/* the run must have exercised both outcomes */
	assert_true(hits > NOPS / 20);
	assert_true(peak > NSLOT / 4);

	/* Removing every entry leaves an empty index. */
	for (i = 0; i < NSLOT; i++) {
		if (!slots[i].in)
			continue;
		mr_index_remove(&idx, &slots[i].e);
		slots[i].in = false;
		assert_int_equal(mr_index_check(&idx), 0);
	}
	assert_int_equal(mr_index_count(&idx), 0);
	assert_null(idx.root);
	assert_null(mr_index_find_covering(&idx, 0, PG, 0));
	check_walk(&idx, 0, ~0ull, false, 0);
}

/* Sorted insertion and removal keep the tree balanced: height ~ log n. */
static void test_sequential_balance(void **state)
{
	enum { N = 4096 };
	static struct mr_index_entry e[N];
	struct mr_index idx;
	int i;

	(void)state;
	mr_index_init(&idx);
	for (i = 0; i < N; i++) {
		set(&e[i], i, i + 1, A_READ);
		assert_int_equal(mr_index_insert(&idx, &e[i]), 0);
	}
	assert_int_equal(mr_index_check(&idx), 0);
	/* AVL: height < 1.45 log2(n + 2) */
	assert_true(idx.root->height <= 18);
	for (i = 0; i < N; i++)
		assert_ptr_equal(cover(&idx, i, i + 1, A_READ), &e[i]);
	for (i = 0; i < N; i += 2)
		mr_index_remove(&idx, &e[i]);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_int_equal(mr_index_count(&idx), N / 2);
	for (i = N - 1; i >= 0; i -= 2)
		mr_index_remove(&idx, &e[i]);
	assert_int_equal(mr_index_check(&idx), 0);
	assert_int_equal(mr_index_count(&idx), 0);
	assert_null(idx.root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_contained_overlapping_adjacent),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_smallest),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_sequential_balance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
