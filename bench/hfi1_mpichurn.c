// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_mpichurn: MPI messages between two ranks whose buffers are
 * malloc'ed and freed every iteration, every message checked.
 *
 *   mpirun -np 2 ... hfi1_mpichurn [--iters N] [--reuse] [--quick] [--json]
 *
 * The sizes (256 KiB to 4 MiB, in turn) are above UCX's rendezvous
 * threshold, so each message moves by zero-copy RDMA between buffers UCX
 * registers: with the buffers new each time, a registration each time
 * on each side. malloc() is told to map every buffer of 256 KiB or more
 * on its own
 * (M_MMAP_THRESHOLD), so that free() unmaps it and the next malloc() may
 * get the same addresses over new pages: what a registration cache must
 * notice (libhfi1's through its invalidations, UCX's through its own
 * memory hooks), or the data lands in pages nobody reads.
 *
 * Each iteration one rank sends and the other receives (they take turns),
 * the sender fills its buffer with a pattern of the iteration and sends
 * its checksum after the data; the receiver checksums what arrived and
 * counts a corrupt message when they differ. --reuse allocates the
 * buffers once (as most MPI programs do) for comparison.
 *
 * At the end rank 0 prints the messages, the corrupt ones, the bandwidth
 * of the timed iterations and the MR cache counters of libhfi1's contexts
 * in both ranks during them (read from the ranks' own stats files; none
 * where the provider is not libhfi1 or HFI1_STATS=0): hits, misses,
 * invalidations and the hit ratio. Exits 1 if a message was corrupt.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hfi1_stats_file.h"

#define MIN_SIZE (256ul << 10)
#define MAX_SIZE (4ul << 20)
#define DEF_ITERS 2000
/* Iterations before the timed ones: connections made, caches warm. */
#define WARMUP 20

struct opts {
	int iters;
	bool reuse;
	bool quick;
	bool json;
};

/* What both ranks' libhfi1 contexts counted, summed. */
enum { C_HITS, C_MISSES, C_INVAL, C_INVAL_IN_USE, C_CONTEXTS, C_NUM };

static int rank;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mpirun -np 2 hfi1_mpichurn [--iters N] [--reuse] [--quick] [--json]\n"
		"Messages of %lu KiB to %lu MiB between ranks 0 and 1 in buffers\n"
		"malloc'ed and freed every iteration (--reuse: allocated once),\n"
		"each checked; prints corrupt messages, bandwidth and libhfi1's\n"
		"MR cache counters. Default %d iterations (--quick: 200).\n",
		MIN_SIZE >> 10, MAX_SIZE >> 20, DEF_ITERS);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "iters", required_argument, NULL, 'n' },
		{ "reuse", no_argument, NULL, 'r' },
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	char *end;
	long n;
	int c;

	o->iters = DEF_ITERS;
	while ((c = getopt_long(argc, argv, "n:rqjh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			n = strtol(optarg, &end, 0);
			if (errno || *end || n < 1 || n > 100000000) {
				fprintf(stderr,
					"hfi1_mpichurn: bad --iters %s\n",
					optarg);
				return 2;
			}
			o->iters = n;
			break;
		case 'r':
			o->reuse = true;
			break;
		case 'q':
			o->quick = true;
			o->iters = 200;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			if (!rank)
				usage(stdout);
			return 1;
		default:
			if (!rank)
				usage(stderr);
			return 2;
		}
	}
	return 0;
}

/* The size of iteration @i: 256 KiB, 512 KiB, ... 4 MiB, in turn. */
static size_t size_of(int i)
{
	return MIN_SIZE << (i % 5);
}

/* A pattern that differs per iteration and per word: stale data shows. */
static void fill(uint64_t *buf, size_t size, int i)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
	size_t k;

	for (k = 0; k < size / 8; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[k] = x;
	}
}

