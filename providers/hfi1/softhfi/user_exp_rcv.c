// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: expected receive, as the hfi1 driver's user_exp_rcv.c has it:
 * the RcvArray and its groups, TID_UPDATE, TID_FREE and TID_INVAL_READ,
 * the invalidation of entries whose memory goes away (hfi1's MMU
 * notifier callback) and the event it raises; the context's stats.
 *
 * The rules:
 * - TID_UPDATE: page-aligned vaddr and a non-zero length or EINVAL; more
 *   pages than the context has entries is EINVAL; past the pin limit is
 *   ENOMEM. The buffer is split into runs of physically contiguous pages,
 *   each cut into power-of-two pieces of at most 2 MiB, one RcvArray entry
 *   per piece. Entries come from groups of 8: whole free groups first for
 *   whole multiples of 8, then partly used groups. Fewer entries than
 *   pieces is partial success (tidcnt and length say what was
 *   programmed); none at all is ENOSPC.
 * - The tidinfo word: LEN (pages) in bits 10:0, CTRL (1 even, 2 odd entry
 *   of a pair) in bits 21:20, IDX (the pair) in bits 31:22.
 * - TID_FREE: CTRL 0 or 3, or an entry past expected_count, is EINVAL; an
 *   entry not programmed is EBADF. It stops at the first error.
 * - When memory behind an entry goes away the entry is invalidated at once
 *   (takes no data; its pin is dropped right after, see
 *   invalidate_range_locked()) and its tidinfo queued; the queue going
 *   from empty to non-empty raises HFI1_EVENT_TID_MMU_NOTIFY.
 *   TID_INVAL_READ drains the queue and clears the bit; the entry is free
 *   only after TID_FREE.
 *
 * Where the soft HFI differs, on purpose:
 * - hfi1 only acts on munmap (MMU_NOTIFY_UNMAP) and so misses
 *   madvise(MADV_DONTNEED/MADV_FREE); we invalidate on those too.
 * - ACK_EVENT never clears TID_MMU_NOTIFY while invalidations are queued,
 *   and a TID_INVAL_READ whose list cannot be written (EFAULT) keeps them.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/queue.h>

#include "sctxt.h"

