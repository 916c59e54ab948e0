// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The MR cache (mr_cache.c) against a real soft HFI context: hits and
 * misses, limits and eviction, windows and partial success, running out of
 * TIDs and of pinnable memory, invalidation of idle and in-use entries by
 * munmap, madvise, mremap and free, and address reuse. Every check of what
 * the cache holds is made twice: through its counters and through the
 * soft HFI's own figures (softhfi_get_stats()).
 *
 * Forked children (the memlock test runs as user nobody) check with
 * CHILD_CHECK and report through their exit status and a pipe.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "mr_cache.h"
#include "softhfi.h"
#include "unit_helpers.h"

#define ACC_R 0x1u
#define ACC_W 0x2u
#define ACC_RW (ACC_R | ACC_W)

static size_t pg;

struct fixture {
	struct hfi1_drv *drv;
	struct hfi1_mrc *c;
	struct hfi1_mrc_counters ctr;
	struct hfi1_mrc_limits limits;
	/* what the callbacks saw */
	unsigned int invalidated;
	enum hfi1_mrc_reason last_reason;
	struct hfi1_mrc_ref *last_ref;
	unsigned int logs;
	char last_log[512];
	/* ranges held and released: one per entry, from birth to free */
	atomic_uint holds, releases;
};

static void cb_invalidated(struct hfi1_mrc_ref *ref,
			   enum hfi1_mrc_reason reason, void *arg)
{
	struct fixture *f = arg;

	f->invalidated++;
	f->last_reason = reason;
	f->last_ref = ref;
}

static void cb_log(void *arg, int level, const char *msg)
{
	struct fixture *f = arg;

	(void)level;
	f->logs++;
	snprintf(f->last_log, sizeof(f->last_log), "%s", msg);
}

static int cb_hold(uint64_t start, uint64_t end, void *arg)
{
	struct fixture *f = arg;

	assert_true(start < end);
	atomic_fetch_add(&f->holds, 1);
	return 0;
}

static void cb_release(uint64_t start, uint64_t end, void *arg)
{
	struct fixture *f = arg;

	assert_true(start < end);
	atomic_fetch_add(&f->releases, 1);
}

/* A cache over f->drv; false on failure. */
static bool fixture_cache(struct fixture *f)
{
	struct hfi1_mrc_ops ops = {
		.invalidated = cb_invalidated,
		.log = cb_log,
		.hold = cb_hold,
		.release = cb_release,
		.arg = f,
	};

	f->c = hfi1_mrc_create(f->drv, &f->limits, &f->ctr, &ops);
	return f->c;
}

/* Open a context and a cache over it; false on failure. */
static bool fixture_open(struct fixture *f, unsigned int expected_count,
			 unsigned int contig_pages, unsigned int user_contexts)
{
	f->drv = open_ctx(expected_count, contig_pages, user_contexts);
	return f->drv && fixture_cache(f);
}

