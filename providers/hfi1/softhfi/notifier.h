/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The soft HFI's MMU-notifier stand-in: one userfaultfd per process, in
 * write-protect mode only, that reports munmap, madvise(DONTNEED/FREE) and
 * mremap of watched ranges. A monitor thread reads the events into a
 * lock-free log; every soft context consumes the log at its own pace.
 */
#ifndef SOFTHFI_NOTIFIER_H
#define SOFTHFI_NOTIFIER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

/* Why a range stopped being the memory it was. */
enum softhfi_inval_reason {
	SOFTHFI_INVAL_UNMAP = 1, /* munmap, or brk shrinking the heap */
	SOFTHFI_INVAL_REMOVE = 2, /* madvise(MADV_DONTNEED / MADV_FREE) */
	SOFTHFI_INVAL_REMAP = 3, /* mremap moved it away */
	SOFTHFI_INVAL_OVERFLOW = 4, /* the log wrapped: assume everything */
};

struct softhfi_watch;

/*
 * Called by softhfi_notifier_drain() for each event, with the watch's lock
 * held. [start, end) is the range that is gone; OVERFLOW means events were
 * lost and every range must be assumed gone.
 */
typedef void (*softhfi_inval_fn)(struct softhfi_watch *w, uint64_t start,
				 uint64_t end,
				 enum softhfi_inval_reason reason);

/* A consumer of the event log, embedded in a soft context. */
struct softhfi_watch {
	pthread_mutex_t *lock; /* the owner's lock; drain runs under it */
	/*
	 * Optional: drops w->lock after the worker's drain, for an owner
	 * with work to do as it lets go (pthread_mutex_unlock() if NULL).
	 */
	void (*unlock)(struct softhfi_watch *w);
	softhfi_inval_fn invalidate;
	/*
	 * Optional: whether an entry is programmed over [start, end), with
	 * w->lock held. A range that no watch has anything programmed over
	 * when an event of it arrives is no longer watched (see
	 * unwatch_idle_locked() in notifier.c); a watch without this keeps
	 * every range watched.
	 */
	bool (*programmed)(struct softhfi_watch *w, uint64_t start,
			   uint64_t end);
	/*
	 * Optional: called by the worker after each of its drains, with
	 * w->lock released, for what the drain left to do outside the lock:
	 * wake-ups and slow work (it must still never be needed for the
	 * drain's effects to be visible). Detach waits for it to return.
	 */
	void (*after_drain)(struct softhfi_watch *w);
	/*
	 * The next log sequence to consume. Written under lock (a release
	 * store, after the events before it were applied), read without it
	 * by softhfi_notifier_pending().
	 */
	_Atomic uint64_t cursor;
	/*
	 * The last range watch() registered, and the log sequence up to
	 * which no UNMAP or REMAP over it was logged: a range inside it is
	 * registered already. Under lock; reset by attach.
	 */
	uint64_t reg_start, reg_end, reg_seq;
	uint64_t registrations; /* UFFDIO_REGISTER calls; under lock */
	uint64_t events; /* log records consumed; under lock */
	TAILQ_ENTRY(softhfi_watch) link;
	struct softhfi_notifier *notifier;
};

/*
 * A userfaultfd as the notifier opens its own (close-on-exec, non-blocking,
 * user-mode faults only where the kernel has that), with @features
 * negotiated. Returns the fd or a negative errno.
 */
int softhfi_notifier_open_uffd(uint64_t features);

/*
 * Start consuming events, starting the process's notifier on first use.
 * Returns 0 or a positive errno (ENOSYS or EPERM when userfaultfd is not
 * available to this process).
 */
int softhfi_notifier_attach(struct softhfi_watch *w);
/* Stop consuming; the last detach stops the threads. Not under w->lock. */
void softhfi_notifier_detach(struct softhfi_watch *w);

/*
 * Watch [start, start + len), page-aligned, for unmapping. Returns 0 or a
 * positive errno: EFAULT when part of the range is not mapped, EBUSY when
 * it was unmapped and mapped again while being registered (try again),
 * EOPNOTSUPP when the memory cannot be watched (file mappings userfaultfd
 * refuses). A range inside the last one watched, with no UNMAP or REMAP
 * over that logged since, is known registered and costs no system call;
 * one unmapped but not logged yet is the caller's to catch, with
 * changed_since() after pinning. Caller holds w->lock.
 */
int softhfi_notifier_watch(struct softhfi_watch *w, uint64_t start,
			   uint64_t len);

/* Ranges the process's notifier stopped watching (see programmed). */
uint64_t softhfi_notifier_unregistrations(struct softhfi_watch *w);

/* The sequence number of the next event; compare with changed_since(). */
uint64_t softhfi_notifier_seq(struct softhfi_watch *w);

/*
 * True if an event that overlaps [start, end) was logged at or after
 * sequence @seq (or if the log no longer tells).
 */
bool softhfi_notifier_changed_since(struct softhfi_watch *w, uint64_t seq,
				    uint64_t start, uint64_t end);

/*
 * Apply every event logged so far, including one the monitor is reading
 * right now or the kernel has yet to hand it: once munmap() has freed an
 * address in any thread, its event is applied by the next drain. Caller
 * holds w->lock.
 */
void softhfi_notifier_drain_locked(struct softhfi_watch *w);

/*
 * Apply the events of every unmapping whose munmap() (madvise(),
 * mremap()) returned before the call; one still under way is left to a
 * later drain. No system call. Enough wherever no lookup follows: the
 * driver's own commands. Caller holds w->lock.
 */
void softhfi_notifier_drain_returned_locked(struct softhfi_watch *w);

/*
 * Whether the process's notifier has events @w has not consumed. Caller
 * holds w->lock.
 */
bool softhfi_notifier_pending_locked(struct softhfi_watch *w);

/*
 * The same without w->lock, for a fast path: one system call and a few
 * atomic loads. False means that every unmapping that took effect before
 * the call (whose address another thread may already have mapped again,
 * even if munmap() has not returned yet) has been logged and applied by a
 * drain, and that the effects of that drain are visible to the caller.
 */
bool softhfi_notifier_pending(struct softhfi_watch *w);

/*
 * The same for the unmappings whose munmap() (madvise(), mremap())
 * returned before the call, in this thread or one the caller synchronized
 * with: a few atomic loads, no system call. An address whose munmap() is
 * still under way may already be mapped again and not be counted: not for
 * a lookup.
 */
bool softhfi_notifier_pending_returned(struct softhfi_watch *w);

#endif /* SOFTHFI_NOTIFIER_H */