/* Signal the event fd; non-blocking: a full counter is readable anyway. */
static void signal_event_fd(struct softhfi_ctxt *ctx)
{
	uint64_t one = 1;

	if (write(ctx->drv.event_fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: the counter is full, hence readable */
}

/*
 * Drop ctx->lock, then signal the event fd if an event bit went up under
 * it. Not under the lock: the signal wakes the thread that acts on the
 * event, which would first wait for the lock (traced: some 10 us per
 * event). Whoever sees the bit after the unlock also finds the fd
 * readable, unless it looks between the two.
 */
void ctxt_unlock(struct softhfi_ctxt *ctx)
{
	bool owed = ctx->event_fd_owed;

	ctx->event_fd_owed = false;
	pthread_mutex_unlock(&ctx->lock);
	if (owed)
		signal_event_fd(ctx);
}

/*
 * Wait for the worker's unpins, which releases ctx->lock meanwhile: a
 * signal still owed goes out first, under the lock on this rare path, so
 * that no one sees the bit for long without the fd. Caller holds
 * ctx->lock.
 */
static void cond_wait_unpinned_locked(struct softhfi_ctxt *ctx)
{
	if (ctx->event_fd_owed) {
		ctx->event_fd_owed = false;
		signal_event_fd(ctx);
	}
	pthread_cond_wait(&ctx->unpinned, &ctx->lock);
}

/* The entry a tidinfo names, or -EINVAL as unprogram_rcvarray() says. */
int tid_to_rcventry(const struct softhfi_ctxt *ctx, uint32_t tidinfo)
{
	unsigned int ctrl = HFI1_TID_GET(tidinfo, CTRL);
	unsigned int rcventry;

	if (ctrl == 0 || ctrl == 3)
		return -EINVAL;
	rcventry = hfi1_tid_rcventry(tidinfo);
	if (rcventry >= ctx->params.expected_count)
		return -EINVAL;
	return rcventry;
}

/*
 * find_phys_blocks(): cut the buffer at every physical discontinuity (the
 * soft HFI's model: every params.contig_pages pages), then each run into
 * power-of-two pieces of at most SOFTHFI_MAX_RUN_PAGES. Returns the count.
 */
static unsigned int find_page_sets(const struct softhfi_ctxt *ctx,
				   uint64_t vaddr, unsigned int npages,
				   struct pageset *sets)
{
	unsigned int contig = ctx->params.contig_pages;
	unsigned int pageidx = 0, setcount = 0;
	uint64_t first_page = vaddr / ctx->page_size;

	while (pageidx < npages) {
		/* Runs end on contig-page boundaries of the address. */
		unsigned int run = contig - (first_page + pageidx) % contig;

		if (run > npages - pageidx)
			run = npages - pageidx;
		while (run) {
			unsigned int piece = run;

			if (piece > SOFTHFI_MAX_RUN_PAGES)
				piece = SOFTHFI_MAX_RUN_PAGES;
			else
				piece = 1u << (31 - __builtin_clz(piece));
			sets[setcount].idx = pageidx;
			sets[setcount].count = piece;
			setcount++;
			pageidx += piece;
			run -= piece;
		}
	}
	return setcount;
}

/* Caller holds ctx->lock. */
static void group_move(struct group_list *from, struct group_list *to,
		       struct soft_group *grp)
{
	TAILQ_REMOVE(from, grp, link);
	TAILQ_INSERT_TAIL(to, grp, link);
}

/*
 * program_rcvarray(): take up to @count free entries of @grp for the next
 * page sets, in entry order. Returns how many it took. Caller holds
 * ctx->lock.
 */
static unsigned int program_group_locked(struct softhfi_ctxt *ctx,
					 struct soft_group *grp,
					 unsigned int count, uint64_t vaddr,
					 unsigned int nsets,
					 unsigned int *tididx)
{
	unsigned int taken = 0, i;

	for (i = 0; i < SOFTHFI_GROUP_SIZE && taken < count; i++) {
		unsigned int rcventry = grp->base + i;
		struct soft_tid *tid = &ctx->tids[rcventry];
		struct pageset *set = &ctx->psets[*tididx];

		if (grp->map & (1u << i))
			continue;
		if (*tididx >= nsets)
			break;
		tid->vaddr = vaddr + (uint64_t)set->idx * ctx->page_size;
		tid->npages = set->count;
		tid->state = TID_ASSIGNED;
		tid->grp = grp;
		grp->map |= 1u << i;
		grp->used++;
		ctx->tidlist[(*tididx)++] = hfi1_tid_make(rcventry, set->count);
		taken++;
	}
	return taken;
}

/*
 * Hand entries to the first @nsets page sets as hfi1 does: whole free
 * groups while a whole group's worth remains, then partly used groups,
 * opening a free group when none is partly used. Returns the entries
 * handed out (<= @nsets). Caller holds ctx->lock.
 */
static unsigned int assign_entries_locked(struct softhfi_ctxt *ctx,
					  uint64_t vaddr, unsigned int nsets)
{
	unsigned int ngroups = nsets / SOFTHFI_GROUP_SIZE;
	unsigned int tididx = 0;
	struct soft_group *grp, *next;

	while (ngroups && !TAILQ_EMPTY(&ctx->group_free)) {
		grp = TAILQ_FIRST(&ctx->group_free);
		program_group_locked(ctx, grp, SOFTHFI_GROUP_SIZE, vaddr, nsets,
				     &tididx);
		group_move(&ctx->group_free, &ctx->group_full, grp);
		ngroups--;
	}

	while (tididx < nsets) {
		if (TAILQ_EMPTY(&ctx->group_used)) {
			if (TAILQ_EMPTY(&ctx->group_free))
				break;
			grp = TAILQ_FIRST(&ctx->group_free);
			group_move(&ctx->group_free, &ctx->group_used, grp);
		}
		for (grp = TAILQ_FIRST(&ctx->group_used); grp; grp = next) {
			next = TAILQ_NEXT(grp, link);
			program_group_locked(ctx, grp, nsets - tididx, vaddr,
					     nsets, &tididx);
			if (grp->used == SOFTHFI_GROUP_SIZE)
				group_move(&ctx->group_used, &ctx->group_full,
					   grp);
			if (tididx >= nsets)
				break;
		}
	}
	return tididx;
}

/*
 * Return an entry to its group (clear_tid_node()), unpinning it first if
 * it still is. Caller holds ctx->lock.
 */
static void release_entry_locked(struct softhfi_ctxt *ctx,
				 unsigned int rcventry)
{
	struct soft_tid *tid = &ctx->tids[rcventry];
	struct soft_group *grp = tid->grp;

	if (tid->state == TID_PROGRAMMED) {
		pin_slots(ctx, rcventry, NULL, 1);
		account_pinned_locked(ctx, -(int64_t)tid->npages);
	} else if (tid->state == TID_INVALIDATED) {
		ctx->tids_invalid--;
	}
	tid->state = TID_UNUSED;
	tid->grp = NULL;

	grp->used--;
	grp->map &= ~(1u << (rcventry - grp->base));
	if (grp->used == SOFTHFI_GROUP_SIZE - 1)
		group_move(&ctx->group_full, &ctx->group_used, grp);
	else if (!grp->used)
		group_move(&ctx->group_used, &ctx->group_free, grp);
}

/* Assigned but not yet pinned entries go back. Caller holds ctx->lock. */
static void unassign_locked(struct softhfi_ctxt *ctx, unsigned int from,
			    unsigned int to)
{
	unsigned int i;

	for (i = from; i < to; i++) {
		release_entry_locked(ctx,
				     tid_to_rcventry(ctx, ctx->tidlist[i]));
	}
}

/*
 * Pin the entries of tidlist[0..n) in slot-contiguous batches. Returns how
 * many are pinned (a prefix), or a negative errno if none is. Caller holds
 * ctx->lock.
 */
static int pin_entries_locked(struct softhfi_ctxt *ctx, unsigned int n)
{
	unsigned int i = 0, pinned = 0;

	while (i < n) {
		int first = tid_to_rcventry(ctx, ctx->tidlist[i]);
		unsigned int nr = 0;
		int ret;

		while (i + nr < n &&
		       tid_to_rcventry(ctx, ctx->tidlist[i + nr]) ==
			       first + (int)nr) {
			struct soft_tid *tid = &ctx->tids[first + nr];

			ctx->iovs[nr].iov_base = (void *)(uintptr_t)tid->vaddr;
			ctx->iovs[nr].iov_len =
				(size_t)tid->npages * ctx->page_size;
			nr++;
		}
		ret = pin_slots(ctx, first, ctx->iovs, nr);
		if (ret < 0)
			return pinned ? (int)pinned : ret;
		pinned += ret;
		i += ret;
		if ((unsigned int)ret < nr)
			break;
	}
	return pinned;
}

/* The pins of @n entries are dropped. Caller holds ctx->lock. */
static void unpin_done_locked(struct softhfi_ctxt *ctx, const uint32_t *slots,
			      unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct soft_tid *tid = &ctx->tids[slots[i]];

		account_pinned_locked(ctx, -(int64_t)tid->npages);
		tid->state = TID_INVALIDATED;
	}
}

/* Drop the pins still pending. Caller holds ctx->lock. */
static void unpin_pending_locked(struct softhfi_ctxt *ctx)
{
	if (!ctx->unpin_pending_n)
		return;
	unpin_entries(ctx, ctx->unpin_pending, ctx->unpin_pending_n);
	unpin_done_locked(ctx, ctx->unpin_pending, ctx->unpin_pending_n);
	ctx->unpin_pending_n = 0;
}

/*
 * Drop every pin that invalidations left, waiting for the worker's batch
 * first: afterwards no entry is TID_UNPINNING. May release ctx->lock
 * while it waits, so the caller must hold nothing in the scratch arrays.
 * Returns whether there was anything to wait for or drop. Caller holds
 * ctx->lock, in the owning process (a child has no worker to wait for).
 */
static bool unpin_settle_locked(struct softhfi_ctxt *ctx)
{
	bool any = ctx->unpin_busy || ctx->unpin_pending_n;

	while (ctx->unpin_busy)
		cond_wait_unpinned_locked(ctx);
	unpin_pending_locked(ctx);
	return any;
}

/*
 * hfi1_user_exp_rcv_setup(). Fills ctx->tidlist and @tinfo's tidcnt and
 * length. Returns 0 or a positive errno. Caller holds ctx->lock.
 */
static int exp_rcv_setup_locked(struct softhfi_ctxt *ctx,
				struct hfi1_tid_info *tinfo)
{
	uint64_t vaddr = tinfo->vaddr, seq, mapped_pages = 0;
	unsigned int npages, nsets, pageset_count, tididx, i;
	int pinned, err;

	if (vaddr & (ctx->page_size - 1) || !tinfo->length)
		return EINVAL;
	if (vaddr + tinfo->length < vaddr)
		return EFAULT;
	npages = (tinfo->length + ctx->page_size - 1) / ctx->page_size;
	if (npages > ctx->params.expected_count)
		return EINVAL;
	/* Pages of invalidated entries count until their pins are dropped. */
	if (!can_pin_locked(ctx, npages) &&
	    (!unpin_settle_locked(ctx) || !can_pin_locked(ctx, npages)))
		return ENOMEM;

	/* Watch before pinning, so that no unmapping slips between. */
	seq = softhfi_notifier_seq(&ctx->watch);
	err = softhfi_notifier_watch(&ctx->watch, vaddr,
				     (uint64_t)npages * ctx->page_size);
	if (err)
		return err;

	nsets = find_page_sets(ctx, vaddr, npages, ctx->psets);
	pageset_count = nsets;
	if (ctx->tid_used + nsets > ctx->tid_limit)
		pageset_count = ctx->tid_limit - ctx->tid_used;
	if (!pageset_count)
		return ENOSPC;

	tididx = assign_entries_locked(ctx, vaddr, pageset_count);
	if (!tididx)
		return ENOSPC;

	pinned = pin_entries_locked(ctx, tididx);
	if (pinned < 0) {
		unassign_locked(ctx, 0, tididx);
		/* io_uring says ENOMEM past RLIMIT_MEMLOCK, as hfi1 does. */
		if (pinned == -ENOMEM)
			pin_refused_locked(ctx, npages);
		return -pinned;
	}
	unassign_locked(ctx, pinned, tididx);
	tididx = pinned;
	for (i = 0; i < tididx; i++) {
		struct soft_tid *tid =
			&ctx->tids[tid_to_rcventry(ctx, ctx->tidlist[i])];

		tid->state = TID_PROGRAMMED;
		mapped_pages += tid->npages;
	}
	account_pinned_locked(ctx, mapped_pages);
	ctx->tid_used += tididx;

	/* An invalidation during setup: hfi1's mmu_interval_read_retry(). */
	if (softhfi_notifier_changed_since(&ctx->watch, seq, vaddr,
					   vaddr + (uint64_t)npages *
							   ctx->page_size)) {
		for (i = 0; i < tididx; i++)
			release_entry_locked(
				ctx, tid_to_rcventry(ctx, ctx->tidlist[i]));
		ctx->tid_used -= tididx;
		return EBUSY;
	}

	tinfo->tidcnt = tididx;
	tinfo->length = mapped_pages * ctx->page_size;
	return 0;
}

/*
 * Set @bit in the event word; if it was clear, the event fd is owed a
 * signal, which ctxt_unlock() sends. Caller holds ctx->lock.
 */
static void raise_event_locked(struct softhfi_ctxt *ctx, __u64 bit)
{
	__u64 old;

	old = atomic_fetch_or((_Atomic __u64 *)ctx->drv.events, bit);
	if (!(old & bit))
		ctx->event_fd_owed = true;
}

/*
 * The notifier's callback: invalidate every programmed entry that
 * overlaps [start, end). Caller (the drain) holds ctx->lock.
 *
 * An entry is invalidated, queued and the event raised here; its pin is
 * dropped later (unpin_pending), by the notifier's worker outside
 * ctx->lock (sctxt_after_drain()), or by whoever needs it dropped first
 * (unpin_settle_locked()). Dropping a pin can take tens of microseconds
 * (io_uring may free the pages), and neither the event nor
 * TID_INVAL_READ has to wait for it. No data lands in an entry from the
 * moment it is invalidated: placement checks the state under ctx->lock.
 * The pages count as pinned until the pin is dropped, which TID_FREE,
 * the stats and a TID_UPDATE that the pin limit would refuse wait for.
 */
void invalidate_range_locked(struct softhfi_watch *w, uint64_t start,
			     uint64_t end, enum softhfi_inval_reason reason)
{
	struct softhfi_ctxt *ctx = container_of(w, struct softhfi_ctxt, watch);
	unsigned int i, programmed = ctx->tid_used - ctx->tids_invalid;

	/* Events were lost: [0, UINT64_MAX) takes every entry below. */
	if (reason == SOFTHFI_INVAL_OVERFLOW)
		ctx->overflows++;
	for (i = 0; programmed && i < ctx->params.expected_count; i++) {
		struct soft_tid *tid = &ctx->tids[i];
		uint64_t tid_end;

		if (tid->state != TID_PROGRAMMED)
			continue;
		programmed--;
		tid_end = tid->vaddr + (uint64_t)tid->npages * ctx->page_size;
		if (tid_end <= start || tid->vaddr >= end)
			continue;

		/* No more data lands here from now on. */
		tid->state = TID_UNPINNING;
		ctx->unpin_pending[ctx->unpin_pending_n++] = i;
		ctx->tids_invalid++;
		ctx->invalidations++;

		if (ctx->invalid_tid_idx < ctx->params.expected_count) {
			ctx->invalid_tids[ctx->invalid_tid_idx] =
				hfi1_tid_make(i, tid->npages);
			if (!ctx->invalid_tid_idx)
				raise_event_locked(ctx,
						   HFI1_EVENT_TID_MMU_NOTIFY);
			ctx->invalid_tid_idx++;
		}
	}
}

/*
 * The notifier's question before it stops watching a range: is an entry
 * programmed over [start, end), or being set up? (An invalidated one
 * needs no more events.) Caller holds ctx->lock.
 */
bool sctxt_programmed(struct softhfi_watch *w, uint64_t start, uint64_t end)
{
	struct softhfi_ctxt *ctx = container_of(w, struct softhfi_ctxt, watch);
	unsigned int i;

	for (i = 0; i < ctx->params.expected_count; i++) {
		const struct soft_tid *tid = &ctx->tids[i];

		if ((tid->state == TID_PROGRAMMED ||
		     tid->state == TID_ASSIGNED) &&
		    tid->vaddr < end &&
		    start < tid->vaddr + (uint64_t)tid->npages * ctx->page_size)
			return true;
	}
	return false;
}

/* The worker's unlock after its drain: the signal goes with it. */
void sctxt_watch_unlock(struct softhfi_watch *w)
{
	ctxt_unlock(container_of(w, struct softhfi_ctxt, watch));
}

/*
 * The worker, after applying events: drop the pins invalidations left,
 * outside ctx->lock. The entries stay TID_UNPINNING meanwhile, so no one
 * frees or reuses their slots (TID_FREE waits for `unpinned`).
 */
void sctxt_after_drain(struct softhfi_watch *w)
{
	struct softhfi_ctxt *ctx = container_of(w, struct softhfi_ctxt, watch);
	unsigned int n;

	pthread_mutex_lock(&ctx->lock);
	n = ctx->unpin_pending_n;
	memcpy(ctx->unpin_work, ctx->unpin_pending, n * sizeof(uint32_t));
	ctx->unpin_pending_n = 0;
	ctx->unpin_busy = n;
	ctxt_unlock(ctx);
	if (!n)
		return;

	/*
	 * Let the threads just woken run first (the event's consumer, and
	 * the unmapping thread the monitor let go): on a CPU they share with
	 * us, unpinning (some 50 us for 1 MiB) would otherwise come before
	 * the event, and before the munmap() that it held up returns.
	 */
	sched_yield();
	unpin_entries(ctx, ctx->unpin_work, n);

	pthread_mutex_lock(&ctx->lock);
	unpin_done_locked(ctx, ctx->unpin_work, n);
	ctx->unpin_busy = 0;
	pthread_cond_broadcast(&ctx->unpinned);
	ctxt_unlock(ctx);
}

int tid_update(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_tid_info tinfo;
	unsigned int i;
	int err;

	err = copy_from_user(ctx, &tinfo, uarg, sizeof(tinfo));
	if (err)
		return err;

	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	err = exp_rcv_setup_locked(ctx, &tinfo);
	if (!err) {
		err = copy_to_user2(
			ctx, tinfo.tidlist, ctx->tidlist,
			sizeof(__u32) * tinfo.tidcnt,
			uarg + offsetof(struct hfi1_tid_info, tidcnt),
			&tinfo.tidcnt,
			sizeof(tinfo.tidcnt) + sizeof(tinfo.length));
		if (err) {
			for (i = 0; i < tinfo.tidcnt; i++)
				release_entry_locked(
					ctx,
					tid_to_rcventry(ctx, ctx->tidlist[i]));
			ctx->tid_used -= tinfo.tidcnt;
		}
	}
	ctxt_unlock(ctx);
	return err;
}

int tid_free(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_tid_info tinfo;
	unsigned int tididx;
	int err, rcventry;

	err = copy_from_user(ctx, &tinfo, uarg, sizeof(tinfo));
	if (err)
		return err;

	pthread_mutex_lock(&ctx->lock);
	/* An entry's slot is not freed before its pin is dropped. */
	unpin_settle_locked(ctx);
	if (tinfo.tidcnt > ctx->tid_used) {
		err = EINVAL;
		goto out;
	}
	err = copy_from_user(ctx, ctx->tidlist, tinfo.tidlist,
			     sizeof(__u32) * tinfo.tidcnt);
	if (err)
		goto out;
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	unpin_pending_locked(ctx);
	for (tididx = 0; tididx < tinfo.tidcnt; tididx++) {
		rcventry = tid_to_rcventry(ctx, ctx->tidlist[tididx]);
		if (rcventry < 0) {
			err = EINVAL;
			break;
		}
		if (ctx->tids[rcventry].state == TID_UNUSED) {
			err = EBADF;
			break;
		}
		release_entry_locked(ctx, rcventry);
	}
	ctx->tid_used -= tididx;
	tinfo.tidcnt = tididx;
	if (!err)
		err = copy_to_user(
			ctx, uarg + offsetof(struct hfi1_tid_info, tidcnt),
			&tinfo.tidcnt, sizeof(tinfo.tidcnt));
out:
	ctxt_unlock(ctx);
	return err;
}

int tid_inval_read(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_tid_info tinfo;
	int err;

	err = copy_from_user(ctx, &tinfo, uarg, sizeof(tinfo));
	if (err)
		return err;

	pthread_mutex_lock(&ctx->lock);
	/*
	 * What unmappings that returned queued, as hfi1's queue holds; a
	 * lookup first waits for those under way (sync_events).
	 */
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	tinfo.tidcnt = ctx->invalid_tid_idx;
	/* Written before the queue is emptied: EFAULT loses nothing. */
	err = copy_to_user2(ctx, tinfo.tidlist, ctx->invalid_tids,
			    sizeof(__u32) * tinfo.tidcnt,
			    uarg + offsetof(struct hfi1_tid_info, tidcnt),
			    &tinfo.tidcnt, sizeof(tinfo.tidcnt));
	if (!err && ctx->invalid_tid_idx) {
		ctx->invalid_tid_idx = 0;
		atomic_fetch_and((_Atomic __u64 *)ctx->drv.events,
				 ~(__u64)HFI1_EVENT_TID_MMU_NOTIFY);
	}
	ctxt_unlock(ctx);
	return err;
}

void free_tables(struct softhfi_ctxt *ctx)
{
	free(ctx->tids);
	free(ctx->groups);
	free(ctx->invalid_tids);
	free(ctx->psets);
	free(ctx->tidlist);
	free(ctx->iovs);
	free(ctx->unpin_pending);
	free(ctx->unpin_work);
}

int alloc_tables(struct softhfi_ctxt *ctx)
{
	unsigned int n = ctx->params.expected_count, i;

	ctx->tids = calloc(n, sizeof(*ctx->tids));
	ctx->groups = calloc(n / SOFTHFI_GROUP_SIZE, sizeof(*ctx->groups));
	ctx->invalid_tids = calloc(n, sizeof(*ctx->invalid_tids));
	ctx->psets = calloc(n, sizeof(*ctx->psets));
	ctx->tidlist = calloc(n, sizeof(*ctx->tidlist));
	ctx->iovs = calloc(n, sizeof(*ctx->iovs));
	ctx->unpin_pending = calloc(n, sizeof(*ctx->unpin_pending));
	ctx->unpin_work = calloc(n, sizeof(*ctx->unpin_work));
	if (!ctx->tids || !ctx->groups || !ctx->invalid_tids || !ctx->psets ||
	    !ctx->tidlist || !ctx->iovs || !ctx->unpin_pending ||
	    !ctx->unpin_work) {
		free_tables(ctx);
		return ENOMEM;
	}
	TAILQ_INIT(&ctx->group_free);
	TAILQ_INIT(&ctx->group_used);
	TAILQ_INIT(&ctx->group_full);
	for (i = 0; i < n / SOFTHFI_GROUP_SIZE; i++) {
		ctx->groups[i].base = i * SOFTHFI_GROUP_SIZE;
		TAILQ_INSERT_TAIL(&ctx->group_free, &ctx->groups[i], link);
	}
	ctx->tid_limit = n;
	return 0;
}

void softhfi_get_stats(struct hfi1_drv *drv, struct softhfi_stats *stats)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	memset(stats, 0, sizeof(*stats));
	pthread_mutex_lock(&ctx->lock);
	if (ctx->assigned && sctxt_owned(ctx)) {
		softhfi_notifier_drain_locked(&ctx->watch);
		/* Invalidated pages no longer count once the event is seen. */
		unpin_settle_locked(ctx);
	}
	stats->tids_used = ctx->tid_used;
	stats->tids_invalid = ctx->tids_invalid;
	stats->inval_queued = ctx->invalid_tid_idx;
	stats->pinned_pages = ctx->tid_n_pinned;
	stats->invalidations = ctx->invalidations;
	stats->overflows = ctx->overflows;
	stats->uffd_registrations = ctx->watch.registrations;
	stats->events = ctx->watch.events;
	stats->uffd_unregistrations =
		ctx->watching ? softhfi_notifier_unregistrations(&ctx->watch) :
				0;
	ctxt_unlock(ctx);
}