static int setup_limits(void **state, const struct hfi1_mrc_limits *limits,
			unsigned int expected_count, unsigned int contig_pages)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->limits = *limits;
	if (!fixture_open(f, expected_count, contig_pages, 0)) {
		hfi1_drv_close(f->drv);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static const struct hfi1_mrc_limits default_limits = {
	.enabled = true,
	.max_entries = 1024,
};

static int setup(void **state)
{
	return setup_limits(state, &default_limits, 0, 0);
}

/* 16 entries, every page its own: TIDs run out quickly. */
static int setup_small(void **state)
{
	return setup_limits(state, &default_limits, 16, 1);
}

static int setup_two_entries(void **state)
{
	struct hfi1_mrc_limits l = { .enabled = true, .max_entries = 2 };

	return setup_limits(state, &l, 0, 0);
}

static int setup_bytes(void **state)
{
	struct hfi1_mrc_limits l = { .enabled = true };

	l.max_bytes = 8 * sysconf(_SC_PAGESIZE);
	return setup_limits(state, &l, 0, 0);
}

static int setup_disabled(void **state)
{
	struct hfi1_mrc_limits l = { .enabled = false, .max_entries = 1024 };

	return setup_limits(state, &l, 0, 0);
}

static int setup_bare(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	bool held;

	hfi1_mrc_destroy(f->c);
	/* Every entry's range is released once it is freed. */
	held = atomic_load(&f->holds) != atomic_load(&f->releases);
	hfi1_drv_close(f->drv);
	free(f);
	return held ? -1 : 0;
}

static uint64_t ctr(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static int get(struct fixture *f, const void *addr, size_t len, uint32_t access,
	       struct hfi1_mrc_ref *ref)
{
	return hfi1_mrc_get(f->c, (uintptr_t)addr, len, access, ref);
}

/*
 * The cache's figures agree with the soft HFI's, and it holds the range
 * of every entry it has (and no other).
 */
static void check_balance(struct fixture *f)
{
	struct softhfi_stats st;

	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, ctr(&f->ctr.tids_used));
	assert_int_equal(st.inval_queued, 0);
	assert_int_equal(atomic_load(&f->holds) - atomic_load(&f->releases),
			 ctr(&f->ctr.entries));
}

/* 1. Hits and misses */

static void test_hits_misses(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r[8];
	uint32_t tidinfo, off, left;
	char *buf = map_pages(32);
	unsigned int i;

	assert_non_null(buf);
	memset(r, 0, sizeof(r));

	/* The same buffer again and again: one miss, then hits. */
	assert_int_equal(get(f, buf, 16 * pg, ACC_RW, &r[0]), 0);
	assert_int_equal(ctr(&f->ctr.misses), 1);
	assert_int_equal(ctr(&f->ctr.entries), 1);
	assert_int_equal(ctr(&f->ctr.pinned_bytes), 16 * pg);
	hfi1_mrc_put(f->c, &r[0]);
	assert_null(r[0].entry);
	assert_int_equal(ctr(&f->ctr.idle_entries), 1);
	for (i = 0; i < 10; i++) {
		assert_int_equal(get(f, buf, 16 * pg, ACC_RW, &r[0]), 0);
		hfi1_mrc_put(f->c, &r[0]);
	}
	assert_int_equal(ctr(&f->ctr.hits), 10);
	assert_int_equal(ctr(&f->ctr.misses), 1);

	/* Contained, unaligned too, and with less access: hits. */
	assert_int_equal(get(f, buf + pg + 5, 3 * pg, ACC_RW, &r[1]), 0);
	assert_int_equal(get(f, buf + 4 * pg, pg, ACC_R, &r[2]), 0);
	assert_ptr_equal(r[1].entry, r[2].entry);
	assert_int_equal(hfi1_mrc_entry_start(r[1].entry), (uintptr_t)buf);
	assert_int_equal(hfi1_mrc_entry_end(r[1].entry),
			 (uintptr_t)buf + 16 * pg);
	assert_true(hfi1_mrc_entry_valid(r[1].entry));
	assert_int_equal(ctr(&f->ctr.hits), 12);
	assert_int_equal(ctr(&f->ctr.idle_entries), 0);

	/* Its TIDs: 16 pages on a 2 MiB boundary are one entry. */
	assert_int_equal(hfi1_mrc_entry_tid(r[1].entry,
					    (uintptr_t)buf + 3 * pg + 7,
					    &tidinfo, &off, &left),
			 0);
	assert_int_equal(HFI1_TID_GET(tidinfo, LEN), 16);
	assert_int_equal(off, 3 * pg + 7);
	assert_int_equal(left, 13 * pg - 7);
	assert_int_equal(hfi1_mrc_entry_tid(r[1].entry,
					    (uintptr_t)buf + 16 * pg, &tidinfo,
					    &off, &left),
			 ERANGE);

	/* Adjacent, overlapping, more access: misses. */
	assert_int_equal(get(f, buf + 16 * pg, 2 * pg, ACC_RW, &r[4]), 0);
	assert_int_equal(get(f, buf + 8 * pg, 16 * pg, ACC_RW, &r[3]), 0);
	assert_int_equal(get(f, buf, 16 * pg, ACC_RW | 0x4, &r[5]), 0);
	assert_int_equal(ctr(&f->ctr.misses), 4);
	assert_ptr_not_equal(r[3].entry, r[1].entry);
	assert_ptr_not_equal(r[4].entry, r[3].entry);
	assert_ptr_not_equal(r[5].entry, r[1].entry);
	/* ... and what the miss with more access made serves less too */
	hfi1_mrc_put(f->c, &r[1]);
	hfi1_mrc_put(f->c, &r[2]);
	assert_int_equal(get(f, buf + 2 * pg, pg, ACC_RW | 0x4, &r[1]), 0);
	assert_ptr_equal(r[1].entry, r[5].entry);
	assert_int_equal(ctr(&f->ctr.entries), 4);
	check_balance(f);

	for (i = 1; i < 6; i++)
		hfi1_mrc_put(f->c, &r[i]);
	assert_int_equal(ctr(&f->ctr.idle_entries), 4);
	assert_int_equal(ctr(&f->ctr.evictions), 0);
	check_balance(f);
	hfi1_mrc_destroy(f->c);
	f->c = NULL;
	struct softhfi_stats st;

	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.pinned_pages, 0);
	munmap(buf, 32 * pg);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 };
	char *buf = map_pages(4), *ro;

	assert_non_null(buf);
	assert_int_equal(get(f, buf, 0, ACC_RW, &r), EINVAL);
	assert_int_equal(hfi1_mrc_get(f->c, UINT64_MAX - 10, 100, ACC_RW, &r),
			 EINVAL);
	assert_int_equal(hfi1_mrc_get(f->c, 0, pg, ACC_RW, &r), EFAULT);
	/* unmapped */
	munmap(buf + 2 * pg, 2 * pg);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r), EFAULT);
	/* read-only: the device would write */
	ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(ro, MAP_FAILED);
	assert_int_equal(get(f, ro, pg, ACC_R, &r), EFAULT);
	assert_null(r.entry);
	assert_int_equal(ctr(&f->ctr.entries), 0);
	assert_int_equal(ctr(&f->ctr.misses), 0);
	check_balance(f);
	munmap(ro, pg);
	munmap(buf, 2 * pg);
}

