// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The MR cache: expected-receive TID registrations of page-aligned ranges,
 * looked up in an interval index (mr_index.c), shared through references,
 * kept on an LRU list while idle, and dropped when the driver says that
 * the memory behind them is gone.
 *
 * An entry's life:
 *  - born on a miss: TID_UPDATE in windows of at most expected_count pages
 *    (the driver refuses more in one call), outside c->lock; then, under
 *    c->lock, registered in the TID owner table and, when the cache is
 *    enabled, in the index; then ops.hold() is told its range;
 *  - in use while refs hold it (nrefs > 0), idle on the LRU list when not;
 *  - evicted (idle, for room or limits), invalidated (the driver's
 *    TID_INVAL_READ named one of its TIDs), or flushed (destroy): it
 *    leaves the index and the owner table under c->lock, its TIDs are
 *    TID_FREEd outside it, ops.release() is told, and it is freed. An
 *    invalidated entry still in use stays allocated, marked invalid,
 *    until its last put.
 *
 * No lookup returns an entry the driver has invalidated: before each
 * lookup the event word is checked (hfi1_drv_events(): every unmapping
 * that freed its address before it is there, returned or not), together
 * with c->draining, which a drain raises before its TID_INVAL_READ clears
 * the bit and lowers once what it read is applied. Either one sends the
 * lookup into hfi1_mrc_drain(), which waits for a drain in progress on
 * c->drain_lock.
 *
 * The driver names invalidated TIDs by tidinfo only. A TID that a miss has
 * programmed but not yet registered has no owner: the drain marks it in
 * c->orphan, and the registration finds the mark, frees the entry (it was
 * born invalid) and tries again. The same mark can come from an entry the
 * cache freed just after the driver queued its TID; the registration that
 * reuses that TID then tries once more for nothing, which is safe.
 *
 * Counters are written under c->lock with a relaxed load and store (no
 * locked read-modify-write on the hit path); readers load them relaxed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "hfi1_tid.h"
#include "util.h"
#include "mr_cache.h"
#include "mr_index.h"

/* VERBS_LOG_ERR: the cache knows no ibverbs header. */
#define MRC_LOG_ERR 1

/* TID_UPDATE's EBUSY: the range was unmapped while it was set up. */
#define MRC_BUSY_RETRIES 8
/*
 * Entries born invalid (unmapped before registration) tried again; stale
 * marks (see the top) can cost a retry each, so allow a few.
 */
#define MRC_BORN_RETRIES 16

struct hfi1_mrc_entry {
	struct mr_index_entry node; /* start, end, access */
	/* Below: under c->lock, except `valid`. */
	LIST_HEAD(, hfi1_mrc_ref) refs;
	/* refs, plus one while a miss registers the entry */
	unsigned int nrefs;
	/* On c->lru while idle; on a victims list while being freed. */
	TAILQ_ENTRY(hfi1_mrc_entry) lru;
	TAILQ_ENTRY(hfi1_mrc_entry) all; /* on c->all while registered */
	bool idle; /* on c->lru */
	bool in_index;
	bool held; /* ops.hold() took its range: release it when freed */
	_Atomic bool valid; /* false once invalidated or flushed */
	unsigned int page_shift;
	uint32_t ntids;
	uint32_t *page_off; /* first page of each TID, from node.start */
	uint32_t tids[]; /* ntids tidinfo words, then page_off */
};

TAILQ_HEAD(entry_list, hfi1_mrc_entry);

/*
 * The owner of a TID whose entry was detached and whose TID_FREE has not
 * returned yet: the driver cannot have handed the TID out again, so an
 * invalidation of it is about the detached entry and is ignored. Never
 * dereferenced.
 */
static char zombie_mark;
#define ZOMBIE ((struct hfi1_mrc_entry *)&zombie_mark)

struct hfi1_mrc {
	/* Guards everything below up to drain_lock. */
	pthread_mutex_t lock;
	struct mr_index index;
	struct entry_list lru; /* idle entries, oldest first */
	struct entry_list all; /* every registered entry */
	struct hfi1_mrc_entry **owner; /* by TID number */
	uint8_t *orphan; /* by TID number: invalidated with no owner */
	struct hfi1_mrc_limits limits;
	struct hfi1_mrc_counters *ctr;
	/* limits.enabled, for hfi1_mrc_get() to read without c->lock */
	_Atomic bool enabled;

	/* Serializes drains; taken before c->lock. */
	pthread_mutex_t drain_lock;
	uint32_t *inval_buf; /* TID_INVAL_READ's list, under drain_lock */
	/* Raised by a drain from before its TID_INVAL_READ to its apply. */
	_Atomic int draining;

