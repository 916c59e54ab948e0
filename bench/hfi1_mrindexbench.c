// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_mrindexbench: what a lookup in the MR cache's interval index
 * (providers/hfi1/mrcache/mr_index.c) costs as the cache grows.
 *
 * Indexes of 10, 1k and 100k entries (page-aligned buffers of 1 to 16
 * pages, read-write, a fixed seed) are built up front; then
 * mr_index_find_covering() is timed on each, in batches, the indexes taking
 * turns so that drift hits all alike, and the median per lookup is
 * reported:
 *
 * - "same": one cached buffer (a sub-range of it) looked up again and
 *   again, as an application registering the same buffer does: the hit
 *   cost that issue 4's acceptance holds to at most 1.5x at 100k entries
 *   against 10 (for the whole reg_mr; here the index alone);
 * - "random": a random cached buffer each time (cold paths through the
 *   tree: mostly cache misses at 100k entries).
 *
 * Nothing here asserts a timing.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_common.h"
#include "mr_index.h"

#define PG 4096ull
#define BATCH 256 /* lookups timed together */
#define NQUERY 4096 /* random queries, reused in turn */
#define TARGET_RATIO 1.5

static const size_t sizes[] = { 10, 1000, 100000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

enum pattern { P_SAME, P_RANDOM, P_COUNT };
static const char *const pattern_names[P_COUNT] = { "same", "random" };

struct query {
	uint64_t start, end;
};

struct set {
	size_t n;
	struct mr_index idx;
	struct mr_index_entry *e;
	struct query q[NQUERY];
	double *samples[P_COUNT]; /* ns per lookup, one per batch */
	size_t nsamples[P_COUNT];
	double median[P_COUNT];
};

struct opts {
	struct bench_args args;
	unsigned int rounds;
};

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void die(const char *what)
{
	fprintf(stderr, "hfi1_mrindexbench: %s\n", what);
	exit(1);
}

/* A sub-range of entry @e: what a registration inside it asks for. */
static struct query query_in(const struct mr_index_entry *e)
{
	uint64_t pages = (e->end - e->start) / PG;
	uint64_t first = rnd() % pages;
	uint64_t len = 1 + rnd() % (pages - first);

	return (struct query){ e->start + first * PG + rnd() % 64,
			       e->start + (first + len) * PG - rnd() % 64 };
}

static void build(struct set *s, size_t n, unsigned int rounds)
{
	uint64_t addr = 1ull << 32;
	size_t i;
	int p;

	s->n = n;
	mr_index_init(&s->idx);
	s->e = calloc(n, sizeof(*s->e));
	if (!s->e)
		die("out of memory");
	/* Insert in a random order: buffers come and go. */
	for (i = 0; i < n; i++) {
		struct mr_index_entry *e = &s->e[i];

		e->start = addr;
		e->end = addr + (1 + rnd() % 16) * PG;
		e->access = 0x7;
		addr = e->end + (1 + rnd() % 16) * PG;
	}
	for (i = n - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1);
		struct mr_index_entry t = s->e[i];

		s->e[i] = s->e[j];
		s->e[j] = t;
	}
	for (i = 0; i < n; i++)
		if (mr_index_insert(&s->idx, &s->e[i]))
			die("insert failed");
	if (mr_index_check(&s->idx))
		die("index broken");
	for (i = 0; i < NQUERY; i++)
		s->q[i] = query_in(&s->e[rnd() % n]);
	for (p = 0; p < P_COUNT; p++) {
		s->samples[p] = calloc(rounds, sizeof(double));
		if (!s->samples[p])
			die("out of memory");
	}
}

static size_t qpos;