/* 2. Limits and disabled mode */

static void test_limit_entries(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r[3] = { 0 };
	char *buf = map_pages(6);
	unsigned int i;

	assert_non_null(buf);
	/* In use, entries may exceed the limit: nothing idle to evict. */
	for (i = 0; i < 3; i++)
		assert_int_equal(get(f, buf + 2 * i * pg, pg, ACC_RW, &r[i]),
				 0);
	assert_int_equal(ctr(&f->ctr.entries), 3);
	/* Idle, the oldest idle one goes. */
	for (i = 0; i < 3; i++)
		hfi1_mrc_put(f->c, &r[i]);
	assert_int_equal(ctr(&f->ctr.entries), 2);
	assert_int_equal(ctr(&f->ctr.evictions), 1);
	check_balance(f);
	assert_int_equal(get(f, buf + 4 * pg, pg, ACC_RW, &r[0]), 0);
	assert_int_equal(ctr(&f->ctr.hits), 1);
	assert_int_equal(get(f, buf + 2 * pg, pg, ACC_RW, &r[1]), 0);
	assert_int_equal(ctr(&f->ctr.hits), 2);
	/* buf's entry was the one evicted: a miss, which evicts none in use */
	assert_int_equal(get(f, buf, pg, ACC_RW, &r[2]), 0);
	assert_int_equal(ctr(&f->ctr.misses), 4);
	hfi1_mrc_put(f->c, &r[0]);
	hfi1_mrc_put(f->c, &r[1]);
	hfi1_mrc_put(f->c, &r[2]);
	assert_int_equal(ctr(&f->ctr.entries), 2);
	check_balance(f);

	/* New limits apply at once; disabling empties the cache. */
	struct hfi1_mrc_limits l = { .enabled = true, .max_entries = 1 };

	assert_int_equal(hfi1_mrc_set_limits(f->c, &l), 0);
	assert_int_equal(ctr(&f->ctr.entries), 1);
	l.enabled = false;
	assert_int_equal(hfi1_mrc_set_limits(f->c, &l), 0);
	hfi1_mrc_get_limits(f->c, &l);
	assert_false(l.enabled);
	assert_int_equal(ctr(&f->ctr.entries), 0);
	check_balance(f);
	assert_int_equal(hfi1_mrc_set_limits(f->c, NULL), EINVAL);
	munmap(buf, 6 * pg);
}

static void test_limit_bytes(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 };
	char *buf = map_pages(16);

	assert_non_null(buf);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r), 0);
	hfi1_mrc_put(f->c, &r);
	assert_int_equal(get(f, buf + 4 * pg, 4 * pg, ACC_RW, &r), 0);
	hfi1_mrc_put(f->c, &r);
	assert_int_equal(ctr(&f->ctr.pinned_bytes), 8 * pg);
	assert_int_equal(ctr(&f->ctr.evictions), 0);
	/* The third goes past 8 pages: the oldest (buf) goes. */
	assert_int_equal(get(f, buf + 8 * pg, 2 * pg, ACC_RW, &r), 0);
	assert_int_equal(ctr(&f->ctr.evictions), 1);
	assert_int_equal(ctr(&f->ctr.pinned_bytes), 6 * pg);
	hfi1_mrc_put(f->c, &r);
	/* Larger than the limit alone: kept while in use only. */
	assert_int_equal(get(f, buf, 12 * pg, ACC_RW, &r), 0);
	assert_int_equal(ctr(&f->ctr.entries), 1);
	hfi1_mrc_put(f->c, &r);
	assert_int_equal(ctr(&f->ctr.entries), 0);
	assert_int_equal(ctr(&f->ctr.evictions), 4);
	check_balance(f);
	munmap(buf, 16 * pg);
}

