// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_mrbench: what ibv_reg_mr costs on libhfi1, cached and not.
 *
 * Runs on the first hfi1 device libibverbs lists ($HFI1_MRBENCH_DEVICE
 * names another), through the stock libibverbs, as an application would:
 *
 * 1. ibv_reg_mr + ibv_dereg_mr of the same buffer, 4 KiB to 64 MiB:
 *    cached (a context whose cache already holds the buffer: a hit) and
 *    uncached (a second context with its cache off through
 *    hfi1dv_set_mr_cache_limits(): every pair programs and frees TIDs)
 *    and miss (a third context, cache on but allowed to keep 1 byte: every
 *    reg looks up and misses, every dereg evicts).
 *    Baseline, same run: TID_UPDATE (in windows of at most expected_count
 *    pages) + TID_FREE of an equal buffer on a soft HFI context of the
 *    bench's own (softhfi_open()), which is what a miss has to do.
 * 2. The hit cost as the cache grows: reg+dereg of one cached 4 KiB buffer
 *    ("same") and of a random one ("random") with 10, 1k and 2k entries
 *    cached. A context has at most expected_count (2048) TIDs and an entry
 *    holds at least one, so 2k is as large as one context's cache gets.
 * 3. munmap of a registered buffer until ibv_get_async_event() returns
 *    HFI1DV_EVENT_MR_INVALIDATED, with munmap() of an unregistered buffer
 *    of the same size as the baseline.
 * 4. The system-call floor, next to the cached pair's budget (uncached
 *    1 MiB / 300): an empty syscall(SYS_getppid) and the soft HFI's
 *    lookup probe (a zero-length UFFDIO_WRITEPROTECT on a userfaultfd of
 *    the bench's own, the call unmap_in_flight() makes before every
 *    lookup). A hit makes one such probe, so where the floor is above the
 *    budget, the target cannot be met on that machine.
 * 5. A hit beside another library's threads and allocator churn: reg+dereg
 *    of one cached 64 KiB buffer with two threads churning malloc/free
 *    over heap memory that another context registered once, trimming it
 *    at every round ("churn"), against the same hit with the threads
 *    parked ("quiet"); in this process, and in a process set up as one
 *    that runs over UCX, whose ib memory domain every UCX-based MPI opens
 *    (uct_md_open()): UCX turns libibverbs' fork protection on
 *    (ibv_fork_init()) as it opens the device. Fork protection cannot be
 *    undone and must come before any registration, so that process is
 *    forked at the start and waits for commands on a pipe. All four take
 *    turns; the target is the worst churn hit / this process's quiet hit.
 *
 * Methods take turns so that drift hits all alike; results are medians.
 * Nothing here asserts a timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <infiniband/verbs.h>

#include "bench_common.h"
#include "hfi1dv.h"
#include "softhfi.h"
#include "notifier.h"

#define KIB (1024ul)
#define MIB (1024ul * KIB)
#define HIT_BATCH 256 /* hits timed together */
#define TURN_NS (4 * 1000 * 1000ull) /* one method's turn in a round */
#define SYSCALL_BATCH 1000 /* empty system calls timed together */

#define TARGET_CACHED_FRACTION (1.0 / 300) /* cached pair / uncached, 1 MiB */
#define TARGET_MISS_RATIO 1.2 /* miss pair / TID_UPDATE+TID_FREE */
#define TARGET_HIT_RATIO 1.5 /* hit at the most entries / hit at 10 */
#define TARGET_EVENT_US 100.0 /* munmap -> async event, median */
#define TARGET_CHURN_RATIO 1.5 /* hit beside churn / quiet hit */

/* Section 5: the other library's threads and what they churn. */
#define CHURN_SIZE (64 * KIB) /* the buffer of the hit */
#define CHURN_THREADS 2
#define CHURN_BLOCKS 8 /* malloc'd, then freed, per round */
#define CHURN_BLOCK (60 * KIB) /* below the mmap threshold: heap */
#define CHURN_TRIM (128 * KIB) /* M_TRIM_THRESHOLD: each round trims */
#define CHURN_PAUSE_US 100 /* between rounds: threads that also wait */

static const size_t pair_sizes[] = {
	4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB,
	1 * MIB, 4 * MIB,  16 * MIB, 64 * MIB,
};
#define NPAIRS (sizeof(pair_sizes) / sizeof(pair_sizes[0]))
static const unsigned int hit_entries[] = { 10, 1000, 2000 };
#define NHITS (sizeof(hit_entries) / sizeof(hit_entries[0]))
static const size_t event_sizes[] = { 64 * KIB, 1 * MIB };
#define NEVENTS (sizeof(event_sizes) / sizeof(event_sizes[0]))

enum pair_method { PM_CACHED, PM_UNCACHED, PM_MISS, PM_TID, PM_COUNT };
static const char *const pair_names[PM_COUNT] = { "cached", "uncached", "miss",
						  "tid" };

struct samples {
	double *v;
	size_t n, cap;
};

struct pair_result {
	size_t size;
	double median_ns[PM_COUNT];
	size_t n[PM_COUNT];
};

struct hit_result {
	unsigned int entries;
	double same_ns, random_ns;
};

struct event_result {
	size_t size;
	size_t n;
	double median_ns, p99_ns, munmap_ns, plain_munmap_ns;
};

/* Section 5's hits: this process's, and the forked one's (over UCX). */
enum churn_method { CM_QUIET, CM_CHURN, CM_UCX_QUIET, CM_UCX_CHURN, CM_COUNT };
static const char *const churn_names[CM_COUNT] = { "quiet", "churn",
						   "ucx_quiet", "ucx_churn" };