/* Fletcher-style: order matters, so a misplaced page shows too. */
static uint64_t checksum(const uint64_t *buf, size_t size)
{
	uint64_t a = 1, b = 0;
	size_t k;

	for (k = 0; k < size / 8; k++) {
		a += buf[k];
		b += a;
	}
	return a ^ (b * 0x100000001b3ull);
}

/*
 * Sum the counters of this process's libhfi1 contexts from their stats
 * files: the directory is HFI1_STATS_DIR, else the default, as the
 * provider chose it.
 */
static void read_counters(uint64_t c[C_NUM])
{
	const char *dir = getenv("HFI1_STATS_DIR");
	struct hfi1_stats_file f;
	struct dirent *d;
	struct stat st;
	uint64_t n;
	DIR *dp;
	long pid;

	memset(c, 0, sizeof(*c) * C_NUM);
	if (!dir || !*dir)
		dir = HFI1_STATS_DEFAULT_DIR;
	dp = opendir(dir);
	if (!dp)
		return;
	while ((d = readdir(dp))) {
		if (!hfi1_stats_parse_name(d->d_name, &pid, &n) ||
		    pid != getpid())
			continue;
		if (hfi1_stats_read(dirfd(dp), d->d_name, &f, &st, NULL, 0))
			continue;
		c[C_HITS] += f.counters.hits;
		c[C_MISSES] += f.counters.misses;
		c[C_INVAL] += f.counters.invalidations;
		c[C_INVAL_IN_USE] += f.counters.invalidated_in_use;
		c[C_CONTEXTS]++;
	}
	closedir(dp);
}

