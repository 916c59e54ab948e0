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
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/*
 * Parse --quick, --json and --help; @what says what the benchmark
 * measures (one or more lines) for the usage text. Exits on --help (0)
 * and on a bad argument (2).
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

/* Sorts @v; the median of its @n values (0 if none). */
double bench_median(double *v, size_t n);

#endif /* HFI1_BENCH_COMMON_H */