static void test_disabled(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r[2] = { 0 };
	char *buf = map_pages(4);

	assert_non_null(buf);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r[0]), 0);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r[1]), 0);
	assert_ptr_not_equal(r[0].entry, r[1].entry);
	assert_int_equal(ctr(&f->ctr.misses), 2);
	assert_int_equal(ctr(&f->ctr.hits), 0);
	hfi1_mrc_put(f->c, &r[0]);
	hfi1_mrc_put(f->c, &r[1]);
	assert_int_equal(ctr(&f->ctr.entries), 0);
	assert_int_equal(ctr(&f->ctr.idle_entries), 0);
	check_balance(f);
	munmap(buf, 4 * pg);
}

/* 3. Windows, partial success, running out of TIDs */

/*
 * 16 entries a context, a page each: a 40-page buffer cannot be one
 * entry; with 64 entries and runs of 512 pages, 200 pages take several
 * windows of at most 64 pages.
 */
static void test_windows(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 };
	uint32_t tidinfo, off, left, i;
	char *buf = map_pages(200);

	assert_non_null(buf);
	hfi1_mrc_destroy(f->c);
	hfi1_drv_close(f->drv);
	assert_true(fixture_open(f, 64, 8, 0));

	assert_int_equal(get(f, buf, 200 * pg, ACC_RW, &r), 0);
	/* 200 pages in runs of 8: 25 entries over 4 windows */
	assert_int_equal(ctr(&f->ctr.tids_used), 25);
	check_balance(f);
	for (i = 0; i < 200; i += 7) {
		assert_int_equal(hfi1_mrc_entry_tid(r.entry,
						    (uintptr_t)buf + i * pg + 1,
						    &tidinfo, &off, &left),
				 0);
		assert_int_equal(HFI1_TID_GET(tidinfo, LEN), 8);
		assert_int_equal(off, (i % 8) * pg + 1);
		assert_int_equal(left, (8 - i % 8) * pg - 1);
	}
	hfi1_mrc_put(f->c, &r);
	munmap(buf, 200 * pg);
}

static void test_tids_run_out(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref a = { 0 }, b = { 0 }, c = { 0 };
	char *buf = map_pages(30);
	struct softhfi_stats st;
	char want[128];

	assert_non_null(buf);
	/* 10 of the 16 TIDs, idle */
	assert_int_equal(get(f, buf, 10 * pg, ACC_RW, &a), 0);
	hfi1_mrc_put(f->c, &a);
	/* 10 more: 6 fit (partial success), then the idle one is evicted */
	assert_int_equal(get(f, buf + 10 * pg, 10 * pg, ACC_RW, &b), 0);
	assert_int_equal(ctr(&f->ctr.evictions), 1);
	assert_int_equal(ctr(&f->ctr.tids_used), 10);
	check_balance(f);
	/* 10 more while b is held: nothing to evict, ENOMEM, rolled back */
	assert_int_equal(get(f, buf + 20 * pg, 10 * pg, ACC_RW, &c), ENOMEM);
	assert_null(c.entry);
	assert_int_equal(ctr(&f->ctr.failures), 1);
	/* The line names the TIDs, with their figures, and nothing else. */
	assert_int_equal(f->logs, 1);
	assert_non_null(strstr(f->last_log,
			       "out of expected-receive TIDs: 10 of this "
			       "context's 16 are held by cached registrations, "
			       "6 by this one"));
	snprintf(want, sizeof(want),
		 "(1 entries in use, %zu bytes pinned by this context's cache)",
		 10 * pg);
	assert_non_null(strstr(f->last_log, want));
	assert_null(strstr(f->last_log, "RLIMIT_MEMLOCK"));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 10);
	assert_int_equal(st.pinned_pages, 10);
	/* The cache recovers once b is put. */
	hfi1_mrc_put(f->c, &b);
	assert_int_equal(get(f, buf + 20 * pg, 10 * pg, ACC_RW, &c), 0);
	assert_int_equal(ctr(&f->ctr.evictions), 2);
	hfi1_mrc_put(f->c, &c);
	check_balance(f);
	munmap(buf, 30 * pg);
}

/* 4. Invalidation */

enum unmap_how { BY_MUNMAP, BY_DONTNEED, BY_MREMAP, BY_FREE };

/* Make the memory at @buf go away in way @how. */
static void unmap_it(char *buf, size_t len, enum unmap_how how, void *block)
{
	void *p;

	switch (how) {
	case BY_MUNMAP:
		assert_int_equal(munmap(buf, len), 0);
		break;
	case BY_DONTNEED:
		assert_int_equal(madvise(buf, len, MADV_DONTNEED), 0);
		break;
	case BY_MREMAP:
		/* Moved onto a fresh mapping; buf is left unmapped. */
		p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
		assert_ptr_not_equal(p, MAP_FAILED);
		assert_ptr_equal(
			mremap(buf, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p),
			p);
		munmap(p, len);
		break;
	case BY_FREE:
		free(block);
		break;
	}
}