/* One batch; ns per lookup. */
static double batch(struct set *s, enum pattern p)
{
	const struct query *same = &s->q[0];
	struct mr_index_entry *hit;
	uintptr_t sink = 0;
	uint64_t t0, t1;
	int i;

	t0 = bench_now_ns();
	for (i = 0; i < BATCH; i++) {
		const struct query *q =
			p == P_SAME ? same : &s->q[qpos++ % NQUERY];

		hit = mr_index_find_covering(&s->idx, q->start, q->end, 0x3);
		sink += (uintptr_t)hit;
		if (!hit)
			die("a lookup missed");
	}
	t1 = bench_now_ns();
	__asm__ volatile("" : : "r"(sink));
	return (double)(t1 - t0) / BATCH;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	bench_parse_args(
		argc, argv,
		"Measures a hit in the MR cache's interval index at 10, "
		"1k and 100k\n"
		"cached entries: the same buffer again and again, and a "
		"random one.\n",
		&o->args);
	o->rounds = o->args.quick ? 20 : 4000;
}

int main(int argc, char **argv)
{
	static struct set sets[NSIZES];
	struct opts o = { 0 };
	double ratio[P_COUNT];
	unsigned int r, w;
	size_t i;
	int p;

	parse_args(argc, argv, &o);
	for (i = 0; i < NSIZES; i++)
		build(&sets[i], sizes[i], o.rounds);

	/* Warm up, then rounds: every index and pattern takes a turn. */
	for (w = 0; w < (o.args.quick ? 2 : 200); w++)
		for (i = 0; i < NSIZES; i++)
			for (p = 0; p < P_COUNT; p++)
				batch(&sets[i], p);
	for (r = 0; r < o.rounds; r++)
		for (i = 0; i < NSIZES; i++)
			for (p = 0; p < P_COUNT; p++)
				sets[i].samples[p][sets[i].nsamples[p]++] =
					batch(&sets[i], p);
	for (i = 0; i < NSIZES; i++)
		for (p = 0; p < P_COUNT; p++)
			sets[i].median[p] = bench_median(sets[i].samples[p],
							 sets[i].nsamples[p]);
	for (p = 0; p < P_COUNT; p++)
		ratio[p] = sets[NSIZES - 1].median[p] / sets[0].median[p];

	if (o.args.json) {
		printf("{\"tool\":\"hfi1_mrindexbench\",\"quick\":%s,"
		       "\"batch\":%d,\"rounds\":%u,\"entries\":[",
		       o.args.quick ? "true" : "false", BATCH, o.rounds);
		for (i = 0; i < NSIZES; i++) {
			printf("%s{\"n\":%zu,\"height\":%d", i ? "," : "",
			       sets[i].n, sets[i].idx.root->height);
			for (p = 0; p < P_COUNT; p++)
				printf(",\"%s_median_ns\":%.2f",
				       pattern_names[p], sets[i].median[p]);
			printf("}");
		}
		printf("],\"ratio_100k_over_10\":{\"same\":%.3f,"
		       "\"random\":%.3f},"
		       "\"targets\":{\"hit_100k_over_10\":{\"value\":%.3f,"
		       "\"max\":%.1f,\"met\":%s}}}\n",
		       ratio[P_SAME], ratio[P_RANDOM], ratio[P_SAME],
		       TARGET_RATIO,
		       ratio[P_SAME] <= TARGET_RATIO ? "true" : "false");
	} else {
		printf("mr_index_find_covering, median ns per lookup "
		       "(batches of %d, %u rounds%s)\n",
		       BATCH, o.rounds, o.args.quick ? ", --quick" : "");
		printf("%10s %7s %10s %10s\n", "entries", "height", "same",
		       "random");
		for (i = 0; i < NSIZES; i++)
			printf("%10zu %7d %10.2f %10.2f\n", sets[i].n,
			       sets[i].idx.root->height, sets[i].median[P_SAME],
			       sets[i].median[P_RANDOM]);
		printf("ratio 100k/10: same %.3f, random %.3f "
		       "(target for a hit: <= %.1f, %s)\n",
		       ratio[P_SAME], ratio[P_RANDOM], TARGET_RATIO,
		       ratio[P_SAME] <= TARGET_RATIO ? "met" : "NOT met");
	}
	for (i = 0; i < NSIZES; i++) {
		for (p = 0; p < P_COUNT; p++)
			free(sets[i].samples[p]);
		free(sets[i].e);
	}
	return 0;
}
