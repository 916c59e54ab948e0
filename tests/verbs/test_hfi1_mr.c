// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * MRs of the soft HFI through libibverbs and hfi1dv (-lhfi1): reg, dereg
 * and rereg; bad input; a registered MR invalidated by munmap (the async
 * event, its identity, the MR's state, the data path's lookup); the cache
 * counters and per-context limits; max_mr, reached by MRs that share cache
 * entries, and the TIDs that bound MRs over distinct memory; an MR used
 * after its deregistration; a forked child on its parent's context; hfi1dv
 * on another device; hits under libibverbs' fork protection.
 *
 * Run by tests/with_soft_hfi.sh, which brings up hfi1_0 and hfi1_1. The
 * provider is linked into the program (hfi1_static), which also gives it
 * the provider's private functions.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <infiniband/hfi1dv.h>
#include <infiniband/verbs.h>

/* hfi1_mr_lookup(), the data path's key check, is not an API. */
#include "mr.h"
#include "stats.h"

#define MiB (1UL << 20)
#define RW_ACCESS                                           \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
	 IBV_ACCESS_REMOTE_READ)

/*
 * madvise() counted by the advice of libibverbs' fork protection: this
 * program's definition comes before libc's for libibverbs too.
 */
static atomic_uint dontfork_calls, dofork_calls;

int madvise(void *addr, size_t len, int advice)
{
	if (advice == MADV_DONTFORK)
		atomic_fetch_add(&dontfork_calls, 1);
	else if (advice == MADV_DOFORK)
		atomic_fetch_add(&dofork_calls, 1);
	return syscall(SYS_madvise, addr, len, advice);
}

struct fixture {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	size_t page;
};

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	assert_non_null(list);
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	return ctx;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->ctx = open_dev("hfi1_0");
	if (!f->ctx)
		return -1;
	f->pd = ibv_alloc_pd(f->ctx);
	if (!f->pd)
		return -1;
	f->page = sysconf(_SC_PAGESIZE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (ibv_dealloc_pd(f->pd) || ibv_close_device(f->ctx))
		return -1;
	free(f);
	return 0;
}

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	memset(p, 0x5a, len);
	return p;
}

static void query_cache(struct ibv_context *ctx,
			struct hfi1dv_mr_cache_stats *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(hfi1dv_query_mr_cache(ctx, s, sizeof(*s)), 0);
}

static int lookup(struct ibv_mr *mr, uint32_t key, uint64_t iova, uint64_t len,
		  int access, bool remote)
{
	struct hfi1_mr *found;
	int ret;

	ret = hfi1_mr_lookup(to_hfi1_ctx(mr->context), to_hfi1_pd(mr->pd), key,
			     iova, len, access, remote, &found);
	if (!ret)
		assert_ptr_equal(&found->vmr.ibv_mr, mr);
	return ret;
}

/* The next async event within 5 s; false if none came. */
static bool next_event(struct ibv_context *ctx, struct ibv_async_event *ev)
{
	struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };

	if (poll(&pfd, 1, 5000) != 1)
		return false;
	return !ibv_get_async_event(ctx, ev);
}

static void test_reg_dereg(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_attr attr = {};
	struct ibv_mr *mr, *mr2;
	char *buf = map(MiB);
	uint32_t key;

	mr = ibv_reg_mr(f->pd, buf + 100, MiB - 200, RW_ACCESS);
	assert_non_null(mr);
	assert_ptr_equal(mr->addr, buf + 100);
	assert_int_equal(mr->length, MiB - 200);
	assert_int_not_equal(mr->lkey, 0);
	assert_int_equal(mr->lkey, mr->rkey);

	assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), 0);
	assert_int_equal(attr.valid, 1);
	assert_int_equal(attr.reason, 0);
	assert_true(attr.cache_start <= (uintptr_t)buf);
	assert_true(attr.cache_end >= (uintptr_t)buf + MiB);
	assert_int_equal(attr.cache_start % f->page, 0);

	/* The data path's view: range, access, key. */
	assert_int_equal(lookup(mr, mr->lkey, (uintptr_t)buf + 100, MiB - 200,
				IBV_ACCESS_LOCAL_WRITE, false),
			 0);
	assert_int_equal(lookup(mr, mr->rkey, (uintptr_t)buf + 4096, 8,
				IBV_ACCESS_REMOTE_WRITE, true),
			 0);
	assert_int_equal(lookup(mr, mr->lkey, (uintptr_t)buf, 8, 0, false),
			 ERANGE);
	assert_int_equal(
		lookup(mr, mr->lkey, (uintptr_t)buf + MiB - 200, 101, 0, false),
		ERANGE);
	assert_int_equal(lookup(mr, mr->rkey, (uintptr_t)buf + 100, 8,
				IBV_ACCESS_REMOTE_ATOMIC, true),
			 EACCES);
	assert_int_equal(
		lookup(mr, mr->lkey ^ 0x100, (uintptr_t)buf + 100, 8, 0, false),
		ENOENT);

	/* Another MR has another key; a new registration a new key. */
	mr2 = ibv_reg_mr(f->pd, buf, MiB, IBV_ACCESS_LOCAL_WRITE);
	assert_non_null(mr2);
	assert_int_not_equal(mr2->lkey, mr->lkey);
	assert_int_equal(ibv_dereg_mr(mr2), 0);

	key = mr->lkey;
	assert_int_equal(ibv_dereg_mr(mr), 0);
	mr = ibv_reg_mr(f->pd, buf + 100, MiB - 200, RW_ACCESS);
	assert_non_null(mr);
	assert_int_not_equal(mr->lkey, key);
	/* The old key names nothing now. */
	assert_int_equal(lookup(mr, key, (uintptr_t)buf + 100, 8, 0, false),
			 ENOENT);
	assert_int_equal(ibv_dereg_mr(mr), 0);

	/* ibv_reg_mr_iova: work requests address the MR by its iova. */
	mr = ibv_reg_mr_iova(f->pd, buf, MiB, 0x10000000, RW_ACCESS);
	assert_non_null(mr);
	assert_int_equal(
		lookup(mr, mr->lkey, 0x10000000 + MiB - 8, 8, 0, false), 0);
	assert_int_equal(lookup(mr, mr->lkey, (uintptr_t)buf, 8, 0, false),
			 ERANGE);
	/* The PD holds an MR. */
	assert_int_equal(ibv_dealloc_pd(f->pd), EBUSY);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	munmap(buf, MiB);
}