/* Buffer of @npages for @how: a big malloc'd block for BY_FREE. */
static char *buffer_for(enum unmap_how how, size_t npages, void **block)
{
	char *p;

	*block = NULL;
	if (how != BY_FREE)
		return map_pages(npages);
	/* Above the mmap threshold: free() unmaps it. */
	*block = malloc((npages + 1) * pg + 8 * 1024 * 1024);
	if (!*block)
		return NULL;
	p = (char *)(((uintptr_t)*block + pg - 1) & ~(uintptr_t)(pg - 1));
	memset(p, 1, npages * pg);
	return p;
}

static void invalidate_idle(void **state, enum unmap_how how)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 }, other = { 0 };
	char *spare = map_pages(1);
	struct softhfi_stats st;
	void *block;
	char *buf = buffer_for(how, 8, &block);

	assert_non_null(buf);
	assert_non_null(spare);
	assert_int_equal(get(f, buf, 8 * pg, ACC_RW, &r), 0);
	hfi1_mrc_put(f->c, &r);
	assert_int_equal(ctr(&f->ctr.idle_entries), 1);

	unmap_it(buf, 8 * pg, how, block);
	/* The next get, of anything, applies it first. */
	assert_int_equal(get(f, spare, pg, ACC_RW, &other), 0);
	assert_int_equal(ctr(&f->ctr.invalidations), 1);
	assert_int_equal(ctr(&f->ctr.invalidated_in_use), 0);
	assert_int_equal(ctr(&f->ctr.entries), 1);
	assert_int_equal(ctr(&f->ctr.idle_entries), 0);
	assert_int_equal(f->invalidated, 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 1);
	assert_int_equal(st.pinned_pages, 1);
	check_balance(f);
	hfi1_mrc_put(f->c, &other);
	if (how == BY_DONTNEED)
		munmap(buf, 8 * pg);
	munmap(spare, pg);
}

static void test_inval_idle_munmap(void **state)
{
	invalidate_idle(state, BY_MUNMAP);
}

static void test_inval_idle_dontneed(void **state)
{
	invalidate_idle(state, BY_DONTNEED);
}

static void test_inval_idle_mremap(void **state)
{
	invalidate_idle(state, BY_MREMAP);
}

static void test_inval_idle_free(void **state)
{
#ifdef __SANITIZE_ADDRESS__
	/* ASan's allocator keeps freed blocks mapped (its quarantine). */
	skip();
#endif
	invalidate_idle(state, BY_FREE);
}

/* hfi1_mrc_drain() alone, as the provider's event thread calls it. */
static void test_inval_in_use(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 }, r2 = { 0 };
	struct pollfd pfd = { .events = POLLIN };
	uint32_t tidinfo, off, left;
	struct softhfi_stats st;
	char *buf = map_pages(8);

	assert_non_null(buf);
	assert_int_equal(get(f, buf, 8 * pg, ACC_RW, &r), 0);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r2), 0);
	assert_int_equal(munmap(buf + pg, pg), 0);
	/* The event fd says when to drain. */
	pfd.fd = f->drv->event_fd;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	hfi1_mrc_drain(f->c);

	assert_int_equal(f->invalidated, 2);
	assert_int_equal(f->last_reason, HFI1_MRC_INVAL_UNMAPPED);
	assert_false(hfi1_mrc_entry_valid(r.entry));
	assert_int_equal(hfi1_mrc_entry_tid(r.entry, (uintptr_t)buf, &tidinfo,
					    &off, &left),
			 ESTALE);
	assert_int_equal(ctr(&f->ctr.invalidations), 1);
	assert_int_equal(ctr(&f->ctr.invalidated_in_use), 1);
	/* Out of the index at once: the same range misses. */
	char *rest = buf + 4 * pg;
	struct hfi1_mrc_ref r3 = { 0 };

	assert_int_equal(get(f, rest, 4 * pg, ACC_RW, &r3), 0);
	assert_ptr_not_equal(r3.entry, r.entry);
	assert_int_equal(ctr(&f->ctr.misses), 2);
	hfi1_mrc_put(f->c, &r3);

	/* The TIDs stay allocated until the last put. */
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 2);
	hfi1_mrc_put(f->c, &r);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 2);
	hfi1_mrc_put(f->c, &r2);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 1);
	assert_int_equal(ctr(&f->ctr.entries), 1);
	check_balance(f);
	munmap(buf, 8 * pg);
}

/*
 * What ibv_dereg_mr() does: hfi1_mrc_drain_returned() right after a
 * munmap() of in-use memory applies its invalidation before the put, every
 * time (the notifier's worker has usually not even seen it yet), so the
 * holder hears of it. With nothing pending it changes nothing.
 */
