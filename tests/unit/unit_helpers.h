/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Helpers shared by the C unit tests that run against a real soft HFI
 * context: the memory they map, the clock they poll with, and the checks
 * of their forked children.
 */
#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hfi1_drv;

#define CHILD_SKIP 77 /* exit status: the child cannot run the test */
#define MEMLOCK_LIMIT (1024 * 1024) /* the unprivileged tests' rlimit */

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
uint64_t now_ms(void);

/*
 * @npages of anonymous memory that start on a SOFTHFI_MAX_RUN_PAGES
 * boundary, without THP, so that with the default contig_pages a buffer
 * of up to 2 MiB is one run and its entries are known (a 2-page buffer
 * is one entry). NULL on failure.
 */
void *map_pages(size_t npages);

/*
 * A soft HFI context; 0 for any parameter keeps softhfi's default.
 * NULL with errno set on failure.
 */
struct hfi1_drv *open_ctx(unsigned int expected_count,
			  unsigned int contig_pages,
			  unsigned int user_contexts);

/*
 * Whether the process has CAP_IPC_LOCK in effect, which lifts
 * RLIMIT_MEMLOCK from the pin limit (true if it cannot tell).
 */
bool has_cap_ipc_lock(void);

/*
 * Forked children must not use cmocka's asserts (they would unwind into
 * the child's copy of the test runner): they check with CHILD_CHECK, which
 * writes the first failure to child_report_fd and exits with status 1.
 */
extern int child_report_fd;

void __attribute__((noreturn)) child_fail(int line, const char *expr);

#define CHILD_CHECK(cond)                            \
	do {                                         \
		if (!(cond))                         \
			child_fail(__LINE__, #cond); \
	} while (0)

#endif /* UNIT_HELPERS_H */
