// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What every benchmark of the tree shares (bench_common.h).
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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
		"Usage: %s [--quick] [--json] [--cpu N] [--help]\n%s"
		"  --quick  few iterations (a smoke test; numbers mean little)\n"
		"  --json   print one JSON object on stdout and nothing else\n"
		"  --cpu N  run every thread on CPU N, as a bound MPI rank\n"
		"  --help   this text\n",
		prog, what);
}

static void bind_cpu(const char *prog, const char *arg, struct bench_args *args)
{
	cpu_set_t set;
	char *end;
	long cpu;

	errno = 0;
	cpu = strtol(arg, &end, 10);
	if (errno || end == arg || *end || cpu < 0 || cpu >= CPU_SETSIZE) {
		fprintf(stderr, "%s: --cpu %s: not a CPU number\n", prog, arg);
		exit(2);
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "%s: --cpu %ld: %s\n", prog, cpu,
			strerror(errno));
		exit(2);
	}
	args->cpu = cpu;
}

void bench_parse_args(int argc, char **argv, const char *what,
		      struct bench_args *args)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *prog = argv[0];
	int c;

	args->cpu = -1;
	while ((c = getopt_long(argc, argv, "jqc:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			args->json = true;
			break;
		case 'q':
			args->quick = true;
			break;
		case 'c':
			bind_cpu(prog, optarg, args);
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

void bench_get_cpus(struct bench_cpus *cpus)
{
	cpu_set_t set;
	FILE *f;

	cpus->allowed =
		sched_getaffinity(0, sizeof(set), &set) ? -1 : CPU_COUNT(&set);
	cpus->online = sysconf(_SC_NPROCESSORS_ONLN);
	cpus->halt_poll_ns = -1;
	f = fopen("/sys/module/haltpoll/parameters/guest_halt_poll_ns", "r");
	if (f) {
		if (fscanf(f, "%ld", &cpus->halt_poll_ns) != 1)
			cpus->halt_poll_ns = -1;
		fclose(f);
	}
}

const char *bench_cpus_str(const struct bench_cpus *cpus, int bound_cpu,
			   char *buf, size_t len)
{
	char poll[64] = "no haltpoll driver";
	char where[48];

	if (bound_cpu >= 0)
		snprintf(where, sizeof(where), "on CPU %d (--cpu)", bound_cpu);
	else
		snprintf(where, sizeof(where), "on %d of %d CPUs",
			 cpus->allowed, cpus->online);
	if (cpus->halt_poll_ns >= 0)
		snprintf(poll, sizeof(poll), "guest halt polling %ld ns",
			 cpus->halt_poll_ns);
	snprintf(buf, len, "threads %s; %s", where, poll);
	return buf;
}

void bench_print_cpus_json(const struct bench_cpus *cpus, int bound_cpu)
{
	printf("\"cpus\":{\"allowed\":%d,\"online\":%d,\"bound\":",
	       cpus->allowed, cpus->online);
	if (bound_cpu >= 0)
		printf("%d", bound_cpu);
	else
		printf("null");
	printf(",\"guest_halt_poll_ns\":");
	if (cpus->halt_poll_ns >= 0)
		printf("%ld}", cpus->halt_poll_ns);
	else
		printf("null}");
}
