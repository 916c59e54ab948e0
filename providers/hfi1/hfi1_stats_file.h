/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The per-context stats file: the provider publishes each context's MR
 * cache counters in a small file that hfi1_mrstat(1) reads from outside.
 *   directory: $HFI1_STATS_DIR, default /dev/shm
 *   name:      libhfi1.<pid>.<n>.stats (n: the process's context number)
 *   HFI1_STATS=0      publish nothing (counters in private memory)
 *   HFI1_STATS_KEEP=1 leave the file at close/exit (hfi1_mrstat -- CMD)
 * The file is the struct below, mmapped shared; the cache writes the
 * counters in place (relaxed atomics), readers load them relaxed.
 * It is created with O_EXCL and mode 0600, filled, and gets its magic
 * last (after a release fence), so a file with the magic has a whole
 * header. Readers (hfi1_mrstat) must not trust it: they check st_size,
 * pread() a copy, and check magic, version and size before using it.
 * A process that dies without closing leaves its file; a reader tells it
 * by its pid being gone or by a start_time other than the pid's.
 */
#ifndef HFI1_STATS_FILE_H
#define HFI1_STATS_FILE_H

#include <stdint.h>
#include "mr_cache.h" /* struct hfi1_mrc_counters */

#define HFI1_STATS_MAGIC "HFI1STAT"
#define HFI1_STATS_VERSION 1

struct hfi1_stats_file {
	char magic[8];
	uint32_t version;
	uint32_t size; /* sizeof(struct hfi1_stats_file) */
	uint64_t pid;
	uint64_t start_time; /* /proc/<pid>/stat field 22: tells pid reuse */
	uint64_t ctx_num;
	char device[64]; /* ibv device name */
	_Atomic uint64_t closed; /* 1 once the context was closed */
	_Atomic uint64_t limit_enabled, limit_max_entries, limit_max_bytes;
	struct hfi1_mrc_counters counters;
};

/* The layout is shared with other builds of the tool: no padding, fixed. */
_Static_assert(sizeof(struct hfi1_stats_file) == 216,
	       "struct hfi1_stats_file changed: bump HFI1_STATS_VERSION");

#endif