static void test_hits(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_cache_stats before, after;
	struct ibv_mr *mr;
	char *buf = map(MiB);
	int i;

	query_cache(f->ctx, &before);
	for (i = 0; i < 10; i++) {
		mr = ibv_reg_mr(f->pd, buf, MiB, RW_ACCESS);
		assert_non_null(mr);
		assert_int_equal(ibv_dereg_mr(mr), 0);
	}
	/* Contained in the cached one: a hit as well. */
	mr = ibv_reg_mr(f->pd, buf + 4096, 4096, IBV_ACCESS_LOCAL_WRITE);
	assert_non_null(mr);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	query_cache(f->ctx, &after);
	assert_int_equal(after.misses - before.misses, 1);
	assert_int_equal(after.hits - before.hits, 10);
	assert_true(after.entries >= 1);
	assert_true(after.idle_entries >= 1);
	assert_true(after.pinned_bytes >= MiB);
	assert_true(after.tids_used >= 1);
	munmap(buf, MiB);
}

static void expect_reg_fails(struct fixture *f, void *addr, size_t len,
			     int access, int err)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(f->pd, addr, len, access);
	if (mr)
		ibv_dereg_mr(mr);
	assert_null(mr);
	assert_int_equal(errno, err);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	char *buf = map(MiB);
	void *hole;

	expect_reg_fails(f, NULL, 4096, RW_ACCESS, EINVAL);
	expect_reg_fails(f, buf, 0, RW_ACCESS, EINVAL);
	expect_reg_fails(f, buf, HFI1_MAX_MR_SIZE + 1, RW_ACCESS, EINVAL);
	expect_reg_fails(f, buf, 4096, IBV_ACCESS_REMOTE_WRITE, EINVAL);
	expect_reg_fails(f, buf, 4096, IBV_ACCESS_REMOTE_ATOMIC, EINVAL);
	expect_reg_fails(f, buf, 4096,
			 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND,
			 EOPNOTSUPP);
	expect_reg_fails(f, buf, 4096,
			 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND,
			 EOPNOTSUPP);
	expect_reg_fails(f, buf, 4096, IBV_ACCESS_LOCAL_WRITE | (1 << 12),
			 EINVAL);

	/* Memory that is not mapped. */
	hole = map(f->page);
	munmap(hole, f->page);
	expect_reg_fails(f, hole, f->page, RW_ACCESS, EFAULT);
	munmap(buf, MiB);
}

static void test_rereg(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_attr attr = {};
	char *a = map(MiB), *b = map(MiB);
	struct ibv_pd *pd2;
	struct ibv_mr *mr;
	uint32_t key;

	mr = ibv_reg_mr(f->pd, a, MiB, RW_ACCESS);
	assert_non_null(mr);
	key = mr->lkey;

	assert_int_equal(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				      b, MiB / 2, 0),
			 0);
	assert_ptr_equal(mr->addr, b);
	assert_int_equal(mr->length, MiB / 2);
	assert_int_equal(mr->lkey, key);
	assert_int_equal(lookup(mr, key, (uintptr_t)b, MiB / 2,
				IBV_ACCESS_LOCAL_WRITE, false),
			 0);
	assert_int_equal(lookup(mr, key, (uintptr_t)a, 8, 0, false), ERANGE);

	assert_int_equal(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL,
				      NULL, 0, IBV_ACCESS_LOCAL_WRITE),
			 0);
	assert_int_equal(
		lookup(mr, key, (uintptr_t)b, 8, IBV_ACCESS_REMOTE_READ, true),
		EACCES);

	pd2 = ibv_alloc_pd(f->ctx);
	assert_non_null(pd2);
	assert_int_equal(
		ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_PD, pd2, NULL, 0, 0), 0);
	assert_ptr_equal(mr->pd, pd2);
	assert_int_equal(ibv_dealloc_pd(pd2), EBUSY);

	/* Bad changes fail and leave the MR as it was. */
	assert_int_equal(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL,
				      NULL, 0, IBV_ACCESS_REMOTE_WRITE),
			 IBV_REREG_MR_ERR_CMD);
	assert_int_equal(ibv_rereg_mr(mr, 0, NULL, NULL, 0, 0),
			 IBV_REREG_MR_ERR_CMD);
	munmap(a, MiB);
	assert_int_not_equal(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION,
					  NULL, a, MiB, 0),
			     0);
	assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), 0);
	assert_int_equal(attr.valid, 1);
	assert_int_equal(lookup(mr, key, (uintptr_t)b, 8, 0, false), 0);

	assert_int_equal(ibv_dereg_mr(mr), 0);
	assert_int_equal(ibv_dealloc_pd(pd2), 0);
	munmap(b, MiB);
}