static void test_drain_returned(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 };
	unsigned int round;
	char *buf;

	for (round = 0; round < 100; round++) {
		buf = map_pages(2);
		assert_non_null(buf);
		assert_int_equal(get(f, buf, 2 * pg, ACC_RW, &r), 0);
		hfi1_mrc_drain_returned(f->c);
		assert_int_equal(f->invalidated, round);
		assert_true(hfi1_mrc_entry_valid(r.entry));

		assert_int_equal(munmap(buf, 2 * pg), 0);
		hfi1_mrc_drain_returned(f->c);
		assert_int_equal(f->invalidated, round + 1);
		assert_ptr_equal(f->last_ref, &r);
		assert_int_equal(f->last_reason, HFI1_MRC_INVAL_UNMAPPED);
		assert_false(hfi1_mrc_entry_valid(r.entry));
		hfi1_mrc_put(f->c, &r);
	}
	assert_int_equal(ctr(&f->ctr.invalidations), round);
	assert_int_equal(ctr(&f->ctr.invalidated_in_use), round);
	assert_int_equal(ctr(&f->ctr.entries), 0);
	check_balance(f);
}

/* munmap + mmap(MAP_FIXED) at the same address never hits the old one. */
static void test_address_reuse(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 };
	struct softhfi_stats st;
	char *buf = map_pages(4), *again;
	unsigned int round;

	assert_non_null(buf);
	for (round = 0; round < 20; round++) {
		assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r), 0);
		hfi1_mrc_put(f->c, &r);
		assert_int_equal(munmap(buf, 4 * pg), 0);
		again = mmap(buf, 4 * pg, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		assert_ptr_equal(again, buf);
	}
	assert_int_equal(ctr(&f->ctr.misses), 20);
	assert_int_equal(ctr(&f->ctr.hits), 0);
	assert_int_equal(ctr(&f->ctr.invalidations), 19);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r), 0);
	assert_int_equal(ctr(&f->ctr.invalidations), 20);
	assert_int_equal(ctr(&f->ctr.misses), 21);
	hfi1_mrc_put(f->c, &r);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 1);
	check_balance(f);
	munmap(buf, 4 * pg);
}

/* Destroy with a reference held: told FLUSHED, everything freed. */
static void test_destroy_flushes(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r = { 0 };
	struct softhfi_stats st;
	char *buf = map_pages(4);

	assert_non_null(buf);
	assert_int_equal(get(f, buf, 4 * pg, ACC_RW, &r), 0);
	hfi1_mrc_destroy(f->c);
	f->c = NULL;
	assert_int_equal(f->invalidated, 1);
	assert_int_equal(f->last_reason, HFI1_MRC_INVAL_FLUSHED);
	assert_ptr_equal(f->last_ref, &r);
	assert_null(r.entry);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	munmap(buf, 4 * pg);
}

/* 5. The pin limit as user nobody */

/*
 * io_uring hands a ring's pins back to the user some milliseconds after
 * the ring's process has gone: wait until (nearly) all of the limit can
 * be pinned, as the previous test's children may have held it.
 */
static void child_wait_memlock_drained(struct fixture *f, char *buf,
				       size_t npages)
{
	uint64_t end = now_ms() + 5000;
	struct hfi1_mrc_ref r = { 0 };
	int err;

	while ((err = get(f, buf, npages * pg, ACC_RW, &r)) == ENOMEM &&
	       now_ms() < end)
		usleep(1000);
	CHILD_CHECK(!err);
	hfi1_mrc_put(f->c, &r);
}

