// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Helpers shared by the C unit tests; see unit_helpers.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "softhfi.h"
#include "unit_helpers.h"

int child_report_fd = -1;

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *map_pages(size_t npages)
{
	size_t pg = sysconf(_SC_PAGESIZE);
	size_t block = SOFTHFI_MAX_RUN_PAGES * pg, len = npages * pg;
	char *p, *start;

	p = mmap(NULL, len + block, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	start = (char *)(((uintptr_t)p + block - 1) & ~(uintptr_t)(block - 1));
	if (start > p)
		munmap(p, start - p);
	munmap(start + len, p + block - start);
	/* A THP would be charged whole to RLIMIT_MEMLOCK by io_uring. */
	madvise(start, len, MADV_NOHUGEPAGE);
	return start;
}

struct hfi1_drv *open_ctx(unsigned int expected_count,
			  unsigned int contig_pages, unsigned int user_contexts)
{
	struct softhfi_params params;

	softhfi_default_params(&params);
	if (expected_count)
		params.expected_count = expected_count;
	if (contig_pages)
		params.contig_pages = contig_pages;
	if (user_contexts)
		params.user_contexts = user_contexts;
	return softhfi_open(&params);
}

bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return true;
	return data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &
	       CAP_TO_MASK(CAP_IPC_LOCK);
}

void child_fail(int line, const char *expr)
{
	char msg[256];
	int err = errno;
	int n;

	n = snprintf(msg, sizeof(msg),
		     "[child %d, line %d: %s (errno %d: %s)] ", (int)getpid(),
		     line, expr, err, strerror(err));
	if (write(child_report_fd, msg, n) < 0)
		_exit(2);
	_exit(1);
}