static void test_invalidated(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_cache_stats before, after;
	struct hfi1dv_mr_event me = {};
	struct hfi1dv_mr_attr attr = {};
	struct ibv_async_event ev;
	size_t len = 16 * f->page;
	char *buf = map(len);
	struct ibv_mr *mr;
	uint32_t key;
	void *again;

	query_cache(f->ctx, &before);
	mr = ibv_reg_mr(f->pd, buf + 8, len - 16, RW_ACCESS);
	assert_non_null(mr);
	key = mr->lkey;

	/* No verbs call after the munmap: the event thread drains. */
	assert_int_equal(munmap(buf, len), 0);
	assert_true(next_event(f->ctx, &ev));
	assert_int_equal(ev.event_type, HFI1DV_EVENT_MR_INVALIDATED);
	assert_int_equal((uint32_t)ev.element.port_num, key);

	assert_int_equal(hfi1dv_get_mr_event(f->ctx, &ev, &me, sizeof(me)), 0);
	assert_int_equal(me.lkey, key);
	assert_int_equal(me.rkey, mr->rkey);
	assert_int_equal(me.addr, (uintptr_t)buf + 8);
	assert_int_equal(me.length, len - 16);
	assert_int_equal(me.reason, HFI1DV_MR_INVAL_UNMAPPED);

	assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), 0);
	assert_int_equal(attr.valid, 0);
	assert_int_equal(attr.reason, HFI1DV_MR_INVAL_UNMAPPED);
	/* The data path refuses it, locally and remotely. */
	assert_int_equal(lookup(mr, key, (uintptr_t)buf + 8, 8,
				IBV_ACCESS_LOCAL_WRITE, false),
			 ESTALE);
	assert_int_equal(lookup(mr, key, (uintptr_t)buf + 8, 8,
				IBV_ACCESS_REMOTE_WRITE, true),
			 ESTALE);

	query_cache(f->ctx, &after);
	assert_int_equal(after.invalidations - before.invalidations, 1);
	assert_int_equal(after.invalidated_in_use - before.invalidated_in_use,
			 1);

	/* Memory mapped there again: rereg makes the MR valid again. */
	again = mmap(buf, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (again == buf) {
		memset(buf, 0, len);
		assert_int_equal(ibv_rereg_mr(mr,
					      IBV_REREG_MR_CHANGE_TRANSLATION,
					      NULL, buf + 8, len - 16, 0),
				 0);
		assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), 0);
		assert_int_equal(attr.valid, 1);
		assert_int_equal(lookup(mr, key, (uintptr_t)buf + 8, 8,
					IBV_ACCESS_LOCAL_WRITE, false),
				 0);
		munmap(buf, len);
		assert_true(next_event(f->ctx, &ev));
		assert_int_equal((uint32_t)ev.element.port_num, key);
		ibv_ack_async_event(&ev);
	}
	ibv_ack_async_event(&ev);

	assert_int_equal(ibv_dereg_mr(mr), 0);
	/* The identity outlives the MR. */
	memset(&me, 0, sizeof(me));
	assert_int_equal(hfi1dv_get_mr_event(f->ctx, &ev, &me, sizeof(me)), 0);
	assert_int_equal(me.lkey, key);
	assert_int_equal(me.reason, HFI1DV_MR_INVAL_UNMAPPED);

	/* A shorter struct gets what it has. */
	memset(&me, 0xff, sizeof(me));
	me.comp_mask = 0;
	assert_int_equal(
		hfi1dv_get_mr_event(f->ctx, &ev, &me,
				    offsetof(struct hfi1dv_mr_event, rkey)),
		0);
	assert_int_equal(me.lkey, key);
	assert_int_equal(me.rkey, 0xffffffff);

	/* Unknown keys, other events, unknown comp_mask, no room. */
	ev.element.port_num = 0x7ffffff0;
	assert_int_equal(hfi1dv_get_mr_event(f->ctx, &ev, &me, sizeof(me)),
			 ENOENT);
	ev.event_type = IBV_EVENT_PORT_ACTIVE;
	assert_int_equal(hfi1dv_get_mr_event(f->ctx, &ev, &me, sizeof(me)),
			 EINVAL);
	ev.event_type = HFI1DV_EVENT_MR_INVALIDATED;
	ev.element.port_num = key;
	me.comp_mask = 1;
	assert_int_equal(hfi1dv_get_mr_event(f->ctx, &ev, &me, sizeof(me)),
			 EINVAL);
	me.comp_mask = 0;
	assert_int_equal(hfi1dv_get_mr_event(f->ctx, &ev, &me, 4), EINVAL);
}