static void memlock_child(const struct passwd *nobody)
{
	struct rlimit rl = { MEMLOCK_LIMIT, MEMLOCK_LIMIT };
	/* A context may pin a quarter of the limit (one user context). */
	size_t share = MEMLOCK_LIMIT / pg / 4;
	struct hfi1_mrc_ref a = { 0 }, b = { 0 }, c = { 0 };
	struct fixture f = { .limits = default_limits };
	struct softhfi_stats st;
	char *buf = map_pages(3 * share);
	char want[512];

	CHILD_CHECK(buf);
	CHILD_CHECK(!setrlimit(RLIMIT_MEMLOCK, &rl));
	CHILD_CHECK(!setgroups(0, NULL));
	CHILD_CHECK(!setgid(nobody->pw_gid));
	CHILD_CHECK(!setuid(nobody->pw_uid));
	CHILD_CHECK(fixture_open(&f, 0, 0, 1));
	child_wait_memlock_drained(&f, buf, share - 4);
	/* The counters were reset under the cache: start from a clean one. */
	hfi1_mrc_destroy(f.c);
	hfi1_drv_close(f.drv);
	memset(&f.ctr, 0, sizeof(f.ctr));
	CHILD_CHECK(fixture_open(&f, 0, 0, 1));

	/* Two thirds of the share, idle; another two thirds evicts it. */
	CHILD_CHECK(!get(&f, buf, 2 * share / 3 * pg, ACC_RW, &a));
	hfi1_mrc_put(f.c, &a);
	CHILD_CHECK(!get(&f, buf + share * pg, 2 * share / 3 * pg, ACC_RW, &b));
	CHILD_CHECK(ctr(&f.ctr.evictions) == 1);
	/*
	 * With b held, nothing can make room: ENOMEM and one log line, which
	 * names the limit hit, the context's share, with its figures.
	 */
	CHILD_CHECK(get(&f, buf + 2 * share * pg, 2 * share / 3 * pg, ACC_RW,
			&c) == ENOMEM);
	CHILD_CHECK(f.logs == 1);
	snprintf(want, sizeof(want),
		 "out of pinnable memory: this context's share of "
		 "RLIMIT_MEMLOCK is %zu bytes (RLIMIT_MEMLOCK %d / 1 user "
		 "contexts / 4), %zu bytes pinned, %zu more asked; nothing "
		 "left to evict (1 entries in use, ",
		 share * pg, MEMLOCK_LIMIT, 2 * share / 3 * pg,
		 2 * share / 3 * pg);
	if (!strstr(f.last_log, want))
		fprintf(stderr, "%s\n", f.last_log);
	CHILD_CHECK(strstr(f.last_log, want));
	CHILD_CHECK(ctr(&f.ctr.failures) == 1);
	softhfi_get_stats(f.drv, &st);
	CHILD_CHECK(st.pinned_pages == 2 * share / 3);
	CHILD_CHECK(st.tids_used == ctr(&f.ctr.tids_used));
	/* ... and recovers after the put. */
	hfi1_mrc_put(f.c, &b);
	CHILD_CHECK(
		!get(&f, buf + 2 * share * pg, 2 * share / 3 * pg, ACC_RW, &c));

	/*
	 * RLIMIT_MEMLOCK lowered below what the process pins and asks: the
	 * line names RLIMIT_MEMLOCK and the process's pages, not the share.
	 */
	rl.rlim_cur = rl.rlim_max = (2 * share / 3 + 4) * pg;
	CHILD_CHECK(!setrlimit(RLIMIT_MEMLOCK, &rl));
	CHILD_CHECK(get(&f, buf, 8 * pg, ACC_RW, &b) == ENOMEM);
	CHILD_CHECK(f.logs == 2);
	snprintf(want, sizeof(want),
		 "out of pinnable memory: RLIMIT_MEMLOCK is %zu bytes, this "
		 "process has %zu bytes pinned, %zu more asked",
		 (size_t)rl.rlim_cur, 2 * share / 3 * pg, 8 * pg);
	if (!strstr(f.last_log, want))
		fprintf(stderr, "%s\n", f.last_log);
	CHILD_CHECK(strstr(f.last_log, want));
	hfi1_mrc_put(f.c, &c);
	hfi1_mrc_destroy(f.c);
	hfi1_drv_close(f.drv);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);
	_exit(0);
}

