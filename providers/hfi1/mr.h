/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: memory regions over the MR cache (mr.c): the MR objects, their
 * keys, the history of invalidations hfi1dv reads, and what a context
 * keeps for them.
 */
#ifndef HFI1_MR_H
#define HFI1_MR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hfi1.h"
#include "mr_cache.h"

/*
 * One translation of an MR: its hold on a cache entry and the registration
 * it serves, constant while the ref is taken. An MR has two, so that
 * rereg_mr can take the new translation before it lets go of the old one.
 */
struct hfi1_mr_ref {
	struct hfi1_mrc_ref mrc;
	struct hfi1_mr *mr;
	struct hfi1_pd *pd;
	uint64_t addr; /* as the application gave it */
	uint64_t length;
	uint64_t iova; /* the MR's address for work requests */
	int access; /* IBV_ACCESS_* as requested */
	uint32_t key; /* lkey == rkey */
	/* Why the cache invalidated the entry; 0 while it is valid. */
	_Atomic uint32_t reason;
	/* The event for this invalidation was posted (once only). */
	atomic_flag posted;
};

/*
 * A memory region over the MR cache. MR objects are never freed while
 * the context lives: they are kept in chunks of the context's MR table, and
 * a deregistered one goes back to the table's free list, so that
 * registration allocates nothing and a key lookup is a few loads.
 */
struct hfi1_mr {
	struct verbs_mr vmr;
	struct hfi1_mr_ref refs[2];
	/* The ref that backs the MR now: refs[0] or refs[1]. */
	struct hfi1_mr_ref *_Atomic active;
	/*
	 * The key while registered; 0 while not (free, or changing under
	 * rereg_mr), which no lookup matches. dereg_mr takes it with an
	 * exchange, so that of two deregs of an MR one finds it 0.
	 */
	_Atomic uint32_t key;
	/*
	 * The engine's uses in flight (hfi1_mr_get()): dereg and rereg
	 * wait for them before they let the translation go, as rdmavt waits
	 * on an MR's refcount.
	 */
	atomic_uint inflight;
	uint32_t slot; /* index in the MR table */
	uint32_t gen; /* of the last key: 1..255 */
	struct hfi1_mr *next_free; /* on the table's free list, table lock */
};

/*
 * MR keys: slot << 8 | generation (1..255, so never 0). A deregistered
 * slot goes to the tail of a FIFO and is reused only once the FIFO holds
 * HFI1_MR_KEY_REUSE_DELAY slots (or no fresh slot is left), so a key comes
 * back only after many registrations.
 */
#define HFI1_MR_KEY_GEN_BITS 8
#define HFI1_MR_CHUNK 256 /* MR objects allocated at a time */
#define HFI1_MR_CHUNKS (HFI1_MAX_MR / HFI1_MR_CHUNK)
#define HFI1_MR_KEY_REUSE_DELAY 1024

struct hfi1_mr_table {
	/* A spinlock: held for a few loads and stores, never across a call. */
	pthread_spinlock_t lock;
	/* Written under lock, read without it by hfi1_mr_lookup(). */
	struct hfi1_mr *_Atomic chunks[HFI1_MR_CHUNKS];
	/* The fields below: lock. */
	uint32_t fresh; /* slots below this one were used at least once */
	struct hfi1_mr *free_head, *free_tail; /* FIFO of free slots */
	uint32_t free_count;
};

/* The last HFI1DV_MR_EVENT_HISTORY invalidations of MRs, for hfi1dv. */
struct hfi1_mr_event_rec {
	uint32_t key; /* 0: unused */
	uint32_t reason;
	uint64_t addr;
	uint64_t length;
};

struct hfi1_mr_history {
	pthread_spinlock_t lock; /* protects the fields below */
	struct hfi1_mr_event_rec *recs; /* a ring of HFI1DV_MR_EVENT_HISTORY */
	uint32_t next; /* where the next record goes */
};

/* A context's MRs: present where the backend has the MR cache. */
struct hfi1_mr_state {
	struct hfi1_mrc *mrc; /* the MR cache over ctx->drv */
	struct hfi1_mrc_ops mrc_ops;
	struct hfi1_mr_table table;
	struct hfi1_mr_history history;
};

static inline struct hfi1_mr *to_hfi1_mr(struct ibv_mr *ibmr)
{
	return container_of(ibmr, struct hfi1_mr, vmr.ibv_mr);
}

/*
 * After ctx->drv and ctx->stats are open and before the event thread
 * starts: the MR table, the history, the cache (its counters in
 * ctx->stats); registers the driver's event fd with ctx->evloop. 0 or an
 * errno.
 */
int hfi1_mr_init(struct hfi1_context *ctx);
/* After the event thread stopped; nothing if hfi1_mr_init() was not run. */
void hfi1_mr_cleanup(struct hfi1_context *ctx);

/*
 * The data path's key check: the MR @key names, if it is registered in
 * @pd (any PD if NULL), covers [iova, iova + len) and allows @access
 * (remote: IBV_ACCESS_REMOTE_*; local: 0 or IBV_ACCESS_LOCAL_WRITE). 0, or
 * ENOENT (no such key), EACCES (PD or access), ERANGE (outside the MR),
 * ESTALE (invalidated: nothing may land there), EINVAL (bad @access).
 */
int hfi1_mr_lookup(struct hfi1_context *ctx, struct hfi1_pd *pd, uint32_t key,
		   uint64_t iova, uint64_t len, int access, bool remote,
		   struct hfi1_mr **mrp);
/*
 * For a verb (@verb, for the log) on an MR the application may have
 * deregistered: 0 if @mr is registered, else EINVAL with a log line. MR
 * objects stay allocated while the context lives, so a deregistered one
 * can be told apart until a new registration reuses it.
 */
int hfi1_mr_check_registered(struct hfi1_context *ctx, struct hfi1_mr *mr,
			     const char *verb);
/*
 * The data path's hold on an MR, for the soft HFI's engine: as
 * hfi1_mr_lookup(), with the PD by number (@pdn), and on success the MR's
 * translation (*refp) stays until hfi1_mr_put(): dereg and rereg wait.
 */
int hfi1_mr_get(struct hfi1_context *ctx, uint32_t key, uint32_t pdn,
		uint64_t iova, uint64_t len, int access, bool remote,
		struct hfi1_mr_ref **refp);
void hfi1_mr_put(struct hfi1_mr_ref *ref);
/* The TID under byte @iova of a held MR: hfi1_mrc_entry_tid(). */
int hfi1_mr_tid(struct hfi1_mr_ref *ref, uint64_t iova, uint32_t *tidinfo,
		uint32_t *offset, uint32_t *left);
/* The application's address of byte @iova of a held MR. */
uint64_t hfi1_mr_addr(struct hfi1_mr_ref *ref, uint64_t iova);

/* The last invalidation of @key in the history; 0 or ENOENT. */
int hfi1_mr_find_event(struct hfi1_context *ctx, uint32_t key,
		       struct hfi1_mr_event_rec *rec);

#endif /* HFI1_MR_H */
