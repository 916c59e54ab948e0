// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The MR cache under threads: workers get and put overlapping ranges of a
 * few regions while a mapper thread replaces the regions' memory
 * (mmap(MAP_FIXED) over them) and an event
 * thread drains when the driver's event fd fires, as the provider's does.
 *
 * The property: no get returns an entry over memory that was unmapped
 * before the get started. Each region has a generation, odd while the
 * mapper replaces its memory. A worker notes the generation before its
 * get; if it is the same (and even) after the check, the memory was the
 * same all along, so the get must succeed and the adapter's DMA through
 * the entry's TID (hfi1_drv_place(), which writes the pinned pages) must
 * show up in the memory the worker reads. A stale entry pins the old
 * pages: its data would not show up, or the soft HFI would say ESTALE.
 *
 * At the end the counters balance, with each other and with the soft
 * HFI's own figures. Built for ThreadSanitizer too (label tsan).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "mr_cache.h"
#include "softhfi.h"
#include "unit_helpers.h"

#define NREGIONS 6
#define REGION_PAGES 16
#define NWORKERS 3
#define RUN_MS 1500
#define SLOT 64 /* bytes a worker writes at, per worker */

static size_t pg;

struct stress {
	struct hfi1_drv *drv;
	struct hfi1_mrc *c;
	struct hfi1_mrc_counters ctr;
	char *base; /* NREGIONS regions of REGION_PAGES pages */
	_Atomic uint64_t gen[NREGIONS];
	_Atomic bool stop;
	_Atomic uint64_t invalidated; /* ops->invalidated calls */
	_Atomic uint64_t gets_ok, checked, remaps;
	/* The first violation, written once. */
	_Atomic int failed;
	char why[256];
};

struct worker {
	struct stress *s;
	unsigned int idx;
	int sv[2];
	uint32_t seed;
	uint64_t ok;
};

