/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The MR cache: expected-receive TID registrations of page-aligned ranges,
 * shared by every MR whose range a registration covers with compatible
 * access. One cache per hfi1 user context (struct hfi1_drv). It knows no
 * ibverbs type: the provider embeds a struct hfi1_mrc_ref in its MR.
 *
 * Locks:
 *  - c->lock (a mutex) guards the index, the LRU list of idle entries, the
 *    TID owner table and the counters' writes. Never held across a call
 *    into the driver interface (Documentation/mr-cache.md, "Locking and
 *    cost").
 *  - c->drain_lock serializes drains (TID_INVAL_READ, ACK_EVENT, applying
 *    the list); taken before c->lock, never the other way round.
 */
#ifndef HFI1_MR_CACHE_H
#define HFI1_MR_CACHE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "hfi1_drv.h"
#include "hfi1_stats_file.h" /* struct hfi1_mrc_counters */

struct hfi1_mrc;
struct hfi1_mrc_entry;

/* Why an entry stopped being usable; the values are hfi1dv.h's. */
enum hfi1_mrc_reason {
	/* The driver invalidated it (TID_INVAL_READ): the memory was
	 * unmapped, remapped or discarded (munmap, free, madvise, mremap). */
	HFI1_MRC_INVAL_UNMAPPED = 1,
	/* The cache was torn down under it (context closed, device gone). */
	HFI1_MRC_INVAL_FLUSHED = 2,
};

/*
 * The counters, struct hfi1_mrc_counters, are laid out by the stats file
 * format (hfi1_stats_file.h): the cache writes them where it is told.
 */

struct hfi1_mrc_limits {
	bool enabled; /* false: every get() misses, every last put() frees */
	uint64_t max_entries; /* cached entries (in use + idle); 0: no limit */
	uint64_t max_bytes; /* cached bytes (in use + idle); 0: no limit */
};

/* A user of an entry (the provider embeds one in each MR). */
struct hfi1_mrc_ref {
	struct hfi1_mrc_entry *entry; /* set by hfi1_mrc_get() */
	LIST_ENTRY(hfi1_mrc_ref) link; /* on the entry's users, c->lock */
};

struct hfi1_mrc_ops {
	/*
	 * The entry @ref holds was invalidated. Called with c->lock held,
	 * from whichever thread drains: must not block and must not call
	 * into the cache. (The provider marks its MR invalid and posts the
	 * async event.)
	 */
	void (*invalidated)(struct hfi1_mrc_ref *ref,
			    enum hfi1_mrc_reason reason, void *arg);
	/* One log line; level is VERBS_LOG_* . May be NULL. */
	void (*log)(void *arg, int level, const char *msg);
	/*
	 * Optional: the cache holds [start, end) pinned from now on (an
	 * entry was registered): 0, or an errno and then no release; and
	 * no longer (the entry's TIDs were freed). Not under c->lock. (The
	 * provider keeps libibverbs' fork protection on what the cache
	 * holds, as on an MR.)
	 */
	int (*hold)(uint64_t start, uint64_t end, void *arg);
	void (*release)(uint64_t start, uint64_t end, void *arg);
	void *arg;
};

/*
 * A cache over @drv (the caller keeps @drv open until destroy). NULL with
 * errno set.
 */
struct hfi1_mrc *hfi1_mrc_create(struct hfi1_drv *drv,
				 const struct hfi1_mrc_limits *limits,
				 struct hfi1_mrc_counters *counters,
				 const struct hfi1_mrc_ops *ops);
/*
 * TID_FREEs everything; refs still held are told HFI1_MRC_INVAL_FLUSHED.
 * In a process that does not own the driver's context (a forked child,
 * hfi1_drv_owned()) it frees the child's copy of the cache only: the TIDs,
 * the pinned pages and the counters are the parent's, so no TID_FREE, no
 * counter and no ops call; nor any lock, which a thread of the parent may
 * have held at fork().
 */
void hfi1_mrc_destroy(struct hfi1_mrc *c);

/* Apply new limits, evicting idle entries to fit; 0 or EINVAL. */
int hfi1_mrc_set_limits(struct hfi1_mrc *c,
			const struct hfi1_mrc_limits *limits);
void hfi1_mrc_get_limits(struct hfi1_mrc *c, struct hfi1_mrc_limits *limits);

/*
 * Take a reference on an entry covering [addr, addr + length), rounded out
 * to pages, with access ⊇ @access: a cached one (a hit) or a new one (a
 * miss: TID_UPDATE in windows of at most expected_count pages, continuing
 * after partial success; on ENOSPC or ENOMEM, evict idle LRU entries and
 * retry; when nothing is left to evict, ENOMEM and one log line naming
 * the limit hit, the TIDs or the part of the pin limit the driver says
 * refused (hfi1_drv_pin_refusal()), with its figures).
 * Pending invalidations are applied before the lookup (on the soft HFI one
 * system call and a few atomic loads when none); a disabled cache looks
 * nothing up and skips that.
 * Returns 0 or a positive errno: EINVAL (length 0, wraps), EFAULT (not
 * mapped, or not writable: TID pins are for the device to write),
 * EOPNOTSUPP (memory the driver cannot watch), ENOMEM.
 */
int hfi1_mrc_get(struct hfi1_mrc *c, uint64_t addr, uint64_t length,
		 uint32_t access, struct hfi1_mrc_ref *ref);
/* Drop the reference; the entry goes idle (LRU) or is freed. */
void hfi1_mrc_put(struct hfi1_mrc *c, struct hfi1_mrc_ref *ref);

/*
 * Apply pending invalidations now, if any (the provider's event thread
 * calls it when the driver's event fd fires). Not under c->lock.
 */
void hfi1_mrc_drain(struct hfi1_mrc *c);
/*
 * The same for the unmappings whose munmap() (madvise(), mremap())
 * returned before the call, in this thread or one it synchronized with:
 * enough before a put that owes the application the invalidation of
 * memory it unmapped while holding the ref. A few atomic loads, no system
 * call and no lock when nothing is pending. Not for a lookup: see
 * hfi1_mrc_get(). Not under c->lock.
 */
void hfi1_mrc_drain_returned(struct hfi1_mrc *c);

/* For the data path; valid while the caller holds a ref on @e. */
uint64_t hfi1_mrc_entry_start(const struct hfi1_mrc_entry *e);
uint64_t hfi1_mrc_entry_end(const struct hfi1_mrc_entry *e);
/* False once invalidated (an acquire load; no lock). */
bool hfi1_mrc_entry_valid(const struct hfi1_mrc_entry *e);
/*
 * The TID that maps byte @addr of @e: its tidinfo, @addr's offset in it
 * and the bytes left in it from there. 0, ERANGE if @addr is outside @e,
 * ESTALE if @e was invalidated. hfi1_drv_place() rechecks under the
 * driver's lock, so a race with an invalidation is ESTALE there.
 */
int hfi1_mrc_entry_tid(const struct hfi1_mrc_entry *e, uint64_t addr,
		       uint32_t *tidinfo, uint32_t *offset, uint32_t *left);

#endif /* HFI1_MR_CACHE_H */