static void test_limits(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_cache_limits l = {}, got = {}, orig = {};
	struct hfi1dv_mr_cache_stats before, after;
	struct ibv_context *other;
	struct ibv_mr *mr;
	char *buf = map(MiB);
	int i;

	assert_int_equal(
		hfi1dv_get_mr_cache_limits(f->ctx, &orig, sizeof(orig)), 0);
	assert_int_equal(orig.comp_mask,
			 HFI1DV_MR_CACHE_LIMIT_ENABLED |
				 HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES |
				 HFI1DV_MR_CACHE_LIMIT_MAX_BYTES);
	assert_int_equal(orig.enabled, 1);

	l.comp_mask = HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES |
		      HFI1DV_MR_CACHE_LIMIT_MAX_BYTES;
	l.max_entries = 7;
	l.max_bytes = 64 * MiB;
	assert_int_equal(hfi1dv_set_mr_cache_limits(f->ctx, &l, sizeof(l)), 0);
	assert_int_equal(hfi1dv_get_mr_cache_limits(f->ctx, &got, sizeof(got)),
			 0);
	assert_int_equal(got.enabled, 1);
	assert_int_equal(got.max_entries, 7);
	assert_int_equal(got.max_bytes, 64 * MiB);

	/* Per context: another one keeps its own. */
	other = open_dev("hfi1_0");
	assert_non_null(other);
	memset(&got, 0, sizeof(got));
	assert_int_equal(hfi1dv_get_mr_cache_limits(other, &got, sizeof(got)),
			 0);
	assert_int_equal(got.max_entries, orig.max_entries);
	assert_int_equal(got.max_bytes, orig.max_bytes);
	assert_int_equal(ibv_close_device(other), 0);

	/* Cache off: every registration misses. */
	l.comp_mask = HFI1DV_MR_CACHE_LIMIT_ENABLED;
	l.enabled = 0;
	assert_int_equal(hfi1dv_set_mr_cache_limits(f->ctx, &l, sizeof(l)), 0);
	query_cache(f->ctx, &before);
	for (i = 0; i < 3; i++) {
		mr = ibv_reg_mr(f->pd, buf, MiB, RW_ACCESS);
		assert_non_null(mr);
		assert_int_equal(ibv_dereg_mr(mr), 0);
	}
	query_cache(f->ctx, &after);
	assert_int_equal(after.hits - before.hits, 0);
	assert_int_equal(after.misses - before.misses, 3);

	/* Bad limits change nothing. */
	l.enabled = 2;
	assert_int_equal(hfi1dv_set_mr_cache_limits(f->ctx, &l, sizeof(l)),
			 EINVAL);
	l.enabled = 1;
	l.comp_mask = 1 << 5;
	assert_int_equal(hfi1dv_set_mr_cache_limits(f->ctx, &l, sizeof(l)),
			 EINVAL);
	l.comp_mask = HFI1DV_MR_CACHE_LIMIT_MAX_BYTES;
	assert_int_equal(hfi1dv_set_mr_cache_limits(
				 f->ctx, &l, offsetof(typeof(l), max_bytes)),
			 EINVAL);
	assert_int_equal(hfi1dv_set_mr_cache_limits(f->ctx, &l, 4), EINVAL);
	memset(&got, 0, sizeof(got));
	assert_int_equal(hfi1dv_get_mr_cache_limits(f->ctx, &got, sizeof(got)),
			 0);
	assert_int_equal(got.enabled, 0);

	/* A short struct: comp_mask says what it got. */
	memset(&got, 0, sizeof(got));
	assert_int_equal(
		hfi1dv_get_mr_cache_limits(f->ctx, &got,
					   offsetof(typeof(got), max_bytes)),
		0);
	assert_int_equal(got.comp_mask,
			 HFI1DV_MR_CACHE_LIMIT_ENABLED |
				 HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES);

	orig.comp_mask = HFI1DV_MR_CACHE_LIMIT_ENABLED |
			 HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES |
			 HFI1DV_MR_CACHE_LIMIT_MAX_BYTES;
	assert_int_equal(
		hfi1dv_set_mr_cache_limits(f->ctx, &orig, sizeof(orig)), 0);
	munmap(buf, MiB);
}

#define NT 4 /* threads */

#define NREG 200 /* registrations of its own buffer, per thread */

struct thread_arg {
	struct fixture *f;
	char *shared;
	int failures;
	uint32_t keys[NREG]; /* of the MRs over its own buffer */
};

/* Registers the shared buffer and its own, which it unmaps while in use. */
static void *reg_thread(void *p)
{
	struct thread_arg *a = p;
	struct ibv_mr *mr, *own;
	char *buf;
	int i;

	for (i = 0; i < NREG; i++) {
		mr = ibv_reg_mr(a->f->pd, a->shared + (i % 8) * 4096, 4096,
				RW_ACCESS);
		buf = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED) {
			a->failures++;
			break;
		}
		memset(buf, 1, 8 * 4096);
		own = ibv_reg_mr(a->f->pd, buf, 8 * 4096, RW_ACCESS);
		if (!mr || !own)
			a->failures++;
		a->keys[i] = own ? own->lkey : 0;
		munmap(buf, 8 * 4096);
		if (own && ibv_dereg_mr(own))
			a->failures++;
		if (mr && ibv_dereg_mr(mr))
			a->failures++;
	}
	return NULL;
}

/*
 * Registration, deregistration and invalidation from several threads at
 * once (run it under ThreadSanitizer: -DHFI1_SANITIZE=thread); every
 * invalidated MR's event arrives.
 */