	/* Constant after create. */
	struct hfi1_drv *drv;
	struct hfi1_mrc_ops ops;
	uint32_t expected_count;
	unsigned int page_shift;
	uint64_t page_mask;
	struct hfi1_mrc_counters own_ctr; /* when the caller gives none */
};

static void mrc_log(struct hfi1_mrc *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void mrc_log(struct hfi1_mrc *c, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c->ops.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->ops.log(c->ops.arg, level, msg);
}

/* A counter update; caller holds c->lock (the only writer). */
static inline void ctr_add(_Atomic uint64_t *ctr, int64_t delta)
{
	atomic_store_explicit(
		ctr, atomic_load_explicit(ctr, memory_order_relaxed) + delta,
		memory_order_relaxed);
}

static inline struct hfi1_mrc_entry *to_entry(struct mr_index_entry *n)
{
	return container_of(n, struct hfi1_mrc_entry, node);
}

static inline uint64_t entry_bytes(const struct hfi1_mrc_entry *e)
{
	return e->node.end - e->node.start;
}

/* The TID number of a tidinfo: its RcvArray entry. */
static inline uint32_t tid_number(uint32_t tidinfo)
{
	return hfi1_tid_rcventry(tidinfo);
}

/* Whether invalidations are pending or being applied: see the top. */
static inline bool mrc_pending(struct hfi1_mrc *c)
{
	return (hfi1_drv_events(c->drv) & HFI1_EVENT_TID_MMU_NOTIFY) ||
	       atomic_load(&c->draining);
}

/*
 * mrc_pending() for the unmappings whose munmap() returned before the
 * call: no system call (hfi1_drv_events_returned()). c->draining covers a
 * drain whose TID_INVAL_READ took the bit but has not applied it yet.
 */
static inline bool mrc_pending_returned(struct hfi1_mrc *c)
{
	return (hfi1_drv_events_returned(c->drv) & HFI1_EVENT_TID_MMU_NOTIFY) ||
	       atomic_load(&c->draining);
}

/* Entries */

/* Take a reference on @e for @ref. Caller holds c->lock. */
static void take_ref_locked(struct hfi1_mrc *c, struct hfi1_mrc_entry *e,
			    struct hfi1_mrc_ref *ref)
{
	if (e->idle) {
		TAILQ_REMOVE(&c->lru, e, lru);
		e->idle = false;
		ctr_add(&c->ctr->idle_entries, -1);
	}
	e->nrefs++;
	LIST_INSERT_HEAD(&e->refs, ref, link);
	ref->entry = e;
}

/*
 * Take @e out of the cache (index, LRU, owner table, counters) and put it
 * on @victims, whose TIDs free_victims() frees outside c->lock. Caller
 * holds c->lock; @e has no refs.
 */
static void detach_locked(struct hfi1_mrc *c, struct hfi1_mrc_entry *e,
			  struct entry_list *victims)
{
	uint32_t i;

	if (e->in_index) {
		mr_index_remove(&c->index, &e->node);
		e->in_index = false;
	}
	if (e->idle) {
		TAILQ_REMOVE(&c->lru, e, lru);
		e->idle = false;
		ctr_add(&c->ctr->idle_entries, -1);
	}
	TAILQ_REMOVE(&c->all, e, all);
	for (i = 0; i < e->ntids; i++)
		c->owner[tid_number(e->tids[i])] = ZOMBIE;
	ctr_add(&c->ctr->entries, -1);
	ctr_add(&c->ctr->pinned_bytes, -(int64_t)entry_bytes(e));
	ctr_add(&c->ctr->tids_used, -(int64_t)e->ntids);
	TAILQ_INSERT_TAIL(victims, e, lru);
}

/* TID_FREE @n tidinfo words. Not under c->lock. */
static void free_tids(struct hfi1_mrc *c, uint32_t *tids, uint32_t n)
{
	struct hfi1_tid_info tinfo = {
		.tidlist = (uintptr_t)tids,
		.tidcnt = n,
	};

	if (!n)
		return;
	if (hfi1_drv_ioctl(c->drv, HFI1_IOCTL_TID_FREE, &tinfo))
		mrc_log(c, MRC_LOG_ERR,
			"hfi1: MR cache: TID_FREE of %u TIDs failed: %s", n,
			strerror(errno));
}

/*
 * TID_FREE and free @victims. Caller holds c->drain_lock, so that no drain
 * runs between the TID_FREE and the owners' ZOMBIE going: a tidinfo read
 * after that is ambiguous (the TID may have an owner again) and is taken
 * for the new owner's, by the drain the caller runs next.
 */
static void release_victims_dl(struct hfi1_mrc *c, struct entry_list *victims)
{
	struct hfi1_mrc_entry *e;
	uint32_t i, t;

	TAILQ_FOREACH(e, victims, lru)
	{
		free_tids(c, e->tids, e->ntids);
	}
	pthread_mutex_lock(&c->lock);
	TAILQ_FOREACH(e, victims, lru)
	{
		for (i = 0; i < e->ntids; i++) {
			t = tid_number(e->tids[i]);
			if (c->owner[t] == ZOMBIE)
				c->owner[t] = NULL;
		}
	}
	pthread_mutex_unlock(&c->lock);
	while ((e = TAILQ_FIRST(victims))) {
		TAILQ_REMOVE(victims, e, lru);
		if (e->held)
			c->ops.release(e->node.start, e->node.end, c->ops.arg);
		free(e);
	}
}

static void drain_dl(struct hfi1_mrc *c, bool all);

/*
 * Free the entries detach_locked() collected. Their TIDs may have been
 * invalidated, and queued, since the last drain: the drain that follows
 * the TID_FREE under the same c->drain_lock takes such stale tidinfo words
 * out of the queue before they can be taken for a later owner's (only a
 * TID handed out again within that window can be mistaken: a spurious
 * invalidation or retry, never a missed one). That drain need not wait
 * for unmappings still under way: the driver applies what its notifier
 * owes before TID_FREE frees a slot, and a free slot is invalidated no
 * more, so every such word is queued, its bit raised, when TID_FREE
 * returns. Not under c->lock.
 */
static void free_victims(struct hfi1_mrc *c, struct entry_list *victims)
{
	if (TAILQ_EMPTY(victims))
		return;
	pthread_mutex_lock(&c->drain_lock);
	release_victims_dl(c, victims);
	drain_dl(c, false);
	pthread_mutex_unlock(&c->drain_lock);
}

/* TID_FREE TIDs no entry owns (a miss undone), as free_victims(). */
static void release_tids(struct hfi1_mrc *c, uint32_t *tids, uint32_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&c->drain_lock);
	free_tids(c, tids, n);
	drain_dl(c, false);
	pthread_mutex_unlock(&c->drain_lock);
}

