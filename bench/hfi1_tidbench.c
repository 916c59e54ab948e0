// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_tidbench: what the soft HFI's expected-receive interface costs.
 *
 * 1. TID_UPDATE + TID_FREE of a buffer through hfi1_drv_ioctl() on a
 *    softhfi_open() context, against two baselines measured in the same
 *    run on the same buffer: a raw io_uring buffer register + unregister
 *    (a sparse table, one slot set and cleared with
 *    io_uring_register_buffers_update_tag(): the cheapest raw pin + unpin),
 *    and mlock + munlock. A TID_UPDATE takes at most expected_count pages,
 *    so larger buffers go in windows of at most 8 MiB, as PSM2 does, and
 *    the io_uring baseline registers the same windows, one slot each.
 * 2. munmap-to-event latency: from just before munmap() of a programmed
 *    buffer until HFI1_EVENT_TID_MMU_NOTIFY shows in the event word, and
 *    munmap()'s own duration; also until TID_INVAL_READ, called as soon as
 *    the bit shows, has returned the invalidated entries.
 *
 * Methods are interleaved in short turns so that drift hits all alike;
 * results are medians. Nothing here asserts a timing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "bench_common.h"
#include "softhfi.h"

#define KIB (1024ul)
#define MIB (1024ul * KIB)
#define MAX_PIECES 64 /* slots of the raw io_uring baseline */
#define MAX_SAMPLES 1000000
#define TURN_NS (5 * 1000 * 1000ull) /* one method's turn in a round */

static const size_t pair_sizes[] = {
	4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB,
	1 * MIB, 4 * MIB,  16 * MIB, 64 * MIB,
};
static const size_t event_sizes[] = { 64 * KIB, 1 * MIB };

/* Acceptance targets; reported, never asserted. */
#define TARGET_RATIO_SIZE (1 * MIB)
#define TARGET_RATIO 1.3
#define TARGET_EVENT_NS 100000.0

struct bench_opts {
	struct bench_args args;
	uint64_t budget_ns; /* per size and method */
	unsigned int min_iters;
	unsigned int event_samples;
};

enum method { M_OURS, M_RAW, M_MLOCK, M_COUNT };

static const char *const method_names[M_COUNT] = { "tid", "io_uring", "mlock" };

struct samples {
	uint64_t *ns;
	size_t n, cap;
	uint64_t total_ns;
};

struct pair_result {
	size_t size;
	unsigned int windows; /* TID_UPDATE calls = io_uring slots */
	size_t window_bytes; /* the largest window */
	unsigned int tids; /* RcvArray entries programmed */
	size_t iters[M_COUNT];
	double median_ns[M_COUNT];
};

struct event_result {
	size_t size;
	unsigned int samples;
	unsigned int tids; /* entries per buffer, median */
	double lat_median_ns, lat_p99_ns, lat_max_ns;
	double unmap_median_ns, unmap_p99_ns;
	double list_median_ns, list_p99_ns; /* until TID_INVAL_READ returned */
};

struct bench {
	struct bench_opts opts;
	struct hfi1_drv *drv;
	struct io_uring ring;
	size_t page_size;
	size_t window; /* bytes one TID_UPDATE may take */
	uint32_t *tids; /* expected_count words */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "hfi1_tidbench: %s: %s\n", what, strerror(err));
	exit(1);
}

static int samples_add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *ns_new = realloc(s->ns, cap * sizeof(*ns_new));

		if (!ns_new)
			return ENOMEM;
		s->ns = ns_new;
		s->cap = cap;
	}
	s->ns[s->n++] = ns;
	s->total_ns += ns;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts @v. Nearest-rank percentile, @p in [0, 100]. */