static uint32_t rnd(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

static void fail_once(struct stress *s, const char *fmt, ...)
{
	int zero = 0;
	va_list ap;

	if (!atomic_compare_exchange_strong(&s->failed, &zero, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	atomic_store(&s->stop, true);
}

static void cb_log(void *arg, int level, const char *msg)
{
	struct stress *s = arg;

	(void)level;
	fail_once(s, "logged: %s", msg);
}

static void cb_invalidated(struct hfi1_mrc_ref *ref,
			   enum hfi1_mrc_reason reason, void *arg)
{
	struct stress *s = arg;

	(void)ref;
	(void)reason;
	atomic_fetch_add(&s->invalidated, 1);
}

/*
 * Through the entry's TID, place @len bytes of @byte at @addr; 0 or the
 * errno of hfi1_drv_place().
 */
static int dma(struct worker *w, struct hfi1_mrc_entry *e, uint64_t addr,
	       unsigned char byte, size_t len)
{
	unsigned char data[SLOT];
	uint32_t tidinfo, off, left;
	ssize_t n;
	int err;

	err = hfi1_mrc_entry_tid(e, addr, &tidinfo, &off, &left);
	if (err)
		return err;
	memset(data, byte, len);
	if (write(w->sv[0], data, len) != (ssize_t)len)
		return EIO;
	n = hfi1_drv_place(w->s->drv, tidinfo, off, w->sv[1], len);
	if (n == (ssize_t)len)
		return 0;
	err = n < 0 ? errno : EIO;
	/* Whatever a failed placement left on the wire. */
	while (recv(w->sv[1], data, sizeof(data), MSG_DONTWAIT) > 0)
		;
	return err;
}

/*
 * Whether the DMA's bytes are in memory. The mapper may replace that
 * memory meanwhile (the generation check then ignores the answer), a race
 * with mmap() that ThreadSanitizer would report: this read is exempt.
 */
__attribute__((no_sanitize_thread)) static bool
slot_holds(volatile unsigned char *slot, unsigned char byte)
{
	return slot[0] == byte && slot[SLOT - 1] == byte;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	unsigned char byte = 0;

	while (!atomic_load(&s->stop)) {
		unsigned int r = rnd(&w->seed) % NREGIONS;
		unsigned int first = rnd(&w->seed) % (REGION_PAGES - 1);
		unsigned int npages =
			1 + rnd(&w->seed) % (REGION_PAGES - first);
		char *start = s->base + (r * REGION_PAGES + first) * pg;
		volatile unsigned char *slot;
		struct hfi1_mrc_ref ref = { 0 };
		uint64_t g0, g1;
		int err, derr = 0;
		bool seen = false;

		g0 = atomic_load(&s->gen[r]);
		if (g0 & 1) {
			sched_yield();
			continue;
		}
		err = hfi1_mrc_get(s->c, (uintptr_t)start + 8, npages * pg - 8,
				   0x3, &ref);
		if (!err) {
			atomic_fetch_add(&s->gets_ok, 1);
			w->ok++;
			byte = byte % 250 + 1;
			slot = (volatile unsigned char *)start + w->idx * SLOT;
			derr = dma(w, ref.entry, (uintptr_t)slot, byte, SLOT);
			seen = !derr && slot_holds(slot, byte);
		}
		g1 = atomic_load(&s->gen[r]);
		if (g1 == g0) {
			atomic_fetch_add(&s->checked, 1);
			if (err)
				fail_once(s, "get of mapped memory: %s",
					  strerror(err));
			else if (derr)
				fail_once(s, "DMA through a fresh entry: %s",
					  strerror(derr));
			else if (!seen)
				fail_once(s,
					  "DMA went to memory unmapped before "
					  "the get (region %u, gen %llu)",
					  r, (unsigned long long)g0);
		}
		if (!err)
			hfi1_mrc_put(s->c, &ref);
	}
	return NULL;
}

static void *mapper_main(void *arg)
{
	struct stress *s = arg;
	uint32_t seed = 7;
	void *p;

	while (!atomic_load(&s->stop)) {
		unsigned int r = rnd(&seed) % NREGIONS;
		char *start = s->base + r * REGION_PAGES * pg;
		size_t len = REGION_PAGES * pg;

		atomic_fetch_add(&s->gen[r], 1); /* odd: going away */
		/*
		 * Replaced in one go, so that a reader never faults. Not
		 * madvise(MADV_DONTNEED): userfaultfd reports it before the
		 * pages are zapped, so a TID_UPDATE in between pins pages
		 * about to go, and nothing tells (a gap of the soft HFI; hfi1
		 * ignores DONTNEED altogether).
		 */
		p = mmap(start, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p != start)
			fail_once(s, "mmap(MAP_FIXED): %s", strerror(errno));
		madvise(start, len, MADV_NOHUGEPAGE);
		atomic_fetch_add(&s->gen[r], 1); /* even: stable */
		atomic_fetch_add(&s->remaps, 1);
		usleep(200 + rnd(&seed) % 800);
	}
	return NULL;
}

/* The provider's event thread: drain when the event fd fires. */
static void *drainer_main(void *arg)
{
	struct stress *s = arg;
	struct pollfd pfd = { .fd = s->drv->event_fd, .events = POLLIN };
	uint64_t count;

	while (!atomic_load(&s->stop)) {
		if (poll(&pfd, 1, 10) == 1 &&
		    read(pfd.fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			fail_once(s, "event fd: %s", strerror(errno));
		hfi1_mrc_drain(s->c);
	}
	return NULL;
}

static uint64_t ctr(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void run_stress(const struct hfi1_mrc_limits *limits)
{
	struct hfi1_mrc_ops ops = { .invalidated = cb_invalidated,
				    .log = cb_log };
	struct stress *s = calloc(1, sizeof(*s));
	struct worker w[NWORKERS];
	pthread_t wt[NWORKERS], mt, dt;
	struct softhfi_params params;
	struct softhfi_stats st;
	size_t len = NREGIONS * REGION_PAGES * pg;
	uint64_t end, sum = 0;
	unsigned int i;

	assert_non_null(s);
	ops.arg = s;
	softhfi_default_params(&params);
	s->drv = softhfi_open(&params);
	assert_non_null(s->drv);
	s->c = hfi1_mrc_create(s->drv, limits, &s->ctr, &ops);
	assert_non_null(s->c);
	s->base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(s->base, MAP_FAILED);
	madvise(s->base, len, MADV_NOHUGEPAGE);

	for (i = 0; i < NWORKERS; i++) {
		w[i] = (struct worker){ .s = s, .idx = i, .seed = 1 + i * 77 };
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, w[i].sv),
				 0);
		assert_int_equal(
			pthread_create(&wt[i], NULL, worker_main, &w[i]), 0);
	}
	assert_int_equal(pthread_create(&mt, NULL, mapper_main, s), 0);
	assert_int_equal(pthread_create(&dt, NULL, drainer_main, s), 0);
	end = now_ms() + RUN_MS;
	while (now_ms() < end && !atomic_load(&s->stop))
		usleep(10000);
	atomic_store(&s->stop, true);
	for (i = 0; i < NWORKERS; i++) {
		pthread_join(wt[i], NULL);
		sum += w[i].ok;
		close(w[i].sv[0]);
		close(w[i].sv[1]);
	}
	pthread_join(mt, NULL);
	pthread_join(dt, NULL);

	if (atomic_load(&s->failed))
		fail_msg("%s", s->why);
	print_message("%llu gets, %llu checked, %llu remaps, %llu hits, "
		      "%llu misses, %llu evictions, %llu invalidations "
		      "(%llu in use)\n",
		      (unsigned long long)ctr(&s->gets_ok),
		      (unsigned long long)ctr(&s->checked),
		      (unsigned long long)ctr(&s->remaps),
		      (unsigned long long)ctr(&s->ctr.hits),
		      (unsigned long long)ctr(&s->ctr.misses),
		      (unsigned long long)ctr(&s->ctr.evictions),
		      (unsigned long long)ctr(&s->ctr.invalidations),
		      (unsigned long long)ctr(&s->ctr.invalidated_in_use));
	assert_true(ctr(&s->checked) > 0);
	assert_true(ctr(&s->remaps) > 0);
	assert_true(ctr(&s->ctr.invalidations) > 0);

	/* Everything put: the counters balance with each other ... */
	hfi1_mrc_drain(s->c);
	assert_int_equal(ctr(&s->ctr.hits) + ctr(&s->ctr.misses), sum);
	assert_int_equal(ctr(&s->ctr.entries), ctr(&s->ctr.idle_entries));
	if (limits->enabled && limits->max_entries)
		assert_true(ctr(&s->ctr.entries) <= limits->max_entries);
	/* ... and with the soft HFI's figures */
	softhfi_get_stats(s->drv, &st);
	assert_int_equal(st.tids_used, ctr(&s->ctr.tids_used));
	assert_int_equal(st.tids_invalid, 0);
	assert_int_equal(st.pinned_pages * pg, ctr(&s->ctr.pinned_bytes));
	hfi1_mrc_destroy(s->c);
	softhfi_get_stats(s->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.pinned_pages, 0);
	hfi1_drv_close(s->drv);
	munmap(s->base, len);
	free(s);
}

static void test_stress_cached(void **state)
{
	struct hfi1_mrc_limits l = { .enabled = true, .max_entries = 1024 };

	(void)state;
	run_stress(&l);
}

/* Few entries: eviction races with gets, puts and drains too. */
static void test_stress_evicting(void **state)
{
	struct hfi1_mrc_limits l = { .enabled = true, .max_entries = 4 };

	(void)state;
	run_stress(&l);
}

static void test_stress_disabled(void **state)
{
	struct hfi1_mrc_limits l = { .enabled = false };

	(void)state;
	run_stress(&l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_cached),
		cmocka_unit_test(test_stress_evicting),
		cmocka_unit_test(test_stress_disabled),
	};

	pg = sysconf(_SC_PAGESIZE);
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("mr_cache_mt", tests, NULL, NULL);
}
