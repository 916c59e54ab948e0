/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What every benchmark of the tree shares: the clock, the command line
 * (--quick, --json, --help) and the median.
 */
#ifndef HFI1_BENCH_COMMON_H
#define HFI1_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_args {
	bool json; /* one JSON object on stdout, nothing else */
	bool quick; /* few iterations: a smoke test */
	int cpu; /* --cpu N: the whole process runs on CPU N; -1 if not */
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/*
 * Parse --quick, --json, --cpu N and --help; @what says what the
 * benchmark measures (one or more lines) for the usage text. --cpu binds
 * the calling thread, hence every thread created after it, to CPU N, as
 * an MPI launcher binds a rank. Exits on --help (0) and on a bad
 * argument or a CPU it cannot bind to (2).
 */
void bench_parse_args(int argc, char **argv, const char *what,
		      struct bench_args *args);

/*
 * A buffer of @size bytes on a 2 MiB boundary, prefaulted, in 4 KiB pages
 * (MADV_NOHUGEPAGE: no transparent huge page makes pinning look cheap).
 * NULL if mmap() fails; munmap(buf, size) frees it.
 */
void *bench_alloc_buffer(size_t size);
#define BENCH_BUFFER_ALIGN (2ul * 1024 * 1024)

/*
 * Where the numbers were taken, which decides what a wake-up of another
 * thread costs: the CPUs the process may use and, in a KVM guest, the
 * guest's halt polling (0: an idle vCPU halts at once, and waking it
 * goes through the host).
 */
struct bench_cpus {
	int allowed; /* CPUs in the affinity mask */
	int online;
	long halt_poll_ns; /* -1: no haltpoll driver */
};
void bench_get_cpus(struct bench_cpus *cpus);
/* One line of text, with no newline, into @buf. */
const char *bench_cpus_str(const struct bench_cpus *cpus, int bound_cpu,
			   char *buf, size_t len);
/* A JSON member "cpus":{...}, with no separator, on stdout. */
void bench_print_cpus_json(const struct bench_cpus *cpus, int bound_cpu);

/* Sorts @v; the median of its @n values (0 if none). */
double bench_median(double *v, size_t n);

#endif /* HFI1_BENCH_COMMON_H */