static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct thread_arg args[NT];
	pthread_t threads[NT];
	struct ibv_async_event ev;
	char *shared = map(MiB);
	int i, j, seen[NT][NREG] = {};
	int events = 0, foreign = 0, twice = 0, missing = 0;
	bool found;

	for (i = 0; i < NT; i++) {
		args[i] = (struct thread_arg){ .f = f, .shared = shared };
		assert_int_equal(
			pthread_create(&threads[i], NULL, reg_thread, &args[i]),
			0);
	}
	for (i = 0; i < NT; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	while (events < NT * NREG && next_event(f->ctx, &ev)) {
		assert_int_equal(ev.event_type, HFI1DV_EVENT_MR_INVALIDATED);
		found = false;
		for (i = 0; i < NT && !found; i++)
			for (j = 0; j < NREG && !found; j++)
				if (args[i].keys[j] ==
				    (uint32_t)ev.element.port_num) {
					twice += seen[i][j]++ == 1;
					found = true;
				}
		foreign += !found;
		ibv_ack_async_event(&ev);
		events++;
	}
	for (i = 0; i < NT; i++)
		for (j = 0; j < NREG; j++)
			missing += !seen[i][j];
	print_message("%d events: %d foreign, %d twice, %d MRs without\n",
		      events, foreign, twice, missing);
	/* Events only for the unmapped MRs, one each... */
	assert_int_equal(foreign, 0);
	assert_int_equal(twice, 0);
	/* ... and one for every MR unmapped while registered. */
	assert_int_equal(missing, 0);
	munmap(shared, MiB);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * HFI1_MAX_MR MRs of 64-byte pieces of @buf, one page: they share one cache
 * entry, so that max_mr is reached before the TIDs run out.
 */
static void reg_max_mr(struct fixture *f, struct ibv_pd *pd, char *buf,
		       struct ibv_mr **mrs)
{
	int i;

	for (i = 0; i < HFI1_MAX_MR; i++) {
		mrs[i] = ibv_reg_mr(pd, buf + i % (f->page / 64) * 64, 64,
				    RW_ACCESS);
		if (!mrs[i])
			fail_msg("MR %d of max_mr %d: %s", i, HFI1_MAX_MR,
				 strerror(errno));
	}
}

/*
 * max_mr is exact, and reached where MRs share cache entries: max_mr MRs
 * of 64-byte buffers in one page (one entry, one TID) all register, with
 * distinct keys; one more is ENOMEM; after a dereg, one registers again.
 */
static void test_max_mr(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_cache_stats before, after;
	struct ibv_device_attr attr;
	struct ibv_mr **mrs, *mr;
	char *buf = map(f->page);
	uint32_t *keys;
	int i, n;

	assert_int_equal(ibv_query_device(f->ctx, &attr), 0);
	n = attr.max_mr;
	assert_int_equal(n, HFI1_MAX_MR);
	mrs = calloc(n, sizeof(*mrs));
	keys = calloc(n, sizeof(*keys));
	assert_non_null(mrs);
	assert_non_null(keys);

	query_cache(f->ctx, &before);
	reg_max_mr(f, f->pd, buf, mrs);
	for (i = 0; i < n; i++)
		keys[i] = mrs[i]->lkey;
	query_cache(f->ctx, &after);
	assert_int_equal(after.misses - before.misses, 1);
	assert_int_equal(after.hits - before.hits, n - 1);
	assert_int_equal(after.entries - before.entries, 1);
	assert_int_equal(after.tids_used - before.tids_used, 1);
	qsort(keys, n, sizeof(*keys), cmp_u32);
	for (i = 1; i < n; i++)
		assert_int_not_equal(keys[i - 1], keys[i]);

	/* One more: ENOMEM, before the cache is asked. */
	errno = 0;
	assert_null(ibv_reg_mr(f->pd, buf, 64, RW_ACCESS));
	assert_int_equal(errno, ENOMEM);
	query_cache(f->ctx, &before);
	assert_int_equal(before.hits, after.hits);
	assert_int_equal(before.failures, after.failures);

	/* A slot given back is used again at once. */
	assert_int_equal(ibv_dereg_mr(mrs[n / 2]), 0);
	mrs[n / 2] = ibv_reg_mr(f->pd, buf, 64, RW_ACCESS);
	assert_non_null(mrs[n / 2]);
	assert_int_equal(lookup(mrs[n / 2], mrs[n / 2]->lkey, (uintptr_t)buf,
				64, 0, false),
			 0);

	for (i = 0; i < n; i++)
		assert_int_equal(ibv_dereg_mr(mrs[i]), 0);
	mr = ibv_reg_mr(f->pd, buf, 64, RW_ACCESS);
	assert_non_null(mr);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	free(keys);
	free(mrs);
	munmap(buf, f->page);
}

/*
 * The second bound: MRs over distinct memory each need an entry of their
 * own, and an entry at least one TID. With every page its own MR, exactly
 * expected_count register; the next is ENOMEM (nothing idle to evict),
 * yet an MR inside a registered page still does: it shares that entry.
 */
static void test_distinct_memory_tids(void **state)
{
	struct fixture *f = *state;
	struct hfi1_drv *drv = to_hfi1_ctx(f->ctx)->drv;
	uint32_t expected = drv->ctxt_info.rcvtids - drv->ctxt_info.egrtids;
	struct hfi1dv_mr_cache_stats before, after;
	struct ibv_mr **mrs, *extra, *inside;
	char *buf;
	uint32_t i;

	assert_true(expected > 0 && expected <= 2048);
	buf = map((expected + 1) * f->page);
	mrs = calloc(expected, sizeof(*mrs));
	assert_non_null(mrs);
	query_cache(f->ctx, &before);
	assert_int_equal(before.tids_used, 0);
	for (i = 0; i < expected; i++) {
		mrs[i] = ibv_reg_mr(f->pd, buf + i * f->page, f->page,
				    RW_ACCESS);
		if (!mrs[i])
			fail_msg("page %u of %u: %s", i, expected,
				 strerror(errno));
	}
	query_cache(f->ctx, &after);
	assert_int_equal(after.tids_used, expected);
	assert_int_equal(after.misses - before.misses, expected);

	errno = 0;
	assert_null(ibv_reg_mr(f->pd, buf + expected * f->page, f->page,
			       RW_ACCESS));
	assert_int_equal(errno, ENOMEM);
	query_cache(f->ctx, &before);
	assert_int_equal(before.failures - after.failures, 1);
	assert_int_equal(before.tids_used, expected);

	inside = ibv_reg_mr(f->pd, buf + 128, 64, RW_ACCESS);
	assert_non_null(inside);

	/* A dereg leaves an idle entry, which makes room. */
	assert_int_equal(ibv_dereg_mr(mrs[expected - 1]), 0);
	extra = ibv_reg_mr(f->pd, buf + expected * f->page, f->page, RW_ACCESS);
	assert_non_null(extra);
	query_cache(f->ctx, &after);
	assert_int_equal(after.evictions - before.evictions, 1);
	assert_int_equal(after.tids_used, expected);

	assert_int_equal(ibv_dereg_mr(extra), 0);
	assert_int_equal(ibv_dereg_mr(inside), 0);
	for (i = 0; i < expected - 1; i++)
		assert_int_equal(ibv_dereg_mr(mrs[i]), 0);
	free(mrs);
	munmap(buf, (expected + 1) * f->page);
}

/*
 * A second dereg of an MR is EINVAL and changes nothing: the PD counts the
 * MRs it has, and the MR table hands out each MR object once. With every
 * slot of the table in use, the two freed by deregs are all there is: a
 * third registration is ENOMEM, not the twice-freed MR a second time.
 */
static void test_dereg_twice(void **state)
{
	struct fixture *f = *state;
	struct ibv_mr **mrs, *again[3];
	char *buf = map(f->page);
	struct ibv_pd *pd;
	int i, j;

	pd = ibv_alloc_pd(f->ctx);
	assert_non_null(pd);
	mrs = calloc(HFI1_MAX_MR, sizeof(*mrs));
	assert_non_null(mrs);
	reg_max_mr(f, pd, buf, mrs);

	assert_int_equal(ibv_dereg_mr(mrs[0]), 0);
	assert_int_equal(ibv_dereg_mr(mrs[1]), 0);
	assert_int_equal(ibv_dereg_mr(mrs[0]), EINVAL);
	assert_int_equal(ibv_dereg_mr(mrs[1]), EINVAL);
	/* Nor can it be changed back into an MR. */
	assert_int_not_equal(ibv_rereg_mr(mrs[0], IBV_REREG_MR_CHANGE_ACCESS,
					  NULL, NULL, 0,
					  IBV_ACCESS_LOCAL_WRITE),
			     0);

	for (i = 0; i < 3; i++) {
		errno = 0;
		again[i] = ibv_reg_mr(pd, buf, 64, RW_ACCESS);
		if (!again[i])
			break;
	}
	assert_int_equal(i, 2);
	assert_int_equal(errno, ENOMEM);
	for (j = 0; j < i; j++) {
		assert_true(again[j] == mrs[0] || again[j] == mrs[1]);
		assert_int_equal(lookup(again[j], again[j]->lkey,
					(uintptr_t)buf, 64, 0, false),
				 0);
	}
	assert_ptr_not_equal(again[0], again[1]);

	for (i = 0; i < HFI1_MAX_MR; i++)
		assert_int_equal(ibv_dereg_mr(mrs[i]), 0);
	/* The PD counts no MR that is not there. */
	assert_int_equal(ibv_dealloc_pd(pd), 0);
	free(mrs);
	munmap(buf, f->page);
}

/* hfi1dv_query_mr() of a deregistered MR: EINVAL, whatever it held. */
static void test_query_mr_after_dereg(void **state)
{
	struct fixture *f = *state;
	struct hfi1dv_mr_attr attr = {};
	char *buf = map(MiB);
	struct ibv_mr *mr;

	mr = ibv_reg_mr(f->pd, buf, MiB, RW_ACCESS);
	assert_non_null(mr);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), EINVAL);

	/* Invalidated, then deregistered: the same. */
	mr = ibv_reg_mr(f->pd, buf, MiB, RW_ACCESS);
	assert_non_null(mr);
	munmap(buf, MiB);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), EINVAL);
}

