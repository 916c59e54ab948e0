/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * softhfi: one hfi1 user context, served in-process. This header is
 * internal to softhfi/, not for the provider (which has softhfi.h): the
 * context that the files below share, and what they call of each other.
 *
 * The expected-receive rules are those of the hfi1 driver's user_exp_rcv.c
 * (TID_UPDATE, TID_FREE, TID_INVAL_READ), its user_pages.c (the pin limit)
 * and file_ops.c (command dispatch, what is copied back and when). The
 * files are named after the driver's:
 * - file_ops.c: a context's life (open, close, the owner after fork()) and
 *   the ioctl dispatch, with the commands that are not expected receive;
 * - user_exp_rcv.c: the RcvArray and its groups, TID_UPDATE, TID_FREE,
 *   TID_INVAL_READ, and the invalidation of entries, with its event;
 * - user_pages.c: pinning and unpinning, the pin limit, the pages pinned;
 * - uaccess.c: copy_from_user() and copy_to_user(), which hfi1 takes from
 *   the kernel (include/linux/uaccess.h);
 * - place.c: the adapter's "DMA" into an entry, the device's part, which
 *   has no driver file;
 * - notifier.c: the MMU notifier, which hfi1 takes from the kernel
 *   (mm/mmu_notifier.c).
 *
 * The means: each entry's pages are an io_uring registered buffer in the
 * slot of the same number (long-term pins, charged to RLIMIT_MEMLOCK);
 * "DMA" into an entry is IORING_OP_READ_FIXED on that slot; the MMU
 * notifier is notifier.c.
 */
#ifndef SOFTHFI_SCTXT_H
#define SOFTHFI_SCTXT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "softhfi.h"
#include "notifier.h"
#include "util.h"

struct soft_group {
	unsigned int base; /* first entry of the group */
	unsigned int used;
	unsigned int map; /* bit i: entry base + i is taken */
	TAILQ_ENTRY(soft_group) link;
};
TAILQ_HEAD(group_list, soft_group);

enum tid_state {
	TID_UNUSED = 0,
	TID_ASSIGNED, /* taken by a TID_UPDATE, not yet pinned */
	TID_PROGRAMMED, /* pinned, takes data */
	TID_INVALIDATED, /* unpinned, waits for TID_FREE */
	TID_UNPINNING, /* invalidated, its pin not yet dropped */
};

/* One RcvArray entry for expected receive. */
struct soft_tid {
	uint64_t vaddr;
	uint32_t npages;
	enum tid_state state;
	struct soft_group *grp;
};

/* A piece of the buffer that one entry maps. */
struct pageset {
	uint32_t idx; /* first page, from the start of the buffer */
	uint32_t count; /* pages, a power of two */
};

struct softhfi_ctxt {
	struct hfi1_drv drv;
	struct softhfi_params params;
	pid_t owner;
	_Atomic int *owner_mark; /* 1 in the owner, 0 in its children */
	size_t page_size;
	bool assigned;

	/*
	 * Protects everything below: the RcvArray, the groups, the
	 * invalidation queue, the pin counts and the scratch arrays. Taken
	 * by the notifier's worker, which applies invalidations.
	 */
	pthread_mutex_t lock;
	struct soft_tid *tids;
	struct soft_group *groups;
	struct group_list group_free; /* no entry taken */
	struct group_list group_used; /* some taken */
	struct group_list group_full; /* all taken */
	unsigned int tid_used; /* entries TID_UPDATE handed out */
	unsigned int tid_limit;
	unsigned int tids_invalid;
	uint64_t tid_n_pinned; /* pages */
	/* What refused the last TID_UPDATE that failed with ENOMEM. */
	struct hfi1_drv_pin_refusal refusal;
	uint64_t invalidations;
	uint64_t overflows; /* drains that found the log wrapped */
	uint32_t *invalid_tids;
	unsigned int invalid_tid_idx;
	struct pageset *psets; /* scratch for TID_UPDATE */
	uint32_t *tidlist; /* scratch for TID_UPDATE and TID_FREE */
	struct iovec *iovs; /* scratch for pinning */
	/*
	 * Entries invalidated whose pins are still to be dropped (see
	 * invalidate_range_locked()), and how many the worker is dropping
	 * outside the lock right now; `unpinned` is signalled when it is done.
	 */
	uint32_t *unpin_pending;
	unsigned int unpin_pending_n;
	unsigned int unpin_busy;
	pthread_cond_t unpinned;
	uint32_t *unpin_work; /* the worker's batch, only the worker's */