static void test_memlock_nobody(void **state)
{
	struct passwd *p = getpwnam("nobody");
	struct passwd nobody;
	char msg[512] = "";
	int report[2], status;
	ssize_t n;
	pid_t pid;

	(void)state;
	if (geteuid() != 0 || !p || !p->pw_uid)
		skip();
	nobody = *p;
	assert_int_equal(pipe2(report, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(report[0]);
		child_report_fd = report[1];
		memlock_child(&nobody);
	}
	close(report[1]);
	n = read(report[0], msg, sizeof(msg) - 1);
	if (n > 0)
		msg[n] = 0;
	close(report[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("%s (wait status %#x)", msg, status);
}

/*
 * As root, with CAP_IPC_LOCK, RLIMIT_MEMLOCK plays no part in the pin
 * limit (hfi1_can_pin_pages()): only a context's cap, cache_size, does.
 * With an 8 MiB RLIMIT_MEMLOCK and four contexts in the process, the
 * other three pinning 48 MiB between them, this one holds 12 MiB of its
 * 16 in use; 8 MiB more fail, and the line names cache_size with its
 * figures, not RLIMIT_MEMLOCK.
 */
#define CAP_TEST_CACHE_MB 16

static void test_pin_limit_cap_ipc_lock(void **state)
{
	const size_t mib = 1024 * 1024 / pg, npages = 68 * mib;
	struct hfi1_mrc_ref others[3] = { 0 }, held = { 0 }, more = { 0 };
	struct hfi1_drv *other_drv[3];
	struct hfi1_mrc *other_c[3];
	struct fixture *f = *state;
	struct softhfi_params params;
	struct rlimit saved, rl;
	char want[512];
	unsigned int i;
	char *buf;

	if (!has_cap_ipc_lock())
		skip();
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	rl = saved;
	rl.rlim_cur = 8 * 1024 * 1024;
	assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	buf = map_pages(npages);
	assert_non_null(buf);

	softhfi_default_params(&params);
	params.cache_size_mb = CAP_TEST_CACHE_MB;
	for (i = 0; i < 3; i++) {
		other_drv[i] = softhfi_open(&params);
		assert_non_null(other_drv[i]);
		other_c[i] = hfi1_mrc_create(other_drv[i], &default_limits,
					     NULL, NULL);
		assert_non_null(other_c[i]);
		assert_int_equal(
			hfi1_mrc_get(other_c[i],
				     (uintptr_t)buf + i * 16 * mib * pg,
				     16 * mib * pg, ACC_RW, &others[i]),
			0);
	}
	f->limits = default_limits;
	f->drv = softhfi_open(&params);
	assert_non_null(f->drv);
	assert_true(fixture_cache(f));
	assert_int_equal(
		get(f, buf + 48 * mib * pg, 12 * mib * pg, ACC_RW, &held), 0);
	assert_int_equal(softhfi_process_pinned_pages(), 60 * mib);

	assert_int_equal(
		get(f, buf + 60 * mib * pg, 8 * mib * pg, ACC_RW, &more),
		ENOMEM);
	assert_int_equal(f->logs, 1);
	snprintf(want, sizeof(want),
		 "out of pinnable memory: a context may pin %zu bytes "
		 "(cache_size %d MiB; RLIMIT_MEMLOCK does not apply with "
		 "CAP_IPC_LOCK), %zu bytes pinned, %zu more asked; nothing "
		 "left to evict (1 entries in use, %zu bytes pinned by this "
		 "context's cache)",
		 16 * mib * pg, CAP_TEST_CACHE_MB, 12 * mib * pg, 8 * mib * pg,
		 12 * mib * pg);
	if (!strstr(f->last_log, want))
		print_message("%s\n", f->last_log);
	assert_non_null(strstr(f->last_log, want));
	assert_null(strstr(f->last_log, "RLIMIT_MEMLOCK is"));

	hfi1_mrc_put(f->c, &held);
	for (i = 0; i < 3; i++) {
		hfi1_mrc_put(other_c[i], &others[i]);
		hfi1_mrc_destroy(other_c[i]);
		hfi1_drv_close(other_drv[i]);
	}
	assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &saved), 0);
	munmap(buf, npages * pg);
}

/* 6. The hit path's cost, printed (the benchmark holds the target). */
static void test_hit_cost(void **state)
{
	struct fixture *f = *state;
	struct hfi1_mrc_ref r[10] = { 0 }, h = { 0 };
	const unsigned int iters = 200000;
	struct timespec t0, t1;
	char *buf = map_pages(20);
	unsigned int i;
	double ns;

	assert_non_null(buf);
	for (i = 0; i < 10; i++) {
		assert_int_equal(get(f, buf + 2 * i * pg, pg, ACC_RW, &r[i]),
				 0);
		hfi1_mrc_put(f->c, &r[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < iters; i++) {
		hfi1_mrc_get(f->c, (uintptr_t)buf + 2 * (i % 10) * pg, pg,
			     ACC_RW, &h);
		hfi1_mrc_put(f->c, &h);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	     iters;
	print_message("hit get+put at 10 entries: %.1f ns\n", ns);
	assert_int_equal(ctr(&f->ctr.hits), iters);
	assert_int_equal(ctr(&f->ctr.misses), 10);
	munmap(buf, 20 * pg);
}

static int group_setup(void **state)
{
	(void)state;
	pg = sysconf(_SC_PAGESIZE);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return softhfi_process_pinned_pages() ? -1 : 0;
}

#define T(fn, s) cmocka_unit_test_setup_teardown(fn, s, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_hits_misses, setup),
		T(test_bad_input, setup),
		T(test_limit_entries, setup_two_entries),
		T(test_limit_bytes, setup_bytes),
		T(test_disabled, setup_disabled),
		T(test_windows, setup),
		T(test_tids_run_out, setup_small),
		T(test_inval_idle_munmap, setup),
		T(test_inval_idle_dontneed, setup),
		T(test_inval_idle_mremap, setup),
		T(test_inval_idle_free, setup),
		T(test_inval_in_use, setup),
		T(test_drain_returned, setup),
		T(test_address_reuse, setup),
		T(test_destroy_flushes, setup),
		T(test_memlock_nobody, setup_bare),
		T(test_pin_limit_cap_ipc_lock, setup_bare),
		T(test_hit_cost, setup),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("mr_cache", tests, group_setup,
					   group_teardown);
}