struct churn_result {
	double median_ns[CM_COUNT];
	size_t n[CM_COUNT];
	/* malloc/free rounds a second of all threads, while churning */
	double rounds_per_s, ucx_rounds_per_s;
	int fork_init; /* what ibv_fork_init() returned there */
};

/* The parent's end of the forked process of section 5. */
struct churn_peer {
	pid_t pid;
	int cmd; /* parent -> child */
	int reply; /* child -> parent */
};

struct floor_result {
	double getppid_ns; /* median of syscall(SYS_getppid) */
	double probe_ns; /* median of the lookup probe; < 0: none here */
};

struct bench {
	struct bench_args args;
	struct ibv_device *dev;
	struct ibv_context *cached, *uncached, *missing;
	struct ibv_pd *cached_pd, *uncached_pd, *missing_pd;
	struct hfi1_drv *drv; /* the bench's own soft HFI context */
	size_t window; /* bytes one TID_UPDATE may take */
	uint32_t *tids;
	size_t page;
	struct pair_result pairs[NPAIRS];
	struct hit_result hits[NHITS];
	struct event_result events[NEVENTS];
	struct floor_result floor;
	struct churn_peer peer;
	struct churn_result churn;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "hfi1_mrbench: %s: %s\n", what, strerror(err));
	exit(1);
}

static void add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		double *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			die("realloc", ENOMEM);
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts; nearest-rank percentile. */
static double percentile(struct samples *s, double p)
{
	size_t rank;

	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_double);
	rank = (size_t)(p / 100 * s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	return s->v[rank - 1];
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* bench_alloc_buffer(), or the bench ends. */
static void *buffer(size_t len)
{
	void *p = bench_alloc_buffer(len);

	if (!p)
		die("mmap", errno);
	return p;
}

static struct ibv_device *find_device(void)
{
	const char *want = getenv("HFI1_MRBENCH_DEVICE");
	struct ibv_device **list, *dev = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list)
		die("ibv_get_device_list", errno);
	for (i = 0; i < n && !dev; i++) {
		const char *name = ibv_get_device_name(list[i]);

		if (want ? !strcmp(name, want) : !strncmp(name, "hfi1_", 5))
			dev = list[i];
	}
	if (!dev) {
		fprintf(stderr,
			"hfi1_mrbench: no %s device (bring one up: eval "
			"\"$(sudo build/bin/hfi1-soft up)\")\n",
			want ? want : "hfi1");
		exit(1);
	}
	/* The list stays allocated: dev points into it. */
	return dev;
}

static struct ibv_context *open_ctx(struct bench *b, bool cache_on,
				    unsigned int max_entries,
				    uint64_t max_bytes)
{
	struct hfi1dv_mr_cache_limits lim = {
		.comp_mask = HFI1DV_MR_CACHE_LIMIT_ENABLED |
			     HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES |
			     HFI1DV_MR_CACHE_LIMIT_MAX_BYTES,
		.enabled = cache_on,
		.max_entries = max_entries,
		.max_bytes = max_bytes,
	};
	struct ibv_context *ctx;
	int ret;

	ctx = ibv_open_device(b->dev);
	if (!ctx)
		die("ibv_open_device", errno);
	ret = hfi1dv_set_mr_cache_limits(ctx, &lim, sizeof(lim));
	if (ret)
		die("hfi1dv_set_mr_cache_limits", ret);
	return ctx;
}

static struct ibv_mr *reg(struct ibv_pd *pd, void *p, size_t len)
{
	struct ibv_mr *mr;

	mr = ibv_reg_mr(pd, p, len,
			IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!mr)
		die("ibv_reg_mr", errno);
	return mr;
}

static void dereg(struct ibv_mr *mr)
{
	int ret = ibv_dereg_mr(mr);

	if (ret)
		die("ibv_dereg_mr", ret);
}

/* TID_UPDATE in windows, then one TID_FREE of every entry. */
static void tid_pair(struct bench *b, char *p, size_t len)
{
	size_t off, ntids = 0;
	struct hfi1_tid_info ti;

	for (off = 0; off < len;) {
		size_t w = len - off < b->window ? len - off : b->window;

		memset(&ti, 0, sizeof(ti));
		ti.vaddr = (uintptr_t)(p + off);
		ti.length = w;
		ti.tidlist = (uintptr_t)(b->tids + ntids);
		if (hfi1_drv_ioctl(b->drv, HFI1_IOCTL_TID_UPDATE, &ti))
			die("TID_UPDATE", errno);
		ntids += ti.tidcnt;
		off += ti.length;
	}
	memset(&ti, 0, sizeof(ti));
	ti.tidlist = (uintptr_t)b->tids;
	ti.tidcnt = ntids;
	if (hfi1_drv_ioctl(b->drv, HFI1_IOCTL_TID_FREE, &ti))
		die("TID_FREE", errno);
}