	/*
	 * Serialises placements: the ring's submission and completion, and
	 * skip_buf.
	 */
	pthread_mutex_t place_lock;
	struct io_uring ring;
	void *skip_buf; /* HFI1_DRV_PLACE_SKIP_MAX bytes, once needed */
	bool ring_ready;
	struct softhfi_watch watch;
	bool watching;
	void *event_page;
	/*
	 * An event bit went up under ctx->lock and the event fd is still to
	 * be signalled: see ctxt_unlock().
	 */
	bool event_fd_owed;

	/*
	 * The way to user memory (see copy_from_user()): a pipe, empty
	 * between copies, and a memfd for copies out. uaccess_lock keeps a
	 * copy's steps together; it is taken last, under ctx->lock or alone.
	 */
	pthread_mutex_t uaccess_lock;
	int uaccess_pipe[2];
	size_t uaccess_chunk; /* what the empty pipe takes in one write */
	/*
	 * Copies out: our shared mapping of a memfd (see copy_to_user()).
	 * NULL if it could not be set up; they use the pipe then.
	 */
	char *uaccess_out;
	int uaccess_memfd;

	/* The verbs server (sverbs.h), once softhfi_verbs_start() ran. */
	struct sverbs *verbs;
};

static inline struct softhfi_ctxt *to_sctxt(struct hfi1_drv *drv)
{
	return container_of(drv, struct softhfi_ctxt, drv);
}

/*
 * Whether the caller is the process that opened @ctx. owner_mark lives in
 * a MADV_WIPEONFORK page, which reads 0 in every process that got a copy
 * of this address space (fork(), _Fork(), clone() without CLONE_VM,
 * whether or not atfork handlers ran): one load instead of a getpid()
 * system call on every command. A vfork() child shares the address space
 * and passes, but may call nothing but _exit() and exec. Without
 * MADV_WIPEONFORK (before Linux 4.14), getpid().
 */
static inline bool sctxt_owned(const struct softhfi_ctxt *ctx)
{
	if (ctx->owner_mark)
		return atomic_load_explicit(ctx->owner_mark,
					    memory_order_relaxed) == 1;
	return ctx->owner == getpid();
}

/*
 * What the files call of each other, by file; the comments (what a
 * function does, what it must hold) are at the definitions.
 */

/* user_exp_rcv.c */
void ctxt_unlock(struct softhfi_ctxt *ctx);
int tid_to_rcventry(const struct softhfi_ctxt *ctx, uint32_t tidinfo);
void invalidate_range_locked(struct softhfi_watch *w, uint64_t start,
			     uint64_t end, enum softhfi_inval_reason reason);
bool sctxt_programmed(struct softhfi_watch *w, uint64_t start, uint64_t end);
void sctxt_watch_unlock(struct softhfi_watch *w);
void sctxt_after_drain(struct softhfi_watch *w);
int tid_update(struct softhfi_ctxt *ctx, uint64_t uarg);
int tid_free(struct softhfi_ctxt *ctx, uint64_t uarg);
int tid_inval_read(struct softhfi_ctxt *ctx, uint64_t uarg);
void free_tables(struct softhfi_ctxt *ctx);
int alloc_tables(struct softhfi_ctxt *ctx);

/* user_pages.c */
extern _Atomic uint64_t process_pinned_pages;
bool can_pin_locked(struct softhfi_ctxt *ctx, uint64_t npages);
void pin_refused_locked(struct softhfi_ctxt *ctx, uint64_t npages);
void sctxt_pin_refusal(struct hfi1_drv *drv,
		       struct hfi1_drv_pin_refusal *refusal);
void account_pinned_locked(struct softhfi_ctxt *ctx, int64_t npages);
int pin_slots(struct softhfi_ctxt *ctx, unsigned int slot,
	      const struct iovec *iovs, unsigned int nr);
void unpin_entries(struct softhfi_ctxt *ctx, const uint32_t *slots,
		   unsigned int n);

/* uaccess.c */
int copy_from_user(struct softhfi_ctxt *ctx, void *dst, uint64_t src,
		   size_t len);
int copy_to_user(struct softhfi_ctxt *ctx, uint64_t dst, const void *src,
		 size_t len);
int copy_to_user2(struct softhfi_ctxt *ctx, uint64_t dst1, const void *src1,
		  size_t len1, uint64_t dst2, const void *src2, size_t len2);
void uaccess_out_init(struct softhfi_ctxt *ctx);
void uaccess_out_fini(struct softhfi_ctxt *ctx);

/* place.c */
ssize_t sctxt_place(struct hfi1_drv *drv, size_t skip, uint32_t tidinfo,
		    size_t offset, int fd, size_t len);

#endif /* SOFTHFI_SCTXT_H */