static bool over_limits_locked(struct hfi1_mrc *c)
{
	uint64_t entries, bytes;

	entries = atomic_load_explicit(&c->ctr->entries, memory_order_relaxed);
	bytes = atomic_load_explicit(&c->ctr->pinned_bytes,
				     memory_order_relaxed);
	return (c->limits.max_entries && entries > c->limits.max_entries) ||
	       (c->limits.max_bytes && bytes > c->limits.max_bytes);
}

/* Evict idle entries, oldest first, until within limits. c->lock held. */
static void enforce_limits_locked(struct hfi1_mrc *c,
				  struct entry_list *victims)
{
	struct hfi1_mrc_entry *e;

	while (over_limits_locked(c) && (e = TAILQ_FIRST(&c->lru))) {
		detach_locked(c, e, victims);
		ctr_add(&c->ctr->evictions, 1);
	}
}

/* Evict the oldest idle entry; false if there is none. */
static bool evict_one(struct hfi1_mrc *c)
{
	struct entry_list victims = TAILQ_HEAD_INITIALIZER(victims);
	struct hfi1_mrc_entry *e;

	pthread_mutex_lock(&c->lock);
	e = TAILQ_FIRST(&c->lru);
	if (e) {
		detach_locked(c, e, &victims);
		ctr_add(&c->ctr->evictions, 1);
	}
	pthread_mutex_unlock(&c->lock);
	free_victims(c, &victims);
	return e;
}

/*
 * @e is no longer usable: out of the index at once, invalid for the data
 * path, its users told. Idle, it goes to @victims. Caller holds c->lock.
 */
static void invalidate_locked(struct hfi1_mrc *c, struct hfi1_mrc_entry *e,
			      enum hfi1_mrc_reason reason,
			      struct entry_list *victims)
{
	struct hfi1_mrc_ref *ref;

	atomic_store_explicit(&e->valid, false, memory_order_release);
	if (e->in_index) {
		mr_index_remove(&c->index, &e->node);
		e->in_index = false;
	}
	if (!e->nrefs) {
		detach_locked(c, e, victims);
		return;
	}
	LIST_FOREACH(ref, &e->refs, link)
	{
		if (c->ops.invalidated)
			c->ops.invalidated(ref, reason, c->ops.arg);
	}
}

/* Drain */

