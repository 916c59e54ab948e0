/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The per-context stats file (hfi1_stats_file.h): where a context's MR
 * cache counters and limits and its data counters live, so that
 * hfi1_mrstat(1) can read them from outside the process.
 *
 * hfi1_stats_open() always gives counters: in a file of
 * $HFI1_STATS_DIR (default /dev/shm) named libhfi1.<pid>.<n>.stats (or
 * libhfi1.<pid>.<n>.<tag>.stats, a random tag, when another user's file
 * holds that name), or, with HFI1_STATS=0 or when the file cannot be
 * made, in private memory.
 * The file is created with mode 0600: its readers are the user who runs
 * the program (hfi1_mrstat) and root; nobody else needs a process's
 * registration pattern. Unless HFI1_STATS_KEEP=1, the open first removes
 * the files that the user's processes that are gone left in the
 * directory.
 *
 * Writers of the counters and the limits use relaxed atomics, as the
 * cache does (mr_cache.h), each set under its writer's own lock (the data
 * counters: hfi1_stats_file.h); nothing here takes a lock.
 */
#ifndef HFI1_STATS_H
#define HFI1_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "hfi1_stats_file.h"
#include "mr_cache.h" /* struct hfi1_mrc_limits */

struct hfi1_stats;

/*
 * The stats of a new context of device @device (its ibv name; truncated
 * to fit). @log, which may be NULL, gets one line (levels are
 * VERBS_LOG_*'s) the first time in the process that the file cannot be
 * made, and one saying where the file went each time another user's file
 * holds its name. NULL with errno ENOMEM only when even private memory
 * cannot be had.
 */
struct hfi1_stats *
hfi1_stats_open(const char *device,
		void (*log)(void *arg, int level, const char *msg), void *arg);

/*
 * Marks the context closed and removes its file, unless HFI1_STATS_KEEP=1
 * was set at open. In a forked child (a pid other than the opener's) it
 * only drops the child's mapping: the file and its state are the
 * parent's.
 */
void hfi1_stats_close(struct hfi1_stats *s);

/* The counters to hand to hfi1_mrc_create(); valid until close. */
struct hfi1_mrc_counters *hfi1_stats_counters(struct hfi1_stats *s);

/* The data counters, for the soft HFI's engine; valid until close. */
struct hfi1_data_counters *hfi1_stats_data(struct hfi1_stats *s);

/* Publish the cache's limits (at create and after hfi1_mrc_set_limits()). */
void hfi1_stats_set_limits(struct hfi1_stats *s,
			   const struct hfi1_mrc_limits *limits);

/* The file's path, or NULL when the counters are private. */
const char *hfi1_stats_path(const struct hfi1_stats *s);

/* This context's number <n> in the process (also without a file). */
uint64_t hfi1_stats_ctx_num(const struct hfi1_stats *s);

#endif /* HFI1_STATS_H */
