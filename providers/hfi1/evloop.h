/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: a context's event thread. The parts of the provider that must
 * act without the application calling in register a file descriptor and a
 * callback before the thread starts: the MR cache its driver's event fd
 * (invalidations), the soft backend its port watch. The thread polls them
 * and calls back; it knows none of them.
 */
#ifndef HFI1_EVLOOP_H
#define HFI1_EVLOOP_H

#include <stdbool.h>

struct hfi1_context;
struct hfi1_evloop;

/*
 * Called on the event thread when @fd is readable (or has an error).
 * Returns false when there is nothing more to watch on @fd: the thread
 * stops polling it.
 */
typedef bool (*hfi1_evloop_fn)(void *arg);

/* NULL with errno set. */
struct hfi1_evloop *hfi1_evloop_create(struct hfi1_context *ctx);
/*
 * Watch @fd (the caller keeps it open until hfi1_evloop_destroy()). Only
 * before hfi1_evloop_start(); 0 or ENOSPC.
 */
int hfi1_evloop_add(struct hfi1_evloop *loop, int fd, hfi1_evloop_fn fn,
		    void *arg);
/* Start the thread, if any fd was added; 0 or an errno. */
int hfi1_evloop_start(struct hfi1_evloop *loop);
/* Stop the thread and wait for it: no callback runs after. NULL is fine. */
void hfi1_evloop_destroy(struct hfi1_evloop *loop);
/*
 * hfi1_evloop_destroy() for a forked child's copy: the thread is the
 * parent's (fork() copies only the calling thread), and the stop fd the
 * parent's thread polls, so that stopping it would stop the parent's.
 * Frees the child's copy only. NULL is fine.
 */
void hfi1_evloop_drop(struct hfi1_evloop *loop);

#endif /* HFI1_EVLOOP_H */
