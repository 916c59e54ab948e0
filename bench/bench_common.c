// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What every benchmark of the tree shares (bench_common.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "bench_common.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void usage(FILE *f, const char *prog, const char *what)
{
	fprintf(f,
		"Usage: %s [--quick] [--json] [--help]\n%s"
		"  --quick  few iterations (a smoke test; numbers mean little)\n"
		"  --json   print one JSON object on stdout and nothing else\n"
		"  --help   this text\n",
		prog, what);
}

void bench_parse_args(int argc, char **argv, const char *what,
		      struct bench_args *args)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *prog = argv[0];
	int c;

	while ((c = getopt_long(argc, argv, "jqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			args->json = true;
			break;
		case 'q':
			args->quick = true;
			break;
		case 'h':
			usage(stdout, prog, what);
			exit(0);
		default:
			usage(stderr, prog, what);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr, prog, what);
		exit(2);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void *bench_alloc_buffer(size_t size)
{
	size_t span = size + BENCH_BUFFER_ALIGN;
	char *raw, *buf;

	raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	buf = (char *)(((uintptr_t)raw + BENCH_BUFFER_ALIGN - 1) &
		       ~(BENCH_BUFFER_ALIGN - 1));
	if (buf > raw)
		munmap(raw, buf - raw);
	if (raw + span > buf + size)
		munmap(buf + size, raw + span - (buf + size));
	madvise(buf, size, MADV_NOHUGEPAGE);
	memset(buf, 0xa5, size);
	return buf;
}