/*
 * The child's checks: cmocka's asserts would unwind into the child's copy
 * of the test runner, so a failure is a line and an exit status.
 */
#define CHILD_CHECK(cond)                                                \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "child: %s:%d: %s (errno %d)\n", \
				__FILE__, __LINE__, #cond, errno);       \
			fflush(NULL);                                    \
			_exit(1);                                        \
		}                                                        \
	} while (0)

/*
 * What a forked child tries on its parent's context: every verb fails
 * with EIO, a hit on the parent's cached memory included, and none
 * changes the parent's state; closing the context releases only the
 * child's copy of it.
 */
static void fork_child(struct fixture *f, struct ibv_mr *mr, char *buf,
		       size_t len, bool channels)
{
	struct hfi1dv_mr_cache_limits limits = {};
	struct hfi1dv_mr_cache_stats stats = {};
	struct hfi1dv_mr_attr attr = {};
	struct ibv_device_attr dattr;
	struct ibv_port_attr pattr;
	char *mine;

	/*
	 * Copy-on-write: from here on these pages are the child's own. (With
	 * ibv_fork_init() the child has no mapping there at all.)
	 */
	if (ibv_is_fork_initialized() != IBV_FORK_ENABLED)
		memset(buf, 0xc5, len);
	mine = mmap(NULL, MiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(mine != MAP_FAILED);
	memset(mine, 1, MiB);

	errno = 0;
	CHILD_CHECK(!ibv_reg_mr(f->pd, mine, MiB, RW_ACCESS) && errno == EIO);
	/* A hit on the parent's cached memory gives no MR either. */
	errno = 0;
	CHILD_CHECK(!ibv_reg_mr(f->pd, buf, len, RW_ACCESS) && errno == EIO);
	errno = 0;
	CHILD_CHECK(!ibv_reg_mr(f->pd, buf + f->page, f->page,
				IBV_ACCESS_LOCAL_WRITE) &&
		    errno == EIO);
	CHILD_CHECK(ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
				 IBV_ACCESS_LOCAL_WRITE) != 0);
	CHILD_CHECK(ibv_dereg_mr(mr) == EIO);
	CHILD_CHECK(hfi1dv_query_mr(mr, &attr, sizeof(attr)) == EIO);
	CHILD_CHECK(hfi1dv_query_mr_cache(f->ctx, &stats, sizeof(stats)) ==
		    EIO);
	CHILD_CHECK(hfi1dv_get_mr_cache_limits(f->ctx, &limits,
					       sizeof(limits)) == EIO);
	limits.comp_mask = HFI1DV_MR_CACHE_LIMIT_ENABLED;
	limits.enabled = 0;
	CHILD_CHECK(hfi1dv_set_mr_cache_limits(f->ctx, &limits,
					       sizeof(limits)) == EIO);
	errno = 0;
	CHILD_CHECK(!ibv_alloc_pd(f->ctx) && errno == EIO);
	CHILD_CHECK(ibv_dealloc_pd(f->pd) == EIO);
	CHILD_CHECK(ibv_query_device(f->ctx, &dattr) == EIO);
	CHILD_CHECK(ibv_query_port(f->ctx, 1, &pattr) == EIO);
	/* The parent's uverbs command channel answers the child EIO too. */
	errno = 0;
	CHILD_CHECK(!channels ||
		    (!ibv_create_comp_channel(f->ctx) && errno == EIO));
	CHILD_CHECK(ibv_close_device(f->ctx) == 0);
	/* The provider's log lines, without the runner's atexit handlers. */
	fflush(NULL);
	_exit(0);
}