/* Apply @n invalidated tidinfo words. Caller holds c->lock. */
static void apply_invalidations_locked(struct hfi1_mrc *c, const uint32_t *tids,
				       uint32_t n, struct entry_list *victims)
{
	struct hfi1_mrc_entry *e;
	uint32_t i, t;

	for (i = 0; i < n; i++) {
		t = tid_number(tids[i]);
		if (t >= c->expected_count)
			continue;
		e = c->owner[t];
		if (e == ZOMBIE)
			continue; /* about an entry being freed */
		if (!e) {
			/* A miss programmed it and has not registered it. */
			c->orphan[t] = 1;
			continue;
		}
		if (!atomic_load_explicit(&e->valid, memory_order_relaxed))
			continue; /* another of its TIDs came first */
		ctr_add(&c->ctr->invalidations, 1);
		if (e->nrefs)
			ctr_add(&c->ctr->invalidated_in_use, 1);
		invalidate_locked(c, e, HFI1_MRC_INVAL_UNMAPPED, victims);
	}
}

/*
 * Apply what the driver has queued: with @all, every unmapping that took
 * effect before the call (hfi1_drv_events()), else those that returned
 * before it (hfi1_drv_events_returned(), no system call). Caller holds
 * c->drain_lock.
 */
static void drain_dl(struct hfi1_mrc *c, bool all)
{
	struct entry_list victims = TAILQ_HEAD_INITIALIZER(victims);
	struct hfi1_tid_info tinfo;
	__u64 events;

	for (;;) {
		/* Before the bit is cleared: see mrc_pending(). */
		atomic_store(&c->draining, 1);
		events = all ? hfi1_drv_events(c->drv) :
			       hfi1_drv_events_returned(c->drv);
		if (!(events & HFI1_EVENT_TID_MMU_NOTIFY))
			break;
		/*
		 * TID_INVAL_READ clears the bit with the queue, atomically;
		 * ACK_EVENT for it could only lose an event raised between.
		 */
		memset(&tinfo, 0, sizeof(tinfo));
		tinfo.tidlist = (uintptr_t)c->inval_buf;
		if (hfi1_drv_ioctl(c->drv, HFI1_IOCTL_TID_INVAL_READ, &tinfo)) {
			mrc_log(c, MRC_LOG_ERR,
				"hfi1: MR cache: TID_INVAL_READ failed: %s",
				strerror(errno));
			break;
		}
		pthread_mutex_lock(&c->lock);
		apply_invalidations_locked(c, c->inval_buf,
					   tinfo.tidcnt < c->expected_count ?
						   tinfo.tidcnt :
						   c->expected_count,
					   &victims);
		pthread_mutex_unlock(&c->lock);
		atomic_store(&c->draining, 0);
		/* The next round takes what these leave stale: see above. */
		release_victims_dl(c, &victims);
	}
	atomic_store(&c->draining, 0);
}

void hfi1_mrc_drain(struct hfi1_mrc *c)
{
	pthread_mutex_lock(&c->drain_lock);
	drain_dl(c, true);
	pthread_mutex_unlock(&c->drain_lock);
}

void hfi1_mrc_drain_returned(struct hfi1_mrc *c)
{
	if (!mrc_pending_returned(c))
		return;
	pthread_mutex_lock(&c->drain_lock);
	drain_dl(c, false);
	pthread_mutex_unlock(&c->drain_lock);
}

/* Miss */

static uint32_t tids_in_use(struct hfi1_mrc *c)
{
	return atomic_load_explicit(&c->ctr->tids_used, memory_order_relaxed);
}

/* RLIMIT_MEMLOCK for a log line: its bytes, or "unlimited". */
static const char *rlimit_str(char *buf, size_t size, uint64_t rlimit)
{
	if (rlimit == RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, size, "%" PRIu64 " bytes", rlimit);
	return buf;
}