static void *alloc(size_t size)
{
	void *p = malloc(size);

	if (!p) {
		fprintf(stderr, "hfi1_mpichurn: rank %d: no memory for %zu\n",
			rank, size);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	return p;
}

/*
 * Iteration @i: the sender fills, sends the data and its checksum; the
 * receiver checks. True if this rank received a corrupt message.
 */
static bool one(int i, uint64_t *sbuf, uint64_t *rbuf)
{
	size_t size = size_of(i);
	int peer = !rank, sender = i % 2;
	uint64_t sum, got;
	bool own = !sbuf;

	if (rank == sender) {
		if (own)
			sbuf = alloc(size);
		fill(sbuf, size, i);
		sum = checksum(sbuf, size);
		MPI_Send(sbuf, size, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
		MPI_Send(&sum, 1, MPI_UINT64_T, peer, 2, MPI_COMM_WORLD);
		if (own)
			free(sbuf);
		return false;
	}
	if (own)
		rbuf = alloc(size);
	/* What a stale translation would leave there is never the data. */
	memset(rbuf, 0xa5, size);
	MPI_Recv(rbuf, size, MPI_BYTE, peer, 1, MPI_COMM_WORLD,
		 MPI_STATUS_IGNORE);
	MPI_Recv(&sum, 1, MPI_UINT64_T, peer, 2, MPI_COMM_WORLD,
		 MPI_STATUS_IGNORE);
	got = checksum(rbuf, size);
	if (own)
		free(rbuf);
	if (got != sum)
		fprintf(stderr,
			"hfi1_mpichurn: rank %d: iteration %d (%zu bytes) corrupt: checksum %016llx, sent %016llx\n",
			rank, i, size, (unsigned long long)got,
			(unsigned long long)sum);
	return got != sum;
}

int main(int argc, char **argv)
{
	uint64_t before[C_NUM], after[C_NUM], mine[C_NUM], all[C_NUM];
	uint64_t *sbuf = NULL, *rbuf = NULL, bytes = 0;
	long corrupt = 0, all_corrupt = 0;
	struct opts o = {};
	int nranks, ret, i, k;
	double t, hit_ratio;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	ret = parse(argc, argv, &o);
	if (ret) {
		MPI_Finalize();
		return ret == 1 ? 0 : ret;
	}
	if (nranks != 2) {
		if (!rank)
			fprintf(stderr,
				"hfi1_mpichurn: needs 2 ranks, has %d\n",
				nranks);
		MPI_Finalize();
		return 2;
	}
	/* Every buffer of ours its own mapping, unmapped by free(). */
	if (!mallopt(M_MMAP_THRESHOLD, MIN_SIZE))
		fprintf(stderr,
			"hfi1_mpichurn: mallopt(M_MMAP_THRESHOLD) failed\n");
	if (o.reuse) {
		sbuf = alloc(MAX_SIZE);
		rbuf = alloc(MAX_SIZE);
	}

	for (i = 0; i < WARMUP; i++)
		corrupt += one(i, sbuf, rbuf);
	MPI_Barrier(MPI_COMM_WORLD);
	read_counters(before);
	t = MPI_Wtime();
	for (i = WARMUP; i < WARMUP + o.iters; i++) {
		corrupt += one(i, sbuf, rbuf);
		bytes += size_of(i);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	t = MPI_Wtime() - t;
	read_counters(after);
	for (k = 0; k < C_NUM; k++)
		mine[k] = after[k] - before[k];
	mine[C_CONTEXTS] = after[C_CONTEXTS];
	MPI_Reduce(mine, all, C_NUM, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
	MPI_Reduce(&corrupt, &all_corrupt, 1, MPI_LONG, MPI_SUM, 0,
		   MPI_COMM_WORLD);

	if (!rank) {
		hit_ratio = all[C_HITS] + all[C_MISSES] ?
				    (double)all[C_HITS] /
					    (all[C_HITS] + all[C_MISSES]) :
				    -1;
		if (o.json) {
			printf("{\"buffers\": \"%s\", \"messages\": %d, \"warmup\": %d, \"corrupt\": %ld, \"seconds\": %.3f, \"bandwidth_mbs\": %.1f, ",
			       o.reuse ? "reused" : "churned", o.iters, WARMUP,
			       all_corrupt, t, bytes / t / 1e6);
			printf("\"libhfi1_contexts\": %llu, \"hits\": %llu, \"misses\": %llu, \"invalidations\": %llu, \"invalidated_in_use\": %llu, ",
			       (unsigned long long)all[C_CONTEXTS],
			       (unsigned long long)all[C_HITS],
			       (unsigned long long)all[C_MISSES],
			       (unsigned long long)all[C_INVAL],
			       (unsigned long long)all[C_INVAL_IN_USE]);
			if (hit_ratio < 0)
				printf("\"hit_ratio\": null}\n");
			else
				printf("\"hit_ratio\": %.4f}\n", hit_ratio);
		} else {
			printf("buffers:            %s\n",
			       o.reuse ? "reused" :
					 "malloc'ed and freed every iteration");
			printf("messages:           %d timed (after %d warm-up), 256 KiB-4 MiB\n",
			       o.iters, WARMUP);
			printf("corrupt messages:   %ld\n", all_corrupt);
			printf("bandwidth:          %.1f MB/s (%.3f s)\n",
			       bytes / t / 1e6, t);
			printf("libhfi1 contexts:   %llu (both ranks)\n",
			       (unsigned long long)all[C_CONTEXTS]);
			printf("MR cache hits:      %llu\n",
			       (unsigned long long)all[C_HITS]);
			printf("MR cache misses:    %llu\n",
			       (unsigned long long)all[C_MISSES]);
			printf("invalidations:      %llu (%llu of MRs in use: async events)\n",
			       (unsigned long long)all[C_INVAL],
			       (unsigned long long)all[C_INVAL_IN_USE]);
			if (hit_ratio < 0)
				printf("hit ratio:          - (no registration)\n");
			else
				printf("hit ratio:          %.4f\n", hit_ratio);
		}
	}
	free(sbuf);
	free(rbuf);
	MPI_Finalize();
	return all_corrupt ? 1 : 0;
}