/*
 * fork() after a registration: the child can do nothing with the parent's
 * context but close it, and afterwards the parent's counters, stats file,
 * MR, cache and event thread are as they were.
 */
static void test_fork(void **state)
{
	struct fixture *f = *state;
	struct hfi1_context *hctx = to_hfi1_ctx(f->ctx);
	struct hfi1dv_mr_cache_stats before, after;
	struct hfi1dv_mr_attr attr = {};
	struct ibv_async_event ev;
	size_t len = 4 * MiB;
	char *buf = map(len);
	const char *path;
	struct ibv_comp_channel *ch;
	struct ibv_mr *mr, *hit;
	bool channels;
	int status;
	pid_t pid;

	/* Where the soft HFI has a command channel (FUSE): see below. */
	ch = ibv_create_comp_channel(f->ctx);
	channels = ch;
	if (ch)
		assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	mr = ibv_reg_mr(f->pd, buf, len, RW_ACCESS);
	assert_non_null(mr);
	query_cache(f->ctx, &before);
	assert_int_equal(before.pinned_bytes, len);

	/* What is buffered is the parent's to print, not the child's too. */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		fork_child(f, mr, buf, len, channels);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Nothing the child did shows in the parent. */
	query_cache(f->ctx, &after);
	assert_memory_equal(&after, &before, sizeof(before));
	path = hfi1_stats_path(hctx->stats);
	if (path)
		assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(hfi1dv_query_mr(mr, &attr, sizeof(attr)), 0);
	assert_int_equal(attr.valid, 1);
	assert_int_equal(lookup(mr, mr->lkey, (uintptr_t)buf, len,
				IBV_ACCESS_LOCAL_WRITE, false),
			 0);
	hit = ibv_reg_mr(f->pd, buf, len, RW_ACCESS);
	assert_non_null(hit);
	assert_int_equal(ibv_dereg_mr(hit), 0);
	query_cache(f->ctx, &after);
	assert_int_equal(after.hits - before.hits, 1);
	assert_int_equal(after.pinned_bytes, len);

	/*
	 * The command channel's server thread still runs (the child's close
	 * stopped it once, and a command then waited for ever: alarm()).
	 */
	if (channels) {
		alarm(30);
		ch = ibv_create_comp_channel(f->ctx);
		alarm(0);
		assert_non_null(ch);
		assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	}
	/* The event thread still runs: an unmapping is told unasked. */
	assert_int_equal(munmap(buf, len), 0);
	assert_true(next_event(f->ctx, &ev));
	assert_int_equal(ev.event_type, HFI1DV_EVENT_MR_INVALIDATED);
	assert_int_equal((uint32_t)ev.element.port_num, mr->lkey);
	ibv_ack_async_event(&ev);
	assert_int_equal(ibv_dereg_mr(mr), 0);
}