/* What refused the pinning, with its figures, for a log line. */
static void pin_refusal_str(char *buf, size_t size,
			    const struct hfi1_drv_pin_refusal *r)
{
	char lim[32];

	switch (r->limit) {
	case HFI1_DRV_PIN_RLIMIT:
		snprintf(buf, size,
			 "out of pinnable memory: RLIMIT_MEMLOCK is %s, this "
			 "process has %" PRIu64 " bytes pinned, %" PRIu64
			 " more asked",
			 rlimit_str(lim, sizeof(lim), r->rlimit_memlock),
			 r->process_pinned, r->asked);
		break;
	case HFI1_DRV_PIN_SHARE:
		snprintf(buf, size,
			 "out of pinnable memory: this context's share of "
			 "RLIMIT_MEMLOCK is %" PRIu64 " bytes "
			 "(RLIMIT_MEMLOCK %" PRIu64 " / %u user contexts / 4), "
			 "%" PRIu64 " bytes pinned, %" PRIu64 " more asked",
			 r->share, r->rlimit_memlock, r->user_contexts,
			 r->context_pinned, r->asked);
		break;
	case HFI1_DRV_PIN_CACHE_SIZE:
		snprintf(buf, size,
			 "out of pinnable memory: a context may pin "
			 "%" PRIu64 " bytes (cache_size %" PRIu64 " MiB%s), "
			 "%" PRIu64 " bytes pinned, %" PRIu64 " more asked",
			 r->cache_size, r->cache_size >> 20,
			 r->cap_ipc_lock ? "; RLIMIT_MEMLOCK does not apply "
					   "with CAP_IPC_LOCK" :
					   "",
			 r->context_pinned, r->asked);
		break;
	case HFI1_DRV_PIN_KERNEL:
		if (r->cap_ipc_lock) {
			snprintf(buf, size,
				 "out of memory: the kernel could not pin "
				 "%" PRIu64 " bytes more",
				 r->asked);
			break;
		}
		snprintf(buf, size,
			 "out of pinnable memory: the kernel refused to pin "
			 "%" PRIu64 " bytes more: its RLIMIT_MEMLOCK of %s "
			 "counts the pins of every process of this user, this "
			 "process has %" PRIu64 " bytes pinned",
			 r->asked,
			 rlimit_str(lim, sizeof(lim), r->rlimit_memlock),
			 r->process_pinned);
		break;
	default:
		snprintf(buf, size,
			 "out of pinnable memory (the driver does not say "
			 "which limit)");
		break;
	}
}

/*
 * The one log line of a registration that nothing could make room for:
 * the limit the driver hit (@err ENOSPC: the TIDs, @ntids of them taken
 * by this registration; ENOMEM: the pin limit, as the driver says).
 */
static void log_no_room(struct hfi1_mrc *c, uint64_t start, uint64_t end,
			int err, uint32_t ntids)
{
	struct hfi1_drv_pin_refusal r;
	char why[320];

	if (err == ENOSPC) {
		snprintf(why, sizeof(why),
			 "out of expected-receive TIDs: %u of this context's "
			 "%u are held by cached registrations, %u by this one",
			 tids_in_use(c), c->expected_count, ntids);
	} else {
		hfi1_drv_pin_refusal(c->drv, &r);
		pin_refusal_str(why, sizeof(why), &r);
	}
	mrc_log(c, MRC_LOG_ERR,
		"hfi1: MR cache: cannot register %" PRIu64 " bytes at %#" PRIx64
		": %s; nothing left to evict (%" PRIu64 " entries in use, "
		"%" PRIu64 " bytes pinned by this context's cache)",
		end - start, start, why,
		(uint64_t)atomic_load_explicit(&c->ctr->entries,
					       memory_order_relaxed),
		(uint64_t)atomic_load_explicit(&c->ctr->pinned_bytes,
					       memory_order_relaxed));
}

/*
 * TID_UPDATE all of [start, end) into @tids: windows of at most
 * expected_count pages, on after partial success, evicting on ENOSPC and
 * ENOMEM. On failure, what this call programmed is freed again. Returns
 * 0 or a positive errno. Not under c->lock.
 */
static int program(struct hfi1_mrc *c, uint64_t start, uint64_t end,
		   uint32_t *tids, uint32_t *ntids)
{
	uint64_t npages = (end - start) >> c->page_shift, done = 0, win;
	unsigned int busy = 0;
	bool drained = false;
	uint32_t n = 0;
	int ret, err;

	while (done < npages) {
		struct hfi1_tid_info tinfo = { 0 };

		win = npages - done;
		if (win > c->expected_count)
			win = c->expected_count;
		tinfo.vaddr = start + (done << c->page_shift);
		tinfo.length = win << c->page_shift;
		tinfo.tidlist = (uintptr_t)(tids + n);
		ret = hfi1_drv_ioctl(c->drv, HFI1_IOCTL_TID_UPDATE, &tinfo);
		if (!ret && tinfo.tidcnt) {
			n += tinfo.tidcnt;
			done += tinfo.length >> c->page_shift;
			busy = 0;
			continue;
		}
		err = ret ? errno : ENOSPC;
		if (err == ENOSPC || err == ENOMEM) {
			/*
			 * Invalidations first: they free idle entries' TIDs
			 * and pins, and an entry evicted while its
			 * invalidation is queued leaves a stale tidinfo
			 * behind (see the top of the file).
			 */
			if (!drained && mrc_pending(c)) {
				hfi1_mrc_drain(c);
				drained = true;
				continue;
			}
			if (evict_one(c)) {
				drained = false;
				continue;
			}
			log_no_room(c, start, end, err, n);
			err = ENOMEM;
		} else if (err == EBUSY) {
			/* Unmapped while being set up: see if it stays. */
			if (++busy < MRC_BUSY_RETRIES)
				continue;
			err = EFAULT;
		}
		release_tids(c, tids, n);
		return err;
	}
	*ntids = n;
	return 0;
}

