// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_mpibench: MPI ping-pong latency and streaming bandwidth between two
 * ranks, from 8 bytes to 4 MiB, for whatever transport the MPI library
 * was given (over the soft HFI: Open MPI's UCX PML with UCX_TLS=rc_v).
 *
 *   mpirun -np 2 ... hfi1_mpibench [--quick] [--json] [--max BYTES]
 *
 * Ping-pong: rank 0 sends, rank 1 sends the same size back; the half
 * round trip is printed (median of the rounds). Bandwidth: rank 0 posts a
 * window of non-blocking sends, rank 1 the matching receives, and a
 * zero-byte reply closes each window (MB/s, 10^6 bytes a second, median
 * of the rounds). The buffers are the same every iteration, as most MPI
 * programs use theirs: after the first round their registrations are
 * cached. Each size's buffers are checked once after the bandwidth test
 * (the last window's data, a pattern of the size), and a mismatch fails
 * the run. At the end it prints the payload bytes both ranks sent each
 * other, which a transport between them must have carried (over the soft
 * HFI, hfi1_mrstat(1) shows the ranks' contexts received at least that).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SIZE 8
#define DEF_MAX_SIZE (4ul << 20)
#define WINDOW 16
#define ROUNDS 5

struct opts {
	bool quick;
	bool json;
	size_t max;
};

static int rank;
/* Payload bytes this rank sent to the other. */
static uint64_t sent;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mpirun -np 2 hfi1_mpibench [--quick] [--json] [--max BYTES]\n"
		"MPI ping-pong half round trip and streaming bandwidth between\n"
		"ranks 0 and 1, %d B to %lu B (--max: the largest size).\n",
		MIN_SIZE, DEF_MAX_SIZE);
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "max", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	char *end;
	int c;

	o->max = DEF_MAX_SIZE;
	while ((c = getopt_long(argc, argv, "qjm:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			o->quick = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'm':
			errno = 0;
			o->max = strtoul(optarg, &end, 0);
			if (errno || *end || o->max < MIN_SIZE ||
			    o->max > (1ul << 30)) {
				fprintf(stderr, "hfi1_mpibench: bad --max %s\n",
					optarg);
				return 2;
			}
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Iterations per round: fewer for large sizes, about 4 MiB of traffic. */
static int iters_for(size_t size, bool quick)
{
	size_t n = (4ul << 20) / size;

	if (n < 4)
		n = 4;
	if (n > 1000)
		n = 1000;
	return (int)(quick ? (n + 9) / 10 : n);
}

/*
 * Windows per bandwidth round: at least four (64 MiB at 1 MiB), so that
 * the ramp of a window and one scheduling hiccup weigh less in the figure.
 */
static int windows_for(int iters, bool quick)
{
	int n = (iters + WINDOW - 1) / WINDOW;

	return quick || n >= 4 ? n : 4;
}

static void fill(unsigned char *buf, size_t size, unsigned int seed)
{
	size_t i;

	for (i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 31 + seed);
}

static bool check(const unsigned char *buf, size_t size, unsigned int seed)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (buf[i] != (unsigned char)(i * 31 + seed))
			return false;
	return true;
}

/* The half round trip of @size bytes in microseconds. */
static double pingpong(unsigned char *buf, size_t size, int iters)
{
	double t;
	int i;

	MPI_Barrier(MPI_COMM_WORLD);
	t = MPI_Wtime();
	for (i = 0; i < iters; i++) {
		sent += size;
		if (rank == 0) {
			MPI_Send(buf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
			MPI_Recv(buf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(buf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
			MPI_Send(buf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
		}
	}
	return (MPI_Wtime() - t) / iters / 2 * 1e6;
}

/* Rank 0 streams windows of @size bytes to rank 1: MB/s. */
static double stream(unsigned char *bufs[WINDOW], size_t size, int iters)
{
	MPI_Request req[WINDOW];
	double t;
	int i, w;

	MPI_Barrier(MPI_COMM_WORLD);
	t = MPI_Wtime();
	for (i = 0; i < iters; i++) {
		if (rank == 0)
			sent += size * WINDOW;
		for (w = 0; w < WINDOW; w++) {
			if (rank == 0)
				MPI_Isend(bufs[w], size, MPI_BYTE, 1, 2,
					  MPI_COMM_WORLD, &req[w]);
			else
				MPI_Irecv(bufs[w], size, MPI_BYTE, 0, 2,
					  MPI_COMM_WORLD, &req[w]);
		}
		MPI_Waitall(WINDOW, req, MPI_STATUSES_IGNORE);
		if (rank == 0)
			MPI_Recv(NULL, 0, MPI_BYTE, 1, 3, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
		else
			MPI_Send(NULL, 0, MPI_BYTE, 0, 3, MPI_COMM_WORLD);
	}
	t = MPI_Wtime() - t;
	return (double)size * WINDOW * iters / t / 1e6;
}

int main(int argc, char **argv)
{
	double lat[ROUNDS], bw[ROUNDS], mlat, mbw;
	unsigned char *bufs[WINDOW] = {};
	int nranks, ret, bad = 0, all_bad = 0, r, w, rounds;
	uint64_t all_sent = 0;
	struct opts o = {};
	bool first = true;
	size_t size;

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
				"hfi1_mpibench: needs 2 ranks, has %d\n",
				nranks);
		MPI_Finalize();
		return 2;
	}
	for (w = 0; w < WINDOW; w++) {
		bufs[w] = malloc(o.max);
		if (!bufs[w]) {
			fprintf(stderr, "hfi1_mpibench: rank %d: no memory\n",
				rank);
			MPI_Abort(MPI_COMM_WORLD, 1);
		}
		memset(bufs[w], 0, o.max);
	}
	rounds = o.quick ? 1 : ROUNDS;
	if (!rank && o.json)
		printf("{\"window\": %d, \"rounds\": %d, \"sizes\": [", WINDOW,
		       rounds);
	else if (!rank)
		printf("%10s %14s %14s\n", "bytes", "latency(us)",
		       "bandwidth(MB/s)");
	for (size = MIN_SIZE; size <= o.max; size *= 2) {
		int iters = iters_for(size, o.quick);

		for (r = 0; r < rounds; r++) {
			lat[r] = pingpong(bufs[0], size, iters);
			if (rank == 0)
				for (w = 0; w < WINDOW; w++)
					fill(bufs[w], size, size + w);
			bw[r] = stream(bufs, size, windows_for(iters, o.quick));
			if (rank == 1)
				for (w = 0; w < WINDOW; w++)
					bad += !check(bufs[w], size, size + w);
		}
		mlat = median(lat, rounds);
		mbw = median(bw, rounds);
		if (!rank && o.json)
			printf("%s{\"bytes\": %zu, \"latency_us\": %.3f, \"bandwidth_mbs\": %.1f}",
			       first ? "" : ", ", size, mlat, mbw);
		else if (!rank)
			printf("%10zu %14.2f %14.1f\n", size, mlat, mbw);
		fflush(stdout);
		first = false;
	}
	MPI_Reduce(&bad, &all_bad, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
	MPI_Reduce(&sent, &all_sent, 1, MPI_UINT64_T, MPI_SUM, 0,
		   MPI_COMM_WORLD);
	if (!rank && o.json)
		printf("], \"corrupt_messages\": %d, \"bytes_sent\": %" PRIu64
		       "}\n",
		       all_bad, all_sent);
	else if (!rank)
		printf("corrupt messages: %d\nbytes sent: %" PRIu64 "\n",
		       all_bad, all_sent);
	for (w = 0; w < WINDOW; w++)
		free(bufs[w]);
	MPI_Finalize();
	return all_bad ? 1 : 0;
}