static void bench_pairs(struct bench *b)
{
	unsigned int rounds = b->args.quick ? 2 : 12;
	size_t i;

	for (i = 0; i < NPAIRS; i++) {
		size_t len = pair_sizes[i];
		char *cbuf = buffer(len), *ubuf = buffer(len),
		     *mbuf = buffer(len), *tbuf = buffer(len);
		struct samples s[PM_COUNT] = {};
		struct ibv_mr *warm;
		unsigned int r;
		int m;

		/* The cached context holds the buffer from here on. */
		warm = reg(b->cached_pd, cbuf, len);
		dereg(warm);

		for (r = 0; r < rounds; r++) {
			for (m = 0; m < PM_COUNT; m++) {
				uint64_t end = bench_now_ns() + TURN_NS;

				do {
					uint64_t t0 = bench_now_ns(), t1;
					unsigned int k, batch = 1;

					switch (m) {
					case PM_CACHED:
						batch = HIT_BATCH;
						for (k = 0; k < batch; k++)
							dereg(reg(b->cached_pd,
								  cbuf, len));
						break;
					case PM_UNCACHED:
						dereg(reg(b->uncached_pd, ubuf,
							  len));
						break;
					case PM_MISS:
						dereg(reg(b->missing_pd, mbuf,
							  len));
						break;
					case PM_TID:
						tid_pair(b, tbuf, len);
						break;
					}
					t1 = bench_now_ns();
					add(&s[m], (double)(t1 - t0) / batch);
				} while (bench_now_ns() < end);
			}
		}
		b->pairs[i].size = len;
		for (m = 0; m < PM_COUNT; m++) {
			b->pairs[i].n[m] = s[m].n;
			b->pairs[i].median_ns[m] = percentile(&s[m], 50);
			free(s[m].v);
		}
		munmap(cbuf, len);
		munmap(ubuf, len);
		munmap(mbuf, len);
		munmap(tbuf, len);
	}
}

/* reg+dereg of @pages[choice] in batches; the median ns per pair. */
static double time_hits(struct bench *b, struct ibv_pd *pd, char *base,
			unsigned int n, bool random)
{
	unsigned int rounds = b->args.quick ? 20 : 2000;
	struct samples s = {};
	unsigned int r, k, idx[HIT_BATCH];
	double med;

	for (r = 0; r < rounds; r++) {
		uint64_t t0;

		for (k = 0; k < HIT_BATCH; k++)
			idx[k] = random ? rnd() % n : n / 2;
		t0 = bench_now_ns();
		for (k = 0; k < HIT_BATCH; k++)
			dereg(reg(pd, base + (size_t)idx[k] * b->page,
				  b->page));
		add(&s, (double)(bench_now_ns() - t0) / HIT_BATCH);
	}
	med = percentile(&s, 50);
	free(s.v);
	return med;
}

static void bench_hits(struct bench *b)
{
	unsigned int most = hit_entries[NHITS - 1], cached = 0, i;
	struct hfi1dv_mr_cache_stats st = {};
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char *base;
	int ret;

	/* Its own context: the pair section's entries are not counted. */
	ctx = open_ctx(b, true, most + 16, 0);
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		die("ibv_alloc_pd", errno);
	base = buffer(most * b->page);

	for (i = 0; i < NHITS; i++) {
		/* Page by page: one entry (one TID) each. */
		for (; cached < hit_entries[i]; cached++)
			dereg(reg(pd, base + (size_t)cached * b->page,
				  b->page));
		ret = hfi1dv_query_mr_cache(ctx, &st, sizeof(st));
		if (ret)
			die("hfi1dv_query_mr_cache", ret);
		if (st.entries != cached) {
			fprintf(stderr,
				"hfi1_mrbench: %" PRIu64
				" entries cached, expected %u\n",
				(uint64_t)st.entries, cached);
			exit(1);
		}
		b->hits[i].entries = cached;
		b->hits[i].same_ns = time_hits(b, pd, base, cached, false);
		b->hits[i].random_ns = time_hits(b, pd, base, cached, true);
	}
	munmap(base, most * b->page);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
}

static void bench_events(struct bench *b)
{
	unsigned int iters = b->args.quick ? 5 : 400, k;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	size_t i;

	ctx = open_ctx(b, true, 1024, 0);
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		die("ibv_alloc_pd", errno);

	for (i = 0; i < NEVENTS; i++) {
		size_t len = event_sizes[i];
		struct samples ev = {}, um = {}, plain = {};

		for (k = 0; k < iters; k++) {
			struct ibv_async_event e;
			char *p = buffer(len), *q = buffer(len);
			struct ibv_mr *mr = reg(pd, p, len);
			uint64_t t0, t1, t2;

			t0 = bench_now_ns();
			munmap(p, len);
			t1 = bench_now_ns();
			if (ibv_get_async_event(ctx, &e))
				die("ibv_get_async_event", errno);
			t2 = bench_now_ns();
			if (e.event_type !=
				    (enum ibv_event_type)
					    HFI1DV_EVENT_MR_INVALIDATED ||
			    (uint32_t)e.element.port_num != mr->lkey) {
				fprintf(stderr,
					"hfi1_mrbench: unexpected event %d "
					"(element %d)\n",
					e.event_type, e.element.port_num);
				exit(1);
			}
			ibv_ack_async_event(&e);
			dereg(mr);
			add(&ev, t2 - t0);
			add(&um, t1 - t0);

			/* The baseline: the same munmap, nothing registered. */
			t0 = bench_now_ns();
			munmap(q, len);
			add(&plain, bench_now_ns() - t0);
		}
		b->events[i].size = len;
		b->events[i].n = ev.n;
		b->events[i].median_ns = percentile(&ev, 50);
		b->events[i].p99_ns = percentile(&ev, 99);
		b->events[i].munmap_ns = percentile(&um, 50);
		b->events[i].plain_munmap_ns = percentile(&plain, 50);
		free(ev.v);
		free(um.v);
		free(plain.v);
	}
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
}