static struct hfi1_mrc_entry *entry_alloc(struct hfi1_mrc *c, uint64_t start,
					  uint64_t end, uint32_t access,
					  const uint32_t *tids, uint32_t n)
{
	struct hfi1_mrc_entry *e;
	uint32_t i, page = 0;

	e = malloc(sizeof(*e) + 2 * sizeof(uint32_t) * n);
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->node.start = start;
	e->node.end = end;
	e->node.access = access;
	LIST_INIT(&e->refs);
	e->page_shift = c->page_shift;
	e->ntids = n;
	e->page_off = e->tids + n;
	memcpy(e->tids, tids, sizeof(uint32_t) * n);
	for (i = 0; i < n; i++) {
		e->page_off[i] = page;
		page += HFI1_TID_GET(tids[i], LEN);
	}
	atomic_init(&e->valid, true);
	return e;
}

/*
 * Whether a drain saw one of @e's TIDs invalidated before @e was
 * registered as their owner; the marks are consumed. c->lock held.
 */
static bool born_invalid_locked(struct hfi1_mrc *c,
				const struct hfi1_mrc_entry *e)
{
	bool born_invalid = false;
	uint32_t i, t;

	for (i = 0; i < e->ntids; i++) {
		t = tid_number(e->tids[i]);
		if (c->orphan[t]) {
			born_invalid = true;
			c->orphan[t] = 0;
		}
	}
	return born_invalid;
}

/*
 * Register @e, just programmed, with one reference held by the miss
 * itself (no ref linked yet). c->lock held.
 */
static void register_locked(struct hfi1_mrc *c, struct hfi1_mrc_entry *e)
{
	uint32_t i;

	for (i = 0; i < e->ntids; i++)
		c->owner[tid_number(e->tids[i])] = e;
	TAILQ_INSERT_TAIL(&c->all, e, all);
	if (c->limits.enabled) {
		mr_index_insert(&c->index, &e->node);
		e->in_index = true;
	}
	e->nrefs = 1;
	ctr_add(&c->ctr->entries, 1);
	ctr_add(&c->ctr->pinned_bytes, entry_bytes(e));
	ctr_add(&c->ctr->tids_used, e->ntids);
}

/*
 * The miss of hfi1_mrc_get(). @lookup says that the caller applied what
 * was pending before it looked, so that a covering entry that another
 * thread's miss registered meanwhile may be taken.
 */
static int get_miss(struct hfi1_mrc *c, uint64_t start, uint64_t end,
		    uint32_t access, bool lookup, struct hfi1_mrc_ref *ref)
{
	struct entry_list victims = TAILQ_HEAD_INITIALIZER(victims);
	struct mr_index_entry *node;
	struct hfi1_mrc_entry *e;
	unsigned int born = 0;
	uint32_t *tids, n = 0;
	int err;

	/* Every TID of the context, at most, whatever the windows. */
	tids = malloc(sizeof(*tids) * c->expected_count);
	if (!tids)
		return ENOMEM;
again:
	err = program(c, start, end, tids, &n);
	if (err) {
		if (err == ENOMEM) {
			pthread_mutex_lock(&c->lock);
			ctr_add(&c->ctr->failures, 1);
			pthread_mutex_unlock(&c->lock);
		}
		goto out;
	}
	e = entry_alloc(c, start, end, access, tids, n);
	if (!e) {
		release_tids(c, tids, n);
		err = ENOMEM;
		goto out;
	}

	pthread_mutex_lock(&c->lock);
	/* Another thread's miss may have registered a covering entry. */
	node = NULL;
	if (lookup && c->limits.enabled)
		node = mr_index_find_covering(&c->index, start, end, access);
	if (node || born_invalid_locked(c, e)) {
		if (node) {
			take_ref_locked(c, to_entry(node), ref);
			ctr_add(&c->ctr->hits, 1);
			born_invalid_locked(c, e);
		}
		pthread_mutex_unlock(&c->lock);
		release_tids(c, e->tids, e->ntids);
		free(e);
		if (node)
			goto out;
		goto retry;
	}
	register_locked(c, e);
	pthread_mutex_unlock(&c->lock);
	/* The miss's reference keeps @e until the lock below. */
	e->held = c->ops.hold && c->ops.release &&
		  !c->ops.hold(e->node.start, e->node.end, c->ops.arg);

	/*
	 * An invalidation of its TIDs between TID_UPDATE and registration
	 * may still be queued in the driver: apply it before handing @e
	 * out. TID_UPDATE failed EBUSY for an unmapping that took effect
	 * before it returned, so those left are concurrent with this call:
	 * the ones that returned are applied here, without a system call.
	 * One a drain applies before take_ref_locked() below shows in
	 * e->valid; one applied later tells @ref.
	 */
	if (mrc_pending_returned(c))
		hfi1_mrc_drain(c);

	pthread_mutex_lock(&c->lock);
	if (!atomic_load_explicit(&e->valid, memory_order_relaxed)) {
		if (!--e->nrefs)
			detach_locked(c, e, &victims);
		pthread_mutex_unlock(&c->lock);
		free_victims(c, &victims);
		goto retry;
	}
	e->nrefs--;
	take_ref_locked(c, e, ref);
	ctr_add(&c->ctr->misses, 1);
	enforce_limits_locked(c, &victims);
	pthread_mutex_unlock(&c->lock);
	free_victims(c, &victims);
	goto out;

retry:
	err = EFAULT;
	if (++born < MRC_BORN_RETRIES)
		goto again;
out:
	free(tids);
	return err;
}

