// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A stand-in for a libhfi1 process, for test_hfi1_mrstat.sh: opens
 * per-context stats files with hfi1_stats_open() (no device needed) and
 * puts known values in them.
 *
 *   hfi1_stats_writer [--contexts K] [--fork] [--hold] [--no-close]
 *                     [--exit N]
 *
 * Context i (0-based) gets hits 90 + i, misses 10, evictions 3,
 * invalidations 4, invalidated_in_use 1, failures 2, entries 7,
 * idle_entries 5, pinned_bytes 1048576, tids_used 256, the limits
 * enabled, max_entries 1024, max_bytes 0, and the data counters
 * xmit_packets 20, xmit_bytes 4096, rcv_packets 30, rcv_bytes 8192,
 * placed_bytes 6144; device "hfi1_test".
 * --fork: a child opens one context of its own (hits 1000) and closes it
 * before the parent goes on. --hold: prints each file's path, then waits
 * for SIGTERM. --no-close: exits without closing (as a crash would).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "stats.h"

#define MAX_CONTEXTS 16

static void log_stderr(void *arg, int level, const char *msg)
{
	fprintf(stderr, "hfi1_stats_writer: %s\n", msg);
}

static struct hfi1_stats *open_one(uint64_t hits)
{
	static const struct hfi1_mrc_limits limits = {
		.enabled = true,
		.max_entries = 1024,
		.max_bytes = 0,
	};
	struct hfi1_data_counters *d;
	struct hfi1_mrc_counters *c;
	struct hfi1_stats *s;

	s = hfi1_stats_open("hfi1_test", log_stderr, NULL);
	if (!s) {
		perror("hfi1_stats_open");
		exit(1);
	}
	c = hfi1_stats_counters(s);
	atomic_store_explicit(&c->hits, hits, memory_order_relaxed);
	atomic_store_explicit(&c->misses, 10, memory_order_relaxed);
	atomic_store_explicit(&c->evictions, 3, memory_order_relaxed);
	atomic_store_explicit(&c->invalidations, 4, memory_order_relaxed);
	atomic_store_explicit(&c->invalidated_in_use, 1, memory_order_relaxed);
	atomic_store_explicit(&c->failures, 2, memory_order_relaxed);
	atomic_store_explicit(&c->entries, 7, memory_order_relaxed);
	atomic_store_explicit(&c->idle_entries, 5, memory_order_relaxed);
	atomic_store_explicit(&c->pinned_bytes, 1048576, memory_order_relaxed);
	atomic_store_explicit(&c->tids_used, 256, memory_order_relaxed);
	hfi1_stats_set_limits(s, &limits);
	d = hfi1_stats_data(s);
	atomic_store_explicit(&d->xmit_packets, 20, memory_order_relaxed);
	atomic_store_explicit(&d->xmit_bytes, 4096, memory_order_relaxed);
	atomic_store_explicit(&d->rcv_packets, 30, memory_order_relaxed);
	atomic_store_explicit(&d->rcv_bytes, 8192, memory_order_relaxed);
	atomic_store_explicit(&d->placed_bytes, 6144, memory_order_relaxed);
	return s;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "contexts", required_argument, NULL, 'k' },
		{ "fork", no_argument, NULL, 'f' },
		{ "hold", no_argument, NULL, 'H' },
		{ "no-close", no_argument, NULL, 'n' },
		{ "exit", required_argument, NULL, 'e' },
		{}
	};
	struct hfi1_stats *s[MAX_CONTEXTS];
	bool do_fork = false, hold = false, no_close = false;
	int k = 1, status = 0, opt, i, sig;
	sigset_t set;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			k = atoi(optarg);
			if (k < 1 || k > MAX_CONTEXTS) {
				fprintf(stderr, "--contexts 1..%d\n",
					MAX_CONTEXTS);
				return 2;
			}
			break;
		case 'f':
			do_fork = true;
			break;
		case 'H':
			hold = true;
			break;
		case 'n':
			no_close = true;
			break;
		case 'e':
			status = atoi(optarg);
			break;
		default:
			return 2;
		}
	}

	/* Blocked before anything can be told our pid. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	for (i = 0; i < k; i++)
		s[i] = open_one(90 + i);

	if (do_fork) {
		int wstatus;
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			hfi1_stats_close(open_one(1000));
			/* The parent's contexts as the child sees them. */
			for (i = 0; i < k; i++)
				hfi1_stats_close(s[i]);
			_exit(0);
		}
		if (waitpid(pid, &wstatus, 0) != pid || !WIFEXITED(wstatus) ||
		    WEXITSTATUS(wstatus)) {
			fprintf(stderr, "the child failed\n");
			return 1;
		}
	}

	if (hold) {
		for (i = 0; i < k; i++)
			printf("%s\n", hfi1_stats_path(s[i]) ?
					       hfi1_stats_path(s[i]) :
					       "(private)");
		fflush(stdout);
		while (sigwait(&set, &sig))
			;
	}
	/* As a crash would: no close, no exit handlers (nor LeakSanitizer). */
	if (no_close)
		_exit(status);
	for (i = 0; i < k; i++)
		hfi1_stats_close(s[i]);
	return status;
}