static double percentile(uint64_t *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	if (p == 50 && !(n & 1))
		return (v[n / 2 - 1] + v[n / 2]) / 2.0;
	rank = (size_t)(p / 100 * n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/*
 * TID_UPDATE @size bytes at @buf in windows of at most b->window, taking
 * partial success, into b->tids. Returns the entries programmed (and the
 * calls made in *@calls), or -errno.
 */
static int tid_program(struct bench *b, char *buf, size_t size,
		       unsigned int *calls)
{
	unsigned int ntids = 0, ncalls = 0;
	size_t off = 0;

	while (off < size) {
		size_t len = size - off;
		struct hfi1_tid_info ti = {
			.vaddr = (uintptr_t)(buf + off),
			.tidlist = (uintptr_t)(b->tids + ntids),
		};

		if (len > b->window)
			len = b->window;
		ti.length = len;
		if (hfi1_drv_ioctl(b->drv, HFI1_IOCTL_TID_UPDATE, &ti))
			return -errno;
		ncalls++;
		if (!ti.length || !ti.tidcnt)
			return -EIO;
		ntids += ti.tidcnt;
		off += ti.length;
	}
	if (calls)
		*calls = ncalls;
	return ntids;
}

static int tid_free(struct bench *b, unsigned int ntids)
{
	struct hfi1_tid_info ti = {
		.tidlist = (uintptr_t)b->tids,
		.tidcnt = ntids,
	};

	if (hfi1_drv_ioctl(b->drv, HFI1_IOCTL_TID_FREE, &ti))
		return errno;
	return ti.tidcnt == ntids ? 0 : EIO;
}

/* The io_uring baseline: one slot per window, set one by one, cleared at once. */
static int raw_pair(struct bench *b, char *buf, size_t size)
{
	static const struct iovec empty[MAX_PIECES];
	struct iovec iov;
	unsigned int n = 0;
	size_t off;
	int ret;

	for (off = 0; off < size; off += b->window, n++) {
		iov.iov_base = buf + off;
		iov.iov_len = size - off < b->window ? size - off : b->window;
		ret = io_uring_register_buffers_update_tag(&b->ring, n, &iov,
							   NULL, 1);
		if (ret != 1)
			return ret < 0 ? -ret : EIO;
	}
	ret = io_uring_register_buffers_update_tag(&b->ring, 0, empty, NULL, n);
	if (ret != (int)n)
		return ret < 0 ? -ret : EIO;
	return 0;
}

static int run_once(struct bench *b, enum method m, char *buf, size_t size)
{
	int ret;

	switch (m) {
	case M_OURS:
		ret = tid_program(b, buf, size, NULL);
		if (ret < 0)
			return -ret;
		return tid_free(b, ret);
	case M_RAW:
		return raw_pair(b, buf, size);
	case M_MLOCK:
		if (mlock(buf, size))
			return errno;
		if (munlock(buf, size))
			return errno;
		return 0;
	default:
		return EINVAL;
	}
}

static void bench_pairs(struct bench *b, size_t size, struct pair_result *res)
{
	struct samples s[M_COUNT] = { 0 };
	unsigned int round = 0, i;
	char *buf;
	int ret;

	memset(res, 0, sizeof(*res));
	res->size = size;
	buf = bench_alloc_buffer(size);
	if (!buf)
		die("mmap", errno);

	ret = tid_program(b, buf, size, &res->windows);
	if (ret < 0)
		die("TID_UPDATE", -ret);
	res->tids = ret;
	res->window_bytes = size < b->window ? size : b->window;
	ret = tid_free(b, res->tids);
	if (ret)
		die("TID_FREE", ret);

	/* Warm up every method. */
	for (i = 0; i < M_COUNT * 3; i++) {
		ret = run_once(b, i % M_COUNT, buf, size);
		if (ret)
			die(method_names[i % M_COUNT], ret);
	}

	for (;;) {
		bool done = true;

		for (i = 0; i < M_COUNT; i++) {
			enum method m = (round + i) % M_COUNT;
			uint64_t turn_start = bench_now_ns(), t0, t1;

			if (s[m].total_ns >= b->opts.budget_ns &&
			    s[m].n >= b->opts.min_iters)
				continue;
			done = false;
			do {
				t0 = bench_now_ns();
				ret = run_once(b, m, buf, size);
				t1 = bench_now_ns();
				if (ret)
					die(method_names[m], ret);
				if (samples_add(&s[m], t1 - t0))
					die("samples", ENOMEM);
			} while (t1 - turn_start < TURN_NS &&
				 s[m].n < MAX_SAMPLES);
			if (s[m].n >= MAX_SAMPLES)
				s[m].total_ns = UINT64_MAX / 2;
		}
		if (done)
			break;
		round++;
	}

	for (i = 0; i < M_COUNT; i++) {
		res->iters[i] = s[i].n;
		res->median_ns[i] = percentile(s[i].ns, s[i].n, 50);
		free(s[i].ns);
	}
	munmap(buf, size);
}

static void bench_event(struct bench *b, size_t size, struct event_result *res)
{
	uint64_t *lat, *unmap, *list, *tids;
	unsigned int i, n = b->opts.event_samples;
	int ntids, ret;

	memset(res, 0, sizeof(*res));
	res->size = size;
	res->samples = n;
	lat = calloc(n, sizeof(*lat));
	unmap = calloc(n, sizeof(*unmap));
	list = calloc(n, sizeof(*list));
	tids = calloc(n, sizeof(*tids));
	if (!lat || !unmap || !list || !tids)
		die("calloc", ENOMEM);

	for (i = 0; i < n; i++) {
		struct hfi1_tid_info ti = { .tidlist = (uintptr_t)b->tids };
		uint64_t t0, t1, t2, t3;
		char *buf;

		buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED)
			die("mmap", errno);
		madvise(buf, size, MADV_NOHUGEPAGE);
		memset(buf, 0x5a, size);
		ntids = tid_program(b, buf, size, NULL);
		if (ntids < 0)
			die("TID_UPDATE", -ntids);

		t0 = bench_now_ns();
		munmap(buf, size);
		t1 = bench_now_ns();
		while (!(atomic_load((_Atomic __u64 *)b->drv->events) &
			 HFI1_EVENT_TID_MMU_NOTIFY)) {
			if (bench_now_ns() - t1 > 5000000000ull)
				die("no TID_MMU_NOTIFY event after munmap",
				    ETIMEDOUT);
		}
		t2 = bench_now_ns();
		if (hfi1_drv_ioctl(b->drv, HFI1_IOCTL_TID_INVAL_READ, &ti))
			die("TID_INVAL_READ", errno);
		t3 = bench_now_ns();
		lat[i] = t2 - t0;
		unmap[i] = t1 - t0;
		list[i] = t3 - t0;
		tids[i] = ntids;

		if (ti.tidcnt != (unsigned int)ntids)
			die("TID_INVAL_READ count", EIO);
		ret = tid_free(b, ti.tidcnt);
		if (ret)
			die("TID_FREE", ret);
	}

	res->lat_max_ns = percentile(lat, n, 100);
	res->lat_p99_ns = percentile(lat, n, 99);
	res->lat_median_ns = percentile(lat, n, 50);
	res->unmap_p99_ns = percentile(unmap, n, 99);
	res->unmap_median_ns = percentile(unmap, n, 50);
	res->list_p99_ns = percentile(list, n, 99);
	res->list_median_ns = percentile(list, n, 50);
	res->tids = percentile(tids, n, 50);
	free(lat);
	free(unmap);
	free(list);
	free(tids);
}

static void size_str(char *out, size_t len, size_t bytes)
{
	if (bytes >= MIB && !(bytes % MIB))
		snprintf(out, len, "%zu MiB", bytes / MIB);
	else
		snprintf(out, len, "%zu KiB", bytes / KIB);
}

/* How the buffer went: "8 x 8 MiB" or "1 x 1 MiB". */
static void split_str(char *out, size_t len, const struct pair_result *r)
{
	char w[32];

	size_str(w, sizeof(w), r->window_bytes);
	snprintf(out, len, "%u x %s", r->windows, w);
}

static double ratio(const struct pair_result *r, enum method base)
{
	return r->median_ns[base] ? r->median_ns[M_OURS] / r->median_ns[base] :
				    0;
}

static const struct pair_result *target_pair(const struct pair_result *pr,
					     size_t npr)
{
	size_t i;

	for (i = 0; i < npr; i++)
		if (pr[i].size == TARGET_RATIO_SIZE)
			return &pr[i];
	return NULL;
}

static double target_event_median(const struct event_result *er, size_t ner)
{
	double worst = 0;
	size_t i;

	for (i = 0; i < ner; i++)
		if (er[i].lat_median_ns > worst)
			worst = er[i].lat_median_ns;
	return worst;
}

static void print_text(const struct bench *b, const struct pair_result *pr,
		       size_t npr, const struct event_result *er, size_t ner)
{
	const struct pair_result *t = target_pair(pr, npr);
	double ev = target_event_median(er, ner);
	char sz[32], split[48], where[128];
	struct bench_cpus cpus;
	size_t i;

	printf("hfi1_tidbench: soft HFI expected receive, default params "
	       "(expected_count %u, %zu-byte pages)\n",
	       b->drv->ctxt_info.rcvtids, b->page_size);
	printf("buffers: 2 MiB aligned, prefaulted, MADV_NOHUGEPAGE (4 KiB "
	       "pages); TID_UPDATE windows <= %zu KiB\n",
	       b->window / KIB);
	bench_get_cpus(&cpus);
	printf("%s\n\n",
	       bench_cpus_str(&cpus, b->opts.args.cpu, where, sizeof(where)));
	printf("1. Pin + unpin, median us per pair\n");
	printf("   tid      = TID_UPDATE (per window) + one TID_FREE\n");
	printf("   io_uring = register_buffers_update_tag per window (one "
	       "slot each) + one clearing update\n");
	printf("   mlock    = mlock + munlock of the whole buffer\n");
	printf("%8s %12s %5s %9s %9s %9s %9s %8s %10s\n", "size", "split",
	       "tids", "iters", "tid", "io_uring", "mlock", "tid/uring",
	       "tid/mlock");
	for (i = 0; i < npr; i++) {
		const struct pair_result *r = &pr[i];

		size_str(sz, sizeof(sz), r->size);
		split_str(split, sizeof(split), r);
		printf("%8s %12s %5u %9zu %9.2f %9.2f %9.2f %8.2fx %9.2fx\n",
		       sz, split, r->tids, r->iters[M_OURS],
		       r->median_ns[M_OURS] / 1000, r->median_ns[M_RAW] / 1000,
		       r->median_ns[M_MLOCK] / 1000, ratio(r, M_RAW),
		       ratio(r, M_MLOCK));
	}

	printf("\n2. munmap -> HFI1_EVENT_TID_MMU_NOTIFY raised, us (fresh "
	       "mmap, not 2 MiB aligned)\n");
	printf("   munmap = munmap() itself; list = until TID_INVAL_READ, "
	       "called once the bit shows, returned\n");
	printf("%8s %5s %8s %8s %8s %8s %8s %8s %8s %8s\n", "size", "tids",
	       "samples", "median", "p99", "max", "munmap", "munm p99", "list",
	       "list p99");
	for (i = 0; i < ner; i++) {
		const struct event_result *r = &er[i];

		size_str(sz, sizeof(sz), r->size);
		printf("%8s %5u %8u %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f\n",
		       sz, r->tids, r->samples, r->lat_median_ns / 1000,
		       r->lat_p99_ns / 1000, r->lat_max_ns / 1000,
		       r->unmap_median_ns / 1000, r->unmap_p99_ns / 1000,
		       r->list_median_ns / 1000, r->list_p99_ns / 1000);
	}

	printf("\nTargets (reported, not asserted):\n");
	if (t)
		printf("  TID pair 1 MiB / raw io_uring: %.2fx (target <= "
		       "%.1fx): %s\n",
		       ratio(t, M_RAW), TARGET_RATIO,
		       ratio(t, M_RAW) <= TARGET_RATIO ? "met" : "MISSED");
	printf("  munmap-to-event median (worst size): %.1f us (target <= "
	       "%.0f us): %s\n",
	       ev / 1000, TARGET_EVENT_NS / 1000,
	       ev <= TARGET_EVENT_NS ? "met" : "MISSED");
}

static void print_json(const struct bench *b, const struct pair_result *pr,
		       size_t npr, const struct event_result *er, size_t ner)
{
	const struct pair_result *t = target_pair(pr, npr);
	double ev = target_event_median(er, ner);
	struct bench_cpus cpus;
	char split[48];
	size_t i;

	printf("{\"tool\":\"hfi1_tidbench\",\"quick\":%s,"
	       "\"page_size\":%zu,\"expected_count\":%u,"
	       "\"buffer\":{\"align\":%lu,\"prefaulted\":true,"
	       "\"thp\":\"MADV_NOHUGEPAGE\"},\"window_bytes\":%zu,",
	       b->opts.args.quick ? "true" : "false", b->page_size,
	       b->drv->ctxt_info.rcvtids, BENCH_BUFFER_ALIGN, b->window);
	bench_get_cpus(&cpus);
	bench_print_cpus_json(&cpus, b->opts.args.cpu);
	printf(",");
	printf("\"pin_pairs\":{\"unit\":\"ns\",\"statistic\":\"median\","
	       "\"results\":[");
	for (i = 0; i < npr; i++) {
		const struct pair_result *r = &pr[i];

		split_str(split, sizeof(split), r);
		printf("%s{\"size\":%zu,\"windows\":%u,\"window_bytes\":%zu,"
		       "\"split\":\"%s\",\"tids\":%u,"
		       "\"iterations\":{\"tid\":%zu,\"io_uring\":%zu,"
		       "\"mlock\":%zu},"
		       "\"tid_ns\":%.0f,\"io_uring_ns\":%.0f,\"mlock_ns\":%.0f,"
		       "\"tid_over_io_uring\":%.4f,\"tid_over_mlock\":%.4f}",
		       i ? "," : "", r->size, r->windows, r->window_bytes,
		       split, r->tids, r->iters[M_OURS], r->iters[M_RAW],
		       r->iters[M_MLOCK], r->median_ns[M_OURS],
		       r->median_ns[M_RAW], r->median_ns[M_MLOCK],
		       ratio(r, M_RAW), ratio(r, M_MLOCK));
	}
	printf("]},\"munmap_event\":{\"unit\":\"ns\",\"results\":[");
	for (i = 0; i < ner; i++) {
		const struct event_result *r = &er[i];

		printf("%s{\"size\":%zu,\"tids\":%u,\"samples\":%u,"
		       "\"latency_median_ns\":%.0f,\"latency_p99_ns\":%.0f,"
		       "\"latency_max_ns\":%.0f,\"munmap_median_ns\":%.0f,"
		       "\"munmap_p99_ns\":%.0f,\"inval_read_median_ns\":%.0f,"
		       "\"inval_read_p99_ns\":%.0f}",
		       i ? "," : "", r->size, r->tids, r->samples,
		       r->lat_median_ns, r->lat_p99_ns, r->lat_max_ns,
		       r->unmap_median_ns, r->unmap_p99_ns, r->list_median_ns,
		       r->list_p99_ns);
	}
	printf("]},\"targets\":{");
	if (t)
		printf("\"tid_over_io_uring_1MiB\":{\"value\":%.4f,"
		       "\"max\":%.1f,\"met\":%s},",
		       ratio(t, M_RAW), TARGET_RATIO,
		       ratio(t, M_RAW) <= TARGET_RATIO ? "true" : "false");
	printf("\"munmap_event_median_ns\":{\"value\":%.0f,\"max\":%.0f,"
	       "\"met\":%s}}}\n",
	       ev, TARGET_EVENT_NS, ev <= TARGET_EVENT_NS ? "true" : "false");
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	bench_parse_args(
		argc, argv,
		"Measures the soft HFI's TID_UPDATE+TID_FREE against raw io_uring\n"
		"buffer register+unregister and mlock+munlock (sizes 4 KiB..64 "
		"MiB),\n"
		"and the latency from munmap() to HFI1_EVENT_TID_MMU_NOTIFY.\n",
		&o->args);
	if (o->args.quick) {
		o->budget_ns = 2 * 1000 * 1000;
		o->min_iters = 3;
		o->event_samples = 20;
	} else {
		o->budget_ns = 400 * 1000 * 1000;
		o->min_iters = 20;
		o->event_samples = 1000;
	}
}

int main(int argc, char **argv)
{
	const size_t npr = sizeof(pair_sizes) / sizeof(pair_sizes[0]);
	const size_t ner = sizeof(event_sizes) / sizeof(event_sizes[0]);
	struct pair_result pr[sizeof(pair_sizes) / sizeof(pair_sizes[0])];
	struct event_result er[sizeof(event_sizes) / sizeof(event_sizes[0])];
	struct softhfi_params params;
	struct bench b = { 0 };
	size_t i;
	int ret;

	parse_args(argc, argv, &b.opts);
	b.page_size = sysconf(_SC_PAGESIZE);

	softhfi_default_params(&params);
	b.drv = softhfi_open(&params);
	if (!b.drv)
		die("softhfi_open", errno);
	b.window = (size_t)b.drv->ctxt_info.rcvtids * b.page_size;
	if (b.window > 8 * MIB)
		b.window = 8 * MIB;
	b.tids = calloc(b.drv->ctxt_info.rcvtids, sizeof(*b.tids));
	if (!b.tids)
		die("calloc", ENOMEM);

	ret = io_uring_queue_init(8, &b.ring, 0);
	if (ret)
		die("io_uring_queue_init", -ret);
	ret = io_uring_register_buffers_sparse(&b.ring, MAX_PIECES);
	if (ret)
		die("io_uring_register_buffers_sparse", -ret);

	for (i = 0; i < npr; i++) {
		if (pair_sizes[i] / b.window > MAX_PIECES)
			die("buffer too large for the io_uring table", E2BIG);
		bench_pairs(&b, pair_sizes[i], &pr[i]);
	}
	for (i = 0; i < ner; i++)
		bench_event(&b, event_sizes[i], &er[i]);

	if (b.opts.args.json)
		print_json(&b, pr, npr, er, ner);
	else
		print_text(&b, pr, npr, er, ner);

	io_uring_queue_exit(&b.ring);
	free(b.tids);
	hfi1_drv_close(b.drv);
	return 0;
}