/* The API */

int hfi1_mrc_get(struct hfi1_mrc *c, uint64_t addr, uint64_t length,
		 uint32_t access, struct hfi1_mrc_ref *ref)
{
	struct mr_index_entry *node = NULL;
	uint64_t start, end;
	bool lookup;

	if (!length || addr + length < addr ||
	    addr + length > UINT64_MAX - c->page_mask)
		return EINVAL;
	start = addr & ~c->page_mask;
	end = (addr + length + c->page_mask) & ~c->page_mask;

	/*
	 * Applied before the lookup, so that it cannot return an entry over
	 * memory unmapped before the call. A disabled cache looks nothing
	 * up (get_miss() neither, told so), so it needs none of it: a
	 * cache enabled meanwhile is looked at by the next call.
	 */
	lookup = atomic_load_explicit(&c->enabled, memory_order_relaxed);
	if (lookup && mrc_pending(c))
		hfi1_mrc_drain(c);

	pthread_mutex_lock(&c->lock);
	if (lookup && c->limits.enabled)
		node = mr_index_find_covering(&c->index, start, end, access);
	if (node) {
		take_ref_locked(c, to_entry(node), ref);
		ctr_add(&c->ctr->hits, 1);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	return get_miss(c, start, end, access, lookup, ref);
}

void hfi1_mrc_put(struct hfi1_mrc *c, struct hfi1_mrc_ref *ref)
{
	struct entry_list victims = TAILQ_HEAD_INITIALIZER(victims);
	struct hfi1_mrc_entry *e = ref->entry;

	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	LIST_REMOVE(ref, link);
	ref->entry = NULL;
	if (!--e->nrefs) {
		if (e->in_index) {
			TAILQ_INSERT_TAIL(&c->lru, e, lru);
			e->idle = true;
			ctr_add(&c->ctr->idle_entries, 1);
			if (over_limits_locked(c))
				enforce_limits_locked(c, &victims);
		} else {
			/* Invalidated, or the cache is disabled. */
			detach_locked(c, e, &victims);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!TAILQ_EMPTY(&victims))
		free_victims(c, &victims);
}

int hfi1_mrc_set_limits(struct hfi1_mrc *c,
			const struct hfi1_mrc_limits *limits)
{
	struct entry_list victims = TAILQ_HEAD_INITIALIZER(victims);
	struct hfi1_mrc_entry *e, *next;

	if (!limits)
		return EINVAL;
	pthread_mutex_lock(&c->lock);
	c->limits = *limits;
	atomic_store_explicit(&c->enabled, limits->enabled,
			      memory_order_relaxed);
	if (!limits->enabled) {
		/* No more hits: in-use entries go at their last put. */
		for (e = TAILQ_FIRST(&c->all); e; e = next) {
			next = TAILQ_NEXT(e, all);
			if (e->in_index) {
				mr_index_remove(&c->index, &e->node);
				e->in_index = false;
			}
			if (e->idle) {
				detach_locked(c, e, &victims);
				ctr_add(&c->ctr->evictions, 1);
			}
		}
	} else {
		enforce_limits_locked(c, &victims);
	}
	pthread_mutex_unlock(&c->lock);
	free_victims(c, &victims);
	return 0;
}

void hfi1_mrc_get_limits(struct hfi1_mrc *c, struct hfi1_mrc_limits *limits)
{
	pthread_mutex_lock(&c->lock);
	*limits = c->limits;
	pthread_mutex_unlock(&c->lock);
}

/* The cache's memory, without a lock: see hfi1_mrc_destroy(). */
static void mrc_free(struct hfi1_mrc *c)
{
	free(c->inval_buf);
	free(c->orphan);
	free(c->owner);
	free(c);
}

struct hfi1_mrc *hfi1_mrc_create(struct hfi1_drv *drv,
				 const struct hfi1_mrc_limits *limits,
				 struct hfi1_mrc_counters *counters,
				 const struct hfi1_mrc_ops *ops)
{
	struct hfi1_mrc_counters zero = { 0 };
	struct hfi1_mrc *c;
	long page = sysconf(_SC_PAGESIZE);
	uint32_t expected;

	/* hfi1 (and PSM2): expected TIDs are rcvtids less the eager ones. */
	expected = drv ? drv->ctxt_info.rcvtids - drv->ctxt_info.egrtids : 0;
	if (!drv || !limits || !expected ||
	    drv->ctxt_info.egrtids > drv->ctxt_info.rcvtids || page <= 0) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->owner = calloc(expected, sizeof(*c->owner));
	c->orphan = calloc(expected, sizeof(*c->orphan));
	c->inval_buf = calloc(expected, sizeof(*c->inval_buf));
	if (!c->owner || !c->orphan || !c->inval_buf)
		goto err_free;

	c->drv = drv;
	c->expected_count = expected;
	c->page_mask = page - 1;
	c->page_shift = __builtin_ctzl(page);
	c->limits = *limits;
	atomic_init(&c->enabled, limits->enabled);
	if (ops)
		c->ops = *ops;
	c->ctr = counters ? counters : &c->own_ctr;
	*c->ctr = zero;
	mr_index_init(&c->index);
	TAILQ_INIT(&c->lru);
	TAILQ_INIT(&c->all);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->drain_lock, NULL);
	return c;

err_free:
	mrc_free(c);
	errno = ENOMEM;
	return NULL;
}

/* hfi1_mrc_destroy() in a forked child: its copy of the memory only. */
static void mrc_drop(struct hfi1_mrc *c)
{
	struct hfi1_mrc_entry *e;

	while ((e = TAILQ_FIRST(&c->all))) {
		TAILQ_REMOVE(&c->all, e, all);
		free(e);
	}
	mrc_free(c);
}

void hfi1_mrc_destroy(struct hfi1_mrc *c)
{
	struct entry_list victims = TAILQ_HEAD_INITIALIZER(victims);
	struct hfi1_mrc_entry *e;
	struct hfi1_mrc_ref *ref;

	if (!c)
		return;
	if (!hfi1_drv_owned(c->drv)) {
		mrc_drop(c);
		return;
	}
	pthread_mutex_lock(&c->lock);
	while ((e = TAILQ_FIRST(&c->all))) {
		atomic_store_explicit(&e->valid, false, memory_order_release);
		while ((ref = LIST_FIRST(&e->refs))) {
			LIST_REMOVE(ref, link);
			if (c->ops.invalidated)
				c->ops.invalidated(ref, HFI1_MRC_INVAL_FLUSHED,
						   c->ops.arg);
			ref->entry = NULL;
		}
		e->nrefs = 0;
		detach_locked(c, e, &victims);
	}
	pthread_mutex_unlock(&c->lock);
	free_victims(c, &victims);
	pthread_mutex_destroy(&c->drain_lock);
	pthread_mutex_destroy(&c->lock);
	mrc_free(c);
}

/* For the data path */

uint64_t hfi1_mrc_entry_start(const struct hfi1_mrc_entry *e)
{
	return e->node.start;
}

uint64_t hfi1_mrc_entry_end(const struct hfi1_mrc_entry *e)
{
	return e->node.end;
}

bool hfi1_mrc_entry_valid(const struct hfi1_mrc_entry *e)
{
	return atomic_load_explicit(&e->valid, memory_order_acquire);
}

int hfi1_mrc_entry_tid(const struct hfi1_mrc_entry *e, uint64_t addr,
		       uint32_t *tidinfo, uint32_t *offset, uint32_t *left)
{
	uint64_t page, off;
	uint32_t lo = 0, hi, mid;

	if (!hfi1_mrc_entry_valid(e))
		return ESTALE;
	if (addr < e->node.start || addr >= e->node.end || !e->ntids)
		return ERANGE;
	page = (addr - e->node.start) >> e->page_shift;
	/* The last TID whose first page is at or before @page. */
	hi = e->ntids - 1;
	while (lo < hi) {
		mid = (lo + hi + 1) / 2;
		if (e->page_off[mid] <= page)
			lo = mid;
		else
			hi = mid - 1;
	}
	off = addr - e->node.start -
	      ((uint64_t)e->page_off[lo] << e->page_shift);
	*tidinfo = e->tids[lo];
	*offset = off;
	*left = ((uint64_t)HFI1_TID_GET(e->tids[lo], LEN) << e->page_shift) -
		off;
	return 0;
}