/* @uffd < 0: syscall(SYS_getppid); else the probe on it. */
static double time_syscalls(struct bench *b, int uffd)
{
	unsigned int rounds = b->args.quick ? 20 : 400, r, k;
	struct uffdio_writeprotect wp = { 0 };
	struct samples s = {};
	double med;

	for (r = 0; r < rounds; r++) {
		uint64_t t0 = bench_now_ns();

		for (k = 0; k < SYSCALL_BATCH; k++) {
			if (uffd < 0)
				syscall(SYS_getppid);
			else if (!ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
				die("empty UFFDIO_WRITEPROTECT succeeded",
				    EINVAL);
		}
		add(&s, (double)(bench_now_ns() - t0) / SYSCALL_BATCH);
	}
	med = percentile(&s, 50);
	free(s.v);
	return med;
}

static void bench_floor(struct bench *b)
{
	/* One as the soft HFI opens, for the probe; < 0 if none. */
	int uffd = softhfi_notifier_open_uffd(0);

	b->floor.getppid_ns = time_syscalls(b, -1);
	b->floor.probe_ns = uffd >= 0 ? time_syscalls(b, uffd) : -1;
	if (uffd >= 0)
		close(uffd);
}

/* reg+dereg of @buf in batches for one turn; ns per pair into @s. */
static void hit_turn(struct ibv_pd *pd, char *buf, size_t len,
		     struct samples *s)
{
	uint64_t end = bench_now_ns() + TURN_NS;

	do {
		uint64_t t0 = bench_now_ns();
		unsigned int k;

		for (k = 0; k < HIT_BATCH; k++)
			dereg(reg(pd, buf, len));
		add(s, (double)(bench_now_ns() - t0) / HIT_BATCH);
	} while (bench_now_ns() < end);
}

/*
 * Section 5's other library: a context of its own, the hit's context, and
 * two threads that park between the churn turns, so that they take no CPU
 * from the other turns.
 */
struct churn_proc {
	struct ibv_context *lib, *app;
	struct ibv_pd *lib_pd, *app_pd; /* lib: cache off */
	char *buf; /* the hit's */
	pthread_t threads[CHURN_THREADS];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool churning, stop;
	unsigned int ready; /* threads whose first blocks are in blk */
	bool registered; /* the library registered them */
	void *blk[CHURN_THREADS][CHURN_BLOCKS];
	_Atomic uint64_t rounds;
	uint64_t churn_ns, churn_rounds; /* over the churn turns */
	struct samples quiet, churn;
};

struct churn_thread_arg {
	struct churn_proc *cp;
	void **blk;
};

static void *churn_thread(void *arg)
{
	struct churn_thread_arg *a = arg;
	struct churn_proc *cp = a->cp;
	void **blk = a->blk;
	bool first = true, stop;
	unsigned int i;

	do {
		for (i = 0; i < CHURN_BLOCKS; i++) {
			blk[i] = malloc(CHURN_BLOCK);
			if (!blk[i])
				die("malloc", ENOMEM);
			memset(blk[i], 0, 64);
		}
		/*
		 * Once: the library registers them, from another thread, so
		 * that nothing it allocates for that sits above them in this
		 * thread's heap and keeps it from shrinking.
		 */
		if (first) {
			pthread_mutex_lock(&cp->lock);
			cp->ready++;
			pthread_cond_broadcast(&cp->cond);
			while (!cp->registered)
				pthread_cond_wait(&cp->cond, &cp->lock);
			pthread_mutex_unlock(&cp->lock);
			first = false;
		}
		/* The last one freed joins them all to the top: one trim. */
		for (i = 0; i < CHURN_BLOCKS; i++)
			free(blk[i]);
		atomic_fetch_add_explicit(&cp->rounds, 1, memory_order_relaxed);

		pthread_mutex_lock(&cp->lock);
		while (!cp->churning && !cp->stop)
			pthread_cond_wait(&cp->cond, &cp->lock);
		stop = cp->stop;
		pthread_mutex_unlock(&cp->lock);
		if (!stop)
			usleep(CHURN_PAUSE_US);
	} while (!stop);
	return NULL;
}

static void churn_set(struct churn_proc *cp, bool churning, bool stop)
{
	pthread_mutex_lock(&cp->lock);
	cp->churning = churning;
	cp->stop = stop;
	pthread_cond_broadcast(&cp->cond);
	pthread_mutex_unlock(&cp->lock);
}

/*
 * The library's context and threads, the hit's context and its buffer,
 * cached. With @fork_init, libibverbs' fork protection goes on in between,
 * as uct_ib_md_open() turns it on once it has opened the device; what
 * ibv_fork_init() returned goes to *@fork_init.
 */
static void churn_open(struct bench *b, struct churn_proc *cp, int *fork_init)
{
	struct churn_thread_arg *args;
	unsigned int i, k;

	memset(cp, 0, sizeof(*cp));
	pthread_mutex_init(&cp->lock, NULL);
	pthread_cond_init(&cp->cond, NULL);
	/* A fixed threshold: glibc's own moves up and stops trimming. */
	mallopt(M_TRIM_THRESHOLD, CHURN_TRIM);
	cp->lib = open_ctx(b, false, 1024, 0);
	if (fork_init)
		*fork_init = ibv_fork_init();
	cp->app = open_ctx(b, true, 1024, 0);
	cp->lib_pd = ibv_alloc_pd(cp->lib);
	cp->app_pd = ibv_alloc_pd(cp->app);
	if (!cp->lib_pd || !cp->app_pd)
		die("ibv_alloc_pd", errno);
	cp->buf = buffer(CHURN_SIZE);
	dereg(reg(cp->app_pd, cp->buf, CHURN_SIZE));

	args = calloc(CHURN_THREADS, sizeof(*args));
	if (!args)
		die("calloc", ENOMEM);
	for (i = 0; i < CHURN_THREADS; i++) {
		args[i].cp = cp;
		args[i].blk = cp->blk[i];
		if (pthread_create(&cp->threads[i], NULL, churn_thread,
				   &args[i]))
			die("pthread_create", EAGAIN);
	}
	pthread_mutex_lock(&cp->lock);
	while (cp->ready < CHURN_THREADS)
		pthread_cond_wait(&cp->cond, &cp->lock);
	/* Each took what it needs of its arg before it was ready. */
	free(args);
	for (i = 0; i < CHURN_THREADS; i++)
		for (k = 0; k < CHURN_BLOCKS; k++)
			dereg(reg(cp->lib_pd, cp->blk[i][k], CHURN_BLOCK));
	cp->registered = true;
	pthread_cond_broadcast(&cp->cond);
	pthread_mutex_unlock(&cp->lock);
}

/* A quiet turn, threads parked, or a churn turn. */
static void churn_turn(struct churn_proc *cp, bool churning)
{
	uint64_t t0, r0;

	if (!churning) {
		hit_turn(cp->app_pd, cp->buf, CHURN_SIZE, &cp->quiet);
		return;
	}
	t0 = bench_now_ns();
	r0 = atomic_load(&cp->rounds);
	churn_set(cp, true, false);
	hit_turn(cp->app_pd, cp->buf, CHURN_SIZE, &cp->churn);
	churn_set(cp, false, false);
	cp->churn_rounds += atomic_load(&cp->rounds) - r0;
	cp->churn_ns += bench_now_ns() - t0;
}

/* Stop the threads; the medians into @res at @quiet and @quiet + 1. */
static void churn_close(struct churn_proc *cp, struct churn_result *res,
			enum churn_method quiet, double *rounds_per_s)
{
	unsigned int i;

	churn_set(cp, false, true);
	for (i = 0; i < CHURN_THREADS; i++)
		pthread_join(cp->threads[i], NULL);
	res->n[quiet] = cp->quiet.n;
	res->median_ns[quiet] = percentile(&cp->quiet, 50);
	res->n[quiet + 1] = cp->churn.n;
	res->median_ns[quiet + 1] = percentile(&cp->churn, 50);
	*rounds_per_s =
		cp->churn_ns ? cp->churn_rounds * 1e9 / cp->churn_ns : 0;
	free(cp->quiet.v);
	free(cp->churn.v);
	munmap(cp->buf, CHURN_SIZE);
	ibv_dealloc_pd(cp->app_pd);
	ibv_dealloc_pd(cp->lib_pd);
	ibv_close_device(cp->app);
	ibv_close_device(cp->lib);
}

/*
 * The forked process, as one over UCX: waits for the parent's commands on
 * @cmd, answers each on @reply. 's' sets up, 'q' and 'c' run a quiet and
 * a churn turn, 'x' writes the results and exits. Nothing runs before
 * 's': the parent measures sections 1-4 meanwhile.
 */
static void __attribute__((noreturn))
churn_child(struct bench *b, int cmd, int reply)
{
	struct churn_result res = {};
	struct churn_proc cp;
	char c;

	while (read(cmd, &c, 1) == 1) {
		switch (c) {
		case 's':
			b->dev = find_device();
			churn_open(b, &cp, &res.fork_init);
			break;
		case 'q':
		case 'c':
			churn_turn(&cp, c == 'c');
			break;
		case 'x':
			churn_close(&cp, &res, CM_UCX_QUIET,
				    &res.ucx_rounds_per_s);
			if (write(reply, &res, sizeof(res)) != sizeof(res))
				_exit(1);
			_exit(0);
		default:
			_exit(1);
		}
		if (write(reply, &c, 1) != 1)
			_exit(1);
	}
	/* The parent is gone. */
	_exit(1);
}

/*
 * Fork section 5's process now, before this one opens or registers
 * anything: fork protection must be turned on before any registration,
 * and then stays on for good.
 */
static void churn_fork(struct bench *b)
{
	int cmd[2], reply[2];
	pid_t pid;

	if (pipe2(cmd, O_CLOEXEC) || pipe2(reply, O_CLOEXEC))
		die("pipe2", errno);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (!pid) {
		close(cmd[1]);
		close(reply[0]);
		churn_child(b, cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	b->peer.pid = pid;
	b->peer.cmd = cmd[1];
	b->peer.reply = reply[0];
}

static void churn_cmd(struct bench *b, char c)
{
	char r;

	if (write(b->peer.cmd, &c, 1) != 1 || read(b->peer.reply, &r, 1) != 1 ||
	    r != c)
		die("section 5's process", EPIPE);
}

/* Section 5's results from its process, which then exits. */
static void churn_finish(struct bench *b, struct churn_result *res)
{
	char c = 'x', *p = (char *)res;
	size_t got = 0;
	int status;

	if (write(b->peer.cmd, &c, 1) != 1)
		die("section 5's process", EPIPE);
	while (got < sizeof(*res)) {
		ssize_t n = read(b->peer.reply, p + got, sizeof(*res) - got);

		if (n <= 0)
			die("section 5's process", EPIPE);
		got += n;
	}
	if (waitpid(b->peer.pid, &status, 0) < 0)
		die("waitpid", errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("section 5's process", ECHILD);
	close(b->peer.cmd);
	close(b->peer.reply);
}

static void bench_churn(struct bench *b)
{
	unsigned int rounds = b->args.quick ? 2 : 25, r;
	struct churn_result mine = {};
	struct churn_proc cp;

	churn_open(b, &cp, NULL);
	churn_cmd(b, 's');
	for (r = 0; r < rounds; r++) {
		churn_turn(&cp, false);
		churn_turn(&cp, true);
		churn_cmd(b, 'q');
		churn_cmd(b, 'c');
	}
	churn_close(&cp, &mine, CM_QUIET, &mine.rounds_per_s);
	churn_finish(b, &b->churn);
	b->churn.rounds_per_s = mine.rounds_per_s;
	b->churn.n[CM_QUIET] = mine.n[CM_QUIET];
	b->churn.median_ns[CM_QUIET] = mine.median_ns[CM_QUIET];
	b->churn.n[CM_CHURN] = mine.n[CM_CHURN];
	b->churn.median_ns[CM_CHURN] = mine.median_ns[CM_CHURN];
}

static void open_tid_baseline(struct bench *b)
{
	struct softhfi_params params;

	softhfi_default_params(&params);
	b->drv = softhfi_open(&params);
	if (!b->drv)
		die("softhfi_open", errno);
	b->window = (size_t)b->drv->ctxt_info.rcvtids * b->page;
	b->tids = calloc(b->drv->ctxt_info.rcvtids, sizeof(*b->tids));
	if (!b->tids)
		die("calloc", ENOMEM);
}

static const struct pair_result *pair_at(const struct bench *b, size_t size)
{
	size_t i;

	for (i = 0; i < NPAIRS; i++)
		if (b->pairs[i].size == size)
			return &b->pairs[i];
	return NULL;
}

struct targets {
	double cached_fraction; /* cached / uncached at 1 MiB */
	double cached_budget_ns; /* uncached at 1 MiB * the target fraction */
	double miss_ratio; /* worst uncached / tid over the sizes */
	size_t miss_worst_size;
	double hit_ratio; /* same-buffer hit at the most entries / at 10 */
	double event_us; /* worst median over the sizes */
	double churn_ratio; /* worst hit beside churn / quiet hit here */
};

static void targets(const struct bench *b, struct targets *t)
{
	const struct pair_result *mib = pair_at(b, MIB);
	size_t i;

	memset(t, 0, sizeof(*t));
	t->cached_fraction =
		mib->median_ns[PM_CACHED] / mib->median_ns[PM_UNCACHED];
	t->cached_budget_ns =
		mib->median_ns[PM_UNCACHED] * TARGET_CACHED_FRACTION;
	for (i = 0; i < NPAIRS; i++) {
		const struct pair_result *r = &b->pairs[i];
		double x = r->median_ns[PM_MISS] / r->median_ns[PM_TID];

		if (x > t->miss_ratio) {
			t->miss_ratio = x;
			t->miss_worst_size = r->size;
		}
	}
	t->hit_ratio = b->hits[NHITS - 1].same_ns / b->hits[0].same_ns;
	for (i = 0; i < NEVENTS; i++)
		if (b->events[i].median_ns / 1000 > t->event_us)
			t->event_us = b->events[i].median_ns / 1000;
	t->churn_ratio = (b->churn.median_ns[CM_CHURN] >
					  b->churn.median_ns[CM_UCX_CHURN] ?
				  b->churn.median_ns[CM_CHURN] :
				  b->churn.median_ns[CM_UCX_CHURN]) /
			 b->churn.median_ns[CM_QUIET];
}

static void size_str(char *out, size_t len, size_t bytes)
{
	if (bytes >= MIB && !(bytes % MIB))
		snprintf(out, len, "%zu MiB", bytes / MIB);
	else
		snprintf(out, len, "%zu KiB", bytes / KIB);
}

static const char *yes(bool met)
{
	return met ? "met" : "NOT met";
}

static void print_text(const struct bench *b, const struct targets *t)
{
	char sz[32], where[128];
	struct bench_cpus cpus;
	size_t i;

	printf("hfi1_mrbench: %s, 4 KiB pages, buffers 2 MiB aligned and "
	       "prefaulted%s\n",
	       ibv_get_device_name(b->dev),
	       b->args.quick ? " (--quick: numbers mean little)" : "");
	bench_get_cpus(&cpus);
	printf("%s\n",
	       bench_cpus_str(&cpus, b->args.cpu, where, sizeof(where)));
	printf("\n1. ibv_reg_mr + ibv_dereg_mr of the same buffer, median ns "
	       "per pair\n");
	printf("   cached   = a hit (the entry stays cached after dereg)\n");
	printf("   uncached = cache off: TID_UPDATE + TID_FREE every time\n");
	printf("   miss     = cache on, keeps nothing: a lookup that misses, "
	       "TID_UPDATE, and TID_FREE at dereg\n");
	printf("   tid      = TID_UPDATE (windows) + TID_FREE on the driver "
	       "interface, no verbs\n");
	printf("%8s %10s %12s %12s %12s %14s %10s\n", "size", "cached",
	       "uncached", "miss", "tid", "cached/uncached", "miss/tid");
	for (i = 0; i < NPAIRS; i++) {
		const struct pair_result *r = &b->pairs[i];

		size_str(sz, sizeof(sz), r->size);
		printf("%8s %10.1f %12.1f %12.1f %12.1f %14.5f %9.3fx\n", sz,
		       r->median_ns[PM_CACHED], r->median_ns[PM_UNCACHED],
		       r->median_ns[PM_MISS], r->median_ns[PM_TID],
		       r->median_ns[PM_CACHED] / r->median_ns[PM_UNCACHED],
		       r->median_ns[PM_MISS] / r->median_ns[PM_TID]);
	}
	printf("\n2. A hit as the cache grows (4 KiB buffers, one entry "
	       "each), median ns per reg+dereg\n");
	printf("%8s %10s %10s\n", "entries", "same", "random");
	for (i = 0; i < NHITS; i++)
		printf("%8u %10.1f %10.1f\n", b->hits[i].entries,
		       b->hits[i].same_ns, b->hits[i].random_ns);
	printf("   (2k is the most one context caches: expected_count is at "
	       "most 2048 TIDs,\n    an entry holds at least one)\n");
	printf("\n3. munmap of a registered buffer -> ibv_get_async_event() "
	       "returns, us\n");
	printf("%8s %8s %8s %8s %10s %14s\n", "size", "samples", "median",
	       "p99", "munmap()", "plain munmap()");
	for (i = 0; i < NEVENTS; i++) {
		const struct event_result *r = &b->events[i];

		size_str(sz, sizeof(sz), r->size);
		printf("%8s %8zu %8.1f %8.1f %10.1f %14.1f\n", sz, r->n,
		       r->median_ns / 1000, r->p99_ns / 1000,
		       r->munmap_ns / 1000, r->plain_munmap_ns / 1000);
	}
	printf("\n4. The system-call floor, median ns per call\n");
	printf("   empty syscall(SYS_getppid)               %8.1f\n",
	       b->floor.getppid_ns);
	if (b->floor.probe_ns >= 0)
		printf("   lookup probe (empty UFFDIO_WRITEPROTECT) %8.1f\n",
		       b->floor.probe_ns);
	else
		printf("   lookup probe (empty UFFDIO_WRITEPROTECT)      n/a "
		       "(no userfaultfd here)\n");
	printf("\n5. A hit beside another library's threads and allocator "
	       "churn, %zu KiB, median ns per pair\n",
	       CHURN_SIZE / KIB);
	printf("   quiet    = %d threads parked\n", CHURN_THREADS);
	printf("   churn    = the threads churning malloc/free over heap memory "
	       "that another\n"
	       "              context registered once, trimming it every "
	       "round\n");
	printf("   over UCX = a process with libibverbs' fork protection on, as "
	       "UCX turns it on\n"
	       "              when it opens the device (ibv_fork_init() "
	       "returned %d)\n",
	       b->churn.fork_init);
	printf("   %-12s %10s %10s %10s %12s %12s\n", "", "quiet", "churn",
	       "rounds/s", "quiet/quiet", "churn/quiet");
	printf("   %-12s %10.1f %10.1f %10.0f %11.2fx %11.2fx\n",
	       "this process", b->churn.median_ns[CM_QUIET],
	       b->churn.median_ns[CM_CHURN], b->churn.rounds_per_s, 1.0,
	       b->churn.median_ns[CM_CHURN] / b->churn.median_ns[CM_QUIET]);
	printf("   %-12s %10.1f %10.1f %10.0f %11.2fx %11.2fx\n", "over UCX",
	       b->churn.median_ns[CM_UCX_QUIET],
	       b->churn.median_ns[CM_UCX_CHURN], b->churn.ucx_rounds_per_s,
	       b->churn.median_ns[CM_UCX_QUIET] / b->churn.median_ns[CM_QUIET],
	       b->churn.median_ns[CM_UCX_CHURN] / b->churn.median_ns[CM_QUIET]);
	printf("   (ratios against this process's quiet hit)\n");
	printf("\nTargets (reported, not asserted):\n");
	printf("  cached pair / uncached pair, 1 MiB: 1/%.0f (target <= "
	       "1/300): %s\n",
	       1 / t->cached_fraction,
	       yes(t->cached_fraction <= TARGET_CACHED_FRACTION));
	printf("    cached pair %.1f ns, budget %.1f ns (uncached 1 MiB / "
	       "300)\n",
	       pair_at(b, MIB)->median_ns[PM_CACHED], t->cached_budget_ns);
	if (b->floor.probe_ns >= 0)
		printf("    a hit makes one lookup probe: %.1f ns here (an "
		       "empty getppid(): %.1f ns)\n",
		       b->floor.probe_ns, b->floor.getppid_ns);
	printf("  miss / TID_UPDATE+TID_FREE, worst size (%zu KiB): %.3fx "
	       "(target <= %.1fx): %s\n",
	       t->miss_worst_size / KIB, t->miss_ratio, TARGET_MISS_RATIO,
	       yes(t->miss_ratio <= TARGET_MISS_RATIO));
	printf("  hit at %u entries / hit at %u: %.2fx (target <= %.1fx): "
	       "%s\n",
	       b->hits[NHITS - 1].entries, b->hits[0].entries, t->hit_ratio,
	       TARGET_HIT_RATIO, yes(t->hit_ratio <= TARGET_HIT_RATIO));
	printf("  munmap -> async event median, worst size: %.1f us (target "
	       "<= %.0f us): %s\n",
	       t->event_us, TARGET_EVENT_US,
	       yes(t->event_us <= TARGET_EVENT_US));
	printf("  hit beside churn / quiet hit here, worst: %.2fx (target <= "
	       "%.1fx): %s\n",
	       t->churn_ratio, TARGET_CHURN_RATIO,
	       yes(t->churn_ratio <= TARGET_CHURN_RATIO));
}

static void print_json(const struct bench *b, const struct targets *t)
{
	struct bench_cpus cpus;
	size_t i;
	int m;

	printf("{\"tool\":\"hfi1_mrbench\",\"quick\":%s,\"device\":\"%s\",",
	       b->args.quick ? "true" : "false", ibv_get_device_name(b->dev));
	bench_get_cpus(&cpus);
	bench_print_cpus_json(&cpus, b->args.cpu);
	printf(",");
	printf("\"pairs\":{\"unit\":\"ns\",\"statistic\":\"median\","
	       "\"results\":[");
	for (i = 0; i < NPAIRS; i++) {
		const struct pair_result *r = &b->pairs[i];

		printf("%s{\"size\":%zu", i ? "," : "", r->size);
		for (m = 0; m < PM_COUNT; m++)
			printf(",\"%s\":%.1f,\"%s_samples\":%zu", pair_names[m],
			       r->median_ns[m], pair_names[m], r->n[m]);
		printf("}");
	}
	printf("]},\"hits\":{\"unit\":\"ns\",\"statistic\":\"median\","
	       "\"results\":[");
	for (i = 0; i < NHITS; i++)
		printf("%s{\"entries\":%u,\"same\":%.1f,\"random\":%.1f}",
		       i ? "," : "", b->hits[i].entries, b->hits[i].same_ns,
		       b->hits[i].random_ns);
	printf("]},\"munmap_event\":{\"unit\":\"ns\",\"results\":[");
	for (i = 0; i < NEVENTS; i++) {
		const struct event_result *r = &b->events[i];

		printf("%s{\"size\":%zu,\"samples\":%zu,\"median\":%.0f,"
		       "\"p99\":%.0f,\"munmap_median\":%.0f,"
		       "\"plain_munmap_median\":%.0f}",
		       i ? "," : "", r->size, r->n, r->median_ns, r->p99_ns,
		       r->munmap_ns, r->plain_munmap_ns);
	}
	printf("]},\"syscall_floor\":{\"unit\":\"ns\",\"statistic\":"
	       "\"median\",\"getppid\":%.1f,\"lookup_probe\":",
	       b->floor.getppid_ns);
	if (b->floor.probe_ns >= 0)
		printf("%.1f}", b->floor.probe_ns);
	else
		printf("null}");
	printf(",\"churn_hit\":{\"unit\":\"ns\",\"statistic\":\"median\","
	       "\"size\":%zu,\"threads\":%d,\"fork_init\":%d,"
	       "\"rounds_per_s\":%.0f,\"ucx_rounds_per_s\":%.0f",
	       CHURN_SIZE, CHURN_THREADS, b->churn.fork_init,
	       b->churn.rounds_per_s, b->churn.ucx_rounds_per_s);
	for (m = 0; m < CM_COUNT; m++)
		printf(",\"%s\":%.1f,\"%s_samples\":%zu", churn_names[m],
		       b->churn.median_ns[m], churn_names[m], b->churn.n[m]);
	printf("}");
	printf(",\"targets\":{");
	printf("\"cached_over_uncached_1MiB\":{\"value\":%.6f,\"max\":%.6f,"
	       "\"met\":%s,\"cached_ns\":%.1f,\"budget_ns\":%.1f},",
	       t->cached_fraction, TARGET_CACHED_FRACTION,
	       t->cached_fraction <= TARGET_CACHED_FRACTION ? "true" : "false",
	       pair_at(b, MIB)->median_ns[PM_CACHED], t->cached_budget_ns);
	printf("\"miss_over_tid_worst\":{\"value\":%.4f,\"size\":%zu,"
	       "\"max\":%.1f,\"met\":%s},",
	       t->miss_ratio, t->miss_worst_size, TARGET_MISS_RATIO,
	       t->miss_ratio <= TARGET_MISS_RATIO ? "true" : "false");
	printf("\"hit_most_over_10\":{\"value\":%.4f,\"entries\":%u,"
	       "\"max\":%.1f,\"met\":%s},",
	       t->hit_ratio, b->hits[NHITS - 1].entries, TARGET_HIT_RATIO,
	       t->hit_ratio <= TARGET_HIT_RATIO ? "true" : "false");
	printf("\"munmap_event_median_us\":{\"value\":%.1f,\"max\":%.0f,"
	       "\"met\":%s},",
	       t->event_us, TARGET_EVENT_US,
	       t->event_us <= TARGET_EVENT_US ? "true" : "false");
	printf("\"churn_over_quiet\":{\"value\":%.4f,\"max\":%.1f,"
	       "\"met\":%s}}}\n",
	       t->churn_ratio, TARGET_CHURN_RATIO,
	       t->churn_ratio <= TARGET_CHURN_RATIO ? "true" : "false");
}

int main(int argc, char **argv)
{
	struct bench b = {};
	struct targets t;

	bench_parse_args(argc, argv,
			 "ibv_reg_mr + ibv_dereg_mr on libhfi1, cached and "
			 "uncached, against TID_UPDATE + TID_FREE;\nthe hit "
			 "cost as the cache grows; munmap to the async "
			 "event; a hit beside\nanother library's threads and "
			 "allocator churn.\nRuns on the first hfi1 device, or "
			 "$HFI1_MRBENCH_DEVICE.\n",
			 &b.args);
	b.page = sysconf(_SC_PAGESIZE);
	churn_fork(&b);
	b.dev = find_device();
	b.cached = open_ctx(&b, true, 1024, 0);
	b.uncached = open_ctx(&b, false, 1024, 0);
	/* Over its byte limit after every dereg: nothing stays cached. */
	b.missing = open_ctx(&b, true, 1024, 1);
	b.cached_pd = ibv_alloc_pd(b.cached);
	b.uncached_pd = ibv_alloc_pd(b.uncached);
	b.missing_pd = ibv_alloc_pd(b.missing);
	if (!b.cached_pd || !b.uncached_pd || !b.missing_pd)
		die("ibv_alloc_pd", errno);
	open_tid_baseline(&b);

	bench_pairs(&b);
	bench_hits(&b);
	bench_events(&b);
	bench_floor(&b);
	bench_churn(&b);
	targets(&b, &t);

	if (b.args.json)
		print_json(&b, &t);
	else
		print_text(&b, &t);

	hfi1_drv_close(b.drv);
	free(b.tids);
	ibv_dealloc_pd(b.cached_pd);
	ibv_dealloc_pd(b.uncached_pd);
	ibv_dealloc_pd(b.missing_pd);
	ibv_close_device(b.cached);
	ibv_close_device(b.uncached);
	ibv_close_device(b.missing);
	return 0;
}