/* hfi1dv on a context of another provider's device. */
static void test_other_device(void **state)
{
	static const struct verbs_device_ops other_ops = { .name = "other" };
	struct verbs_device vdev = { .ops = &other_ops };
	struct ibv_context ctx = { .device = &vdev.device };
	struct hfi1dv_mr_cache_stats s = {};
	struct hfi1dv_mr_cache_limits l = {};
	struct hfi1dv_mr_event me = {};
	struct hfi1dv_mr_attr attr = {};
	struct ibv_async_event ev = {
		.event_type = HFI1DV_EVENT_MR_INVALIDATED,
	};
	struct ibv_mr mr = { .context = &ctx };

	(void)state;
	assert_int_equal(hfi1dv_query_mr_cache(&ctx, &s, sizeof(s)),
			 EOPNOTSUPP);
	assert_int_equal(hfi1dv_get_mr_cache_limits(&ctx, &l, sizeof(l)),
			 EOPNOTSUPP);
	assert_int_equal(hfi1dv_set_mr_cache_limits(&ctx, &l, sizeof(l)),
			 EOPNOTSUPP);
	assert_int_equal(hfi1dv_get_mr_event(&ctx, &ev, &me, sizeof(me)),
			 EOPNOTSUPP);
	assert_int_equal(hfi1dv_query_mr(&mr, &attr, sizeof(attr)), EOPNOTSUPP);
}

/*
 * Under libibverbs' fork protection (main() turned it on before anything,
 * as UCX does as it opens the device), a hit makes no madvise(): the
 * entry holds the protection of what it pins from the miss to its
 * TID_FREE, so the MR's own MADV_DONTFORK and MADV_DOFORK are counts in
 * libibverbs, not system calls. They were two per hit, each taking
 * mmap_lock for writing: 2-3x the hit.
 */
static void test_fork_protection(void **state)
{
	struct hfi1dv_mr_cache_limits l = {
		.comp_mask = HFI1DV_MR_CACHE_LIMIT_MAX_BYTES,
		.max_bytes = 1,
	};
	struct fixture *f = *state;
	size_t len = 16 * f->page;
	unsigned int dontfork, dofork;
	struct ibv_mr *mr;
	char *buf = map(len);
	int i;

	assert_int_equal(ibv_is_fork_initialized(), IBV_FORK_ENABLED);
	dontfork = atomic_load(&dontfork_calls);
	dofork = atomic_load(&dofork_calls);
	/* The miss protects the range; the entry keeps it protected. */
	mr = ibv_reg_mr(f->pd, buf, len, RW_ACCESS);
	assert_non_null(mr);
	assert_int_equal(ibv_dereg_mr(mr), 0);
	assert_int_equal(atomic_load(&dontfork_calls) - dontfork, 1);
	assert_int_equal(atomic_load(&dofork_calls) - dofork, 0);

	for (i = 0; i < 100; i++) {
		/* The whole buffer, and a page inside it: hits both. */
		mr = ibv_reg_mr(f->pd, buf + (i % 2) * f->page,
				i % 2 ? f->page : len, RW_ACCESS);
		assert_non_null(mr);
		assert_int_equal(ibv_dereg_mr(mr), 0);
	}
	assert_int_equal(atomic_load(&dontfork_calls) - dontfork, 1);
	assert_int_equal(atomic_load(&dofork_calls) - dofork, 0);

	/* Evicted: the protection goes with the entry. */
	assert_int_equal(hfi1dv_set_mr_cache_limits(f->ctx, &l, sizeof(l)), 0);
	assert_int_equal(atomic_load(&dofork_calls) - dofork, 1);
	munmap(buf, len);
}

/*
 * test_hfi1_mr [threads|fork]: the single-threaded tests, or (each its own
 * ctest case) registration, deregistration and invalidation from many
 * threads, or hits under fork protection.
 */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reg_dereg, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rereg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalidated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_mr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_distinct_memory_tids,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dereg_twice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_query_mr_after_dereg,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
		cmocka_unit_test(test_other_device),
	};
	const struct CMUnitTest thread_tests[] = {
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	const struct CMUnitTest fork_tests[] = {
		cmocka_unit_test_setup_teardown(test_fork_protection, setup,
						teardown),
	};

	/*
	 * The provider linked in registers itself; the build's shared one,
	 * named by RDMAV_DRIVERS, would register a second copy of the driver.
	 */
	unsetenv("RDMAV_DRIVERS");
	if (argc > 1 && !strcmp(argv[1], "threads"))
		return cmocka_run_group_tests(thread_tests, NULL, NULL);
	if (argc > 1 && !strcmp(argv[1], "fork")) {
		/* Before any registration, or libibverbs refuses. */
		if (ibv_fork_init())
			return 1;
		return cmocka_run_group_tests(fork_tests, NULL, NULL);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
