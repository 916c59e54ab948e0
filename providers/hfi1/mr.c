// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: memory regions served by the MR cache, on a backend that has it
 * (HFI1_BACKEND_MR_CACHE: the soft HFI today).
 *
 * Every MR holds a reference on a cache entry (an expected-receive TID
 * registration covering it). A registration takes two locks once each: the
 * MR table's spinlock (an MR object and its key) and the cache's mutex
 * (inside hfi1_mrc_get()); a deregistration the same two.
 *
 * When the driver invalidates an entry an MR holds (the memory was
 * unmapped), the cache calls mr_invalidated(): the MR stays registered but
 * invalid, its identity goes into the context's event history, and the
 * application gets HFI1DV_EVENT_MR_INVALIDATED through the async queue.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "evloop.h"
#include "hfi1dv.h"
#include "mr.h"
#include "stats.h"
#include "verbs.h"

#define HFI1_MR_REMOTE_ACCESS                               \
	(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
	 IBV_ACCESS_REMOTE_ATOMIC)
/* The access an MR can have here; the cache matches entries on these. */
#define HFI1_MR_ACCESS (IBV_ACCESS_LOCAL_WRITE | HFI1_MR_REMOTE_ACCESS)
/* Known, but not served: no ODP, no memory windows. */
#define HFI1_MR_ACCESS_UNSUPPORTED \
	(IBV_ACCESS_ON_DEMAND | IBV_ACCESS_MW_BIND | IBV_ACCESS_ZERO_BASED)

static const char *reason_str(uint32_t reason)
{
	switch (reason) {
	case HFI1_MRC_INVAL_UNMAPPED:
		return "memory unmapped";
	case HFI1_MRC_INVAL_FLUSHED:
		return "cache flushed";
	default:
		return "unknown";
	}
}

/*
 * The checks of the kernel's ib_check_mr_access() and rdmavt's
 * rvt_reg_user_mr(), with a log line saying what is wrong; 0 or an errno.
 */
static int check_mr_input(struct hfi1_context *ctx, const void *addr,
			  size_t length, uint64_t iova, int access)
{
	/* Optional bits (relaxed ordering) are hints a provider may ignore. */
	access &= ~IBV_ACCESS_OPTIONAL_RANGE;

	if (!addr) {
		hfi1_err(ctx, "NULL address\n");
		return EINVAL;
	}
	if (!length) {
		hfi1_err(ctx, "length 0\n");
		return EINVAL;
	}
	if (length > HFI1_MAX_MR_SIZE) {
		hfi1_err(ctx, "length %zu is over max_mr_size %llu\n", length,
			 (unsigned long long)HFI1_MAX_MR_SIZE);
		return EINVAL;
	}
	if ((uintptr_t)addr + length < (uintptr_t)addr ||
	    iova + length < iova) {
		hfi1_err(ctx, "[%p, +%zu) at iova 0x%llx wraps around\n", addr,
			 length, (unsigned long long)iova);
		return EINVAL;
	}
	if (access & HFI1_MR_ACCESS_UNSUPPORTED) {
		hfi1_err(
			ctx,
			"access 0x%x: ON_DEMAND, MW_BIND and ZERO_BASED are not supported\n",
			access);
		return EOPNOTSUPP;
	}
	if (access & ~(HFI1_MR_ACCESS | IBV_ACCESS_HUGETLB)) {
		hfi1_err(ctx, "access 0x%x: unknown bits 0x%x\n", access,
			 access & ~(HFI1_MR_ACCESS | IBV_ACCESS_HUGETLB));
		return EINVAL;
	}
	if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IBV_ACCESS_LOCAL_WRITE)) {
		hfi1_err(
			ctx,
			"access 0x%x: remote write or atomic needs local write\n",
			access);
		return EINVAL;
	}
	return 0;
}

/* --- the MR table: objects and keys --- */

static uint32_t mr_key(const struct hfi1_mr *mr)
{
	return mr->slot << HFI1_MR_KEY_GEN_BITS | mr->gen;
}

/* A new chunk of MR objects for slots [first, first + HFI1_MR_CHUNK). */
static struct hfi1_mr *mr_chunk_alloc(uint32_t first)
{
	struct hfi1_mr *chunk;
	unsigned int i, j;

	chunk = calloc(HFI1_MR_CHUNK, sizeof(*chunk));
	if (!chunk)
		return NULL;
	for (i = 0; i < HFI1_MR_CHUNK; i++) {
		chunk[i].slot = first + i;
		for (j = 0; j < 2; j++)
			chunk[i].refs[j].mr = &chunk[i];
	}
	return chunk;
}

/*
 * A free MR object whose gen makes its next key; NULL with errno ENOMEM
 * and a log line when all HFI1_MAX_MR are in use (or no memory for more).
 * Takes the table lock.
 */
static struct hfi1_mr *mr_alloc(struct hfi1_context *ctx)
{
	struct hfi1_mr_table *t = &ctx->mr->table;
	struct hfi1_mr *mr, *chunk;
	uint32_t slot;

	for (;;) {
		pthread_spin_lock(&t->lock);
		/* A free slot comes back only after a while: keys stay new. */
		if (t->free_count &&
		    (t->free_count >= HFI1_MR_KEY_REUSE_DELAY ||
		     t->fresh == HFI1_MAX_MR)) {
			mr = t->free_head;
			t->free_head = mr->next_free;
			if (!t->free_head)
				t->free_tail = NULL;
			t->free_count--;
			pthread_spin_unlock(&t->lock);
			mr->next_free = NULL;
			mr->gen = mr->gen == 255 ? 1 : mr->gen + 1;
			return mr;
		}
		if (t->fresh == HFI1_MAX_MR) {
			pthread_spin_unlock(&t->lock);
			hfi1_err(
				ctx,
				"out of MRs: all %u MR keys of this context (max_mr) are in use\n",
				HFI1_MAX_MR);
			errno = ENOMEM;
			return NULL;
		}
		slot = t->fresh;
		chunk = atomic_load_explicit(&t->chunks[slot / HFI1_MR_CHUNK],
					     memory_order_relaxed);
		if (chunk) {
			t->fresh++;
			pthread_spin_unlock(&t->lock);
			mr = &chunk[slot % HFI1_MR_CHUNK];
			mr->gen = 1;
			return mr;
		}
		pthread_spin_unlock(&t->lock);

		/* Never calloc under the spinlock. */
		chunk = mr_chunk_alloc(slot - slot % HFI1_MR_CHUNK);
		if (!chunk) {
			hfi1_err(ctx, "cannot allocate %u MR objects\n",
				 HFI1_MR_CHUNK);
			errno = ENOMEM;
			return NULL;
		}
		pthread_spin_lock(&t->lock);
		if (!atomic_load_explicit(&t->chunks[slot / HFI1_MR_CHUNK],
					  memory_order_relaxed)) {
			/* Release: lookups see the chunk's slots and refs. */
			atomic_store_explicit(&t->chunks[slot / HFI1_MR_CHUNK],
					      chunk, memory_order_release);
			chunk = NULL;
		}
		pthread_spin_unlock(&t->lock);
		free(chunk); /* another thread's chunk went in first */
	}
}

/* Back to the tail of the free FIFO. Takes the table lock. */
static void mr_free(struct hfi1_context *ctx, struct hfi1_mr *mr)
{
	struct hfi1_mr_table *t = &ctx->mr->table;

	pthread_spin_lock(&t->lock);
	if (t->free_tail)
		t->free_tail->next_free = mr;
	else
		t->free_head = mr;
	t->free_tail = mr;
	t->free_count++;
	pthread_spin_unlock(&t->lock);
}

int hfi1_mr_lookup(struct hfi1_context *ctx, struct hfi1_pd *pd, uint32_t key,
		   uint64_t iova, uint64_t len, int access, bool remote,
		   struct hfi1_mr **mrp)
{
	uint32_t slot = key >> HFI1_MR_KEY_GEN_BITS;
	struct hfi1_mr_ref *r;
	struct hfi1_mr *chunk, *mr;

	if (remote ? !access || (access & ~HFI1_MR_REMOTE_ACCESS) :
		     (access & ~IBV_ACCESS_LOCAL_WRITE))
		return EINVAL;
	if (!key || slot >= HFI1_MAX_MR)
		return ENOENT;
	chunk = atomic_load_explicit(
		&ctx->mr->table.chunks[slot / HFI1_MR_CHUNK],
		memory_order_acquire);
	if (!chunk)
		return ENOENT;
	mr = &chunk[slot % HFI1_MR_CHUNK];
	if (atomic_load_explicit(&mr->key, memory_order_acquire) != key)
		return ENOENT;
	r = atomic_load_explicit(&mr->active, memory_order_acquire);
	if (pd && r->pd != pd)
		return EACCES;
	if ((r->access & access) != access)
		return EACCES;
	if (len > r->length || iova < r->iova ||
	    iova - r->iova > r->length - len)
		return ERANGE;
	/* The data path must never write into invalidated memory. */
	if (atomic_load_explicit(&r->reason, memory_order_acquire) ||
	    !hfi1_mrc_entry_valid(r->mrc.entry))
		return ESTALE;
	/* Deregistered or changed while we looked: as if not found. */
	if (atomic_load_explicit(&mr->key, memory_order_acquire) != key)
		return ENOENT;
	*mrp = mr;
	return 0;
}

int hfi1_mr_get(struct hfi1_context *ctx, uint32_t key, uint32_t pdn,
		uint64_t iova, uint64_t len, int access, bool remote,
		struct hfi1_mr_ref **refp)
{
	uint32_t slot = key >> HFI1_MR_KEY_GEN_BITS;
	struct hfi1_mr_ref *r;
	struct hfi1_mr *chunk, *mr;
	int ret;

	if (!key || slot >= HFI1_MAX_MR)
		return ENOENT;
	chunk = atomic_load_explicit(
		&ctx->mr->table.chunks[slot / HFI1_MR_CHUNK],
		memory_order_acquire);
	if (!chunk)
		return ENOENT;
	mr = &chunk[slot % HFI1_MR_CHUNK];
	/*
	 * Count the use before the key is checked, dereg takes the key
	 * before it waits for the count: one of them sees the other.
	 */
	atomic_fetch_add(&mr->inflight, 1);
	ret = hfi1_mr_lookup(ctx, NULL, key, iova, len, access, remote, &mr);
	if (!ret) {
		r = atomic_load_explicit(&mr->active, memory_order_acquire);
		if (r->pd->pdn != pdn)
			ret = EACCES;
	}
	if (ret) {
		atomic_fetch_sub(&mr->inflight, 1);
		return ret;
	}
	*refp = r;
	return 0;
}

void hfi1_mr_put(struct hfi1_mr_ref *ref)
{
	atomic_fetch_sub_explicit(&ref->mr->inflight, 1, memory_order_release);
}

int hfi1_mr_tid(struct hfi1_mr_ref *ref, uint64_t iova, uint32_t *tidinfo,
		uint32_t *offset, uint32_t *left)
{
	return hfi1_mrc_entry_tid(ref->mrc.entry, hfi1_mr_addr(ref, iova),
				  tidinfo, offset, left);
}

uint64_t hfi1_mr_addr(struct hfi1_mr_ref *ref, uint64_t iova)
{
	return ref->addr + (iova - ref->iova);
}

/* After the key was taken: the engine's last use of the MR is over. */
static void mr_wait_inflight(struct hfi1_mr *mr)
{
	while (atomic_load_explicit(&mr->inflight, memory_order_acquire))
		sched_yield();
}

/* --- invalidation events and their history --- */

static void history_add(struct hfi1_context *ctx, const struct hfi1_mr_ref *r,
			uint32_t reason)
{
	struct hfi1_mr_history *h = &ctx->mr->history;
	struct hfi1_mr_event_rec *rec;

	pthread_spin_lock(&h->lock);
	rec = &h->recs[h->next++ % HFI1DV_MR_EVENT_HISTORY];
	rec->key = r->key;
	rec->reason = reason;
	rec->addr = r->addr;
	rec->length = r->length;
	pthread_spin_unlock(&h->lock);
}

int hfi1_mr_find_event(struct hfi1_context *ctx, uint32_t key,
		       struct hfi1_mr_event_rec *out)
{
	struct hfi1_mr_history *h = &ctx->mr->history;
	uint32_t n, i;
	int ret = ENOENT;

	if (!key)
		return ENOENT;
	pthread_spin_lock(&h->lock);
	n = h->next < HFI1DV_MR_EVENT_HISTORY ? h->next :
						HFI1DV_MR_EVENT_HISTORY;
	/* The newest first: a key invalidated twice names its last event. */
	for (i = 1; i <= n; i++) {
		const struct hfi1_mr_event_rec *rec =
			&h->recs[(h->next - i) % HFI1DV_MR_EVENT_HISTORY];

		if (rec->key == key) {
			*out = *rec;
			ret = 0;
			break;
		}
	}
	pthread_spin_unlock(&h->lock);
	return ret;
}

/* Record and post the event of @r's invalidation, once. */
static void mr_post_invalidated(struct hfi1_context *ctx, struct hfi1_mr_ref *r)
{
	uint32_t reason = atomic_load(&r->reason);

	if (atomic_flag_test_and_set(&r->posted))
		return;
	history_add(ctx, r, reason);
	hfi1_dbg(ctx, "MR key 0x%x [0x%llx, +%llu) invalidated: %s\n", r->key,
		 (unsigned long long)r->addr, (unsigned long long)r->length,
		 reason_str(reason));
	hfi1_async_post(ctx, HFI1DV_EVENT_MR_INVALIDATED, r->key);
}

/*
 * The cache's invalidated() op: under the cache's lock, from whichever
 * thread drains; it takes only the history's spinlock and writes to the
 * non-blocking async pipe. A ref that rereg_mr has not made active yet
 * only records the reason: rereg_mr posts for it once it is active.
 */
static void mr_invalidated(struct hfi1_mrc_ref *mref,
			   enum hfi1_mrc_reason reason, void *arg)
{
	struct hfi1_mr_ref *r = container_of(mref, struct hfi1_mr_ref, mrc);

	/* seq_cst, paired with rereg_mr's store to active and load here. */
	atomic_store(&r->reason, reason);
	if (atomic_load(&r->mr->active) == r)
		mr_post_invalidated(arg, r);
}

static void mr_ref_init(struct hfi1_mr_ref *r, struct hfi1_pd *pd,
			const void *addr, size_t length, uint64_t iova,
			int access, uint32_t key)
{
	r->pd = pd;
	r->addr = (uintptr_t)addr;
	r->length = length;
	r->iova = iova;
	r->access = access;
	r->key = key;
	atomic_store_explicit(&r->reason, 0, memory_order_relaxed);
	atomic_flag_clear(&r->posted);
}

/* Take a cache entry for @r, with a log line on failure. */
static int mr_ref_get(struct hfi1_context *ctx, struct hfi1_mr_ref *r)
{
	int ret;

	ret = hfi1_mrc_get(ctx->mr->mrc, r->addr, r->length,
			   r->access & HFI1_MR_ACCESS, &r->mrc);
	if (ret)
		hfi1_err(ctx, "[0x%llx, +%llu) access 0x%x: %s\n",
			 (unsigned long long)r->addr,
			 (unsigned long long)r->length, r->access,
			 strerror(ret));
	return ret;
}

/* --- the verbs --- */

/*
 * An MR object outlives its registration (see struct hfi1_mr): a verb on
 * one the application deregistered already finds its key 0.
 */
static int mr_not_registered(struct hfi1_context *ctx, const struct hfi1_mr *mr,
			     const char *verb)
{
	hfi1_err(ctx, "%s: the MR of lkey 0x%x is not registered\n", verb,
		 mr->vmr.ibv_mr.lkey);
	return EINVAL;
}

int hfi1_mr_check_registered(struct hfi1_context *ctx, struct hfi1_mr *mr,
			     const char *verb)
{
	if (atomic_load_explicit(&mr->key, memory_order_acquire))
		return 0;
	return mr_not_registered(ctx, mr, verb);
}

struct ibv_mr *hfi1_reg_mr(struct ibv_pd *ibpd, void *addr, size_t length,
			   uint64_t hca_va, int access)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibpd->context);
	struct hfi1_pd *pd = to_hfi1_pd(ibpd);
	struct hfi1_mr_ref *r;
	struct hfi1_mr *mr;
	uint32_t key;
	int ret;

	/* Before anything: a child's hit would be an MR over the parent's. */
	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		goto err;
	ret = check_mr_input(ctx, addr, length, hca_va, access);
	if (ret)
		goto err;
	mr = mr_alloc(ctx);
	if (!mr) {
		ret = errno;
		goto err;
	}
	key = mr_key(mr);
	r = &mr->refs[0];
	mr_ref_init(r, pd, addr, length, hca_va, access, key);
	/* Before the get: an invalidation from then on posts its event. */
	atomic_store(&mr->active, r);
	ret = mr_ref_get(ctx, r);
	if (ret)
		goto err_free;

	atomic_fetch_add_explicit(&pd->usecnt, 1, memory_order_relaxed);
	mr->vmr.mr_type = IBV_MR_TYPE_MR;
	mr->vmr.access = access;
	mr->vmr.ibv_mr.lkey = key;
	mr->vmr.ibv_mr.rkey = key;
	mr->vmr.ibv_mr.handle = key;
	/* Release: a lookup that sees the key sees the registration. */
	atomic_store_explicit(&mr->key, key, memory_order_release);
	return &mr->vmr.ibv_mr;

err_free:
	mr_free(ctx, mr);
err:
	errno = ret;
	return NULL;
}

int hfi1_dereg_mr(struct verbs_mr *vmr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(vmr->ibv_mr.context);
	struct hfi1_mr *mr = container_of(vmr, struct hfi1_mr, vmr);
	struct hfi1_mr_ref *r;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	/*
	 * Taking the key claims the MR: a second dereg (or one racing with
	 * this) finds none and changes nothing, where it would put the
	 * reference, count the PD and free the MR object a second time.
	 */
	if (!atomic_exchange_explicit(&mr->key, 0, memory_order_acq_rel))
		return mr_not_registered(ctx, mr, "ibv_dereg_mr");
	r = atomic_load(&mr->active);
	mr_wait_inflight(mr);
	/*
	 * Memory unmapped while the MR was registered gets its event even if
	 * the application deregisters it right after the munmap(): apply
	 * what the driver reported (or another thread is applying) first.
	 * Only unmappings that returned before this call can be owed one
	 * (one still under way in another thread races with the dereg
	 * either way), so no system call: see hfi1_drv_events_returned().
	 */
	hfi1_mrc_drain_returned(ctx->mr->mrc);
	hfi1_mrc_put(ctx->mr->mrc, &r->mrc);
	atomic_fetch_sub_explicit(&r->pd->usecnt, 1, memory_order_relaxed);
	mr_free(ctx, mr);
	return 0;
}

/*
 * A new translation is taken before the old one is let go, so a failure
 * leaves the MR as it was. Rereg of an invalidated MR re-validates it:
 * the new ref is a new cache entry over the memory mapped now. The keys
 * stay the same.
 */
int hfi1_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *ibpd,
		  void *addr, size_t length, int access)
{
	struct hfi1_context *ctx = to_hfi1_ctx(vmr->ibv_mr.context);
	struct hfi1_mr *mr = container_of(vmr, struct hfi1_mr, vmr);
	struct hfi1_mr_ref *old = atomic_load(&mr->active);
	struct hfi1_mr_ref *new =
		old == &mr->refs[0] ? &mr->refs[1] : &mr->refs[0];
	struct hfi1_pd *pd = old->pd;
	uint64_t iova;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		goto err;
	ret = hfi1_mr_check_registered(ctx, mr, "ibv_rereg_mr");
	if (ret)
		goto err;
	if (!flags || (flags & ~IBV_REREG_MR_FLAGS_SUPPORTED)) {
		hfi1_err(ctx, "flags 0x%x: none or unknown\n", flags);
		ret = EINVAL;
		goto err;
	}
	if (flags & IBV_REREG_MR_CHANGE_PD) {
		if (!ibpd || ibpd->context != vmr->ibv_mr.context) {
			hfi1_err(ctx, "the new PD is not of this context\n");
			ret = EINVAL;
			goto err;
		}
		pd = to_hfi1_pd(ibpd);
	}
	if (flags & IBV_REREG_MR_CHANGE_TRANSLATION) {
		/* As the kernel's: the new iova is the new address. */
		iova = (uintptr_t)addr;
	} else {
		addr = (void *)(uintptr_t)old->addr;
		length = old->length;
		iova = old->iova;
	}
	if (!(flags & IBV_REREG_MR_CHANGE_ACCESS))
		access = old->access;
	ret = check_mr_input(ctx, addr, length, iova, access);
	if (ret)
		goto err;

	mr_ref_init(new, pd, addr, length, iova, access, old->key);
	ret = mr_ref_get(ctx, new);
	if (ret)
		goto err;
	/*
	 * The old translation's event, as dereg_mr's, while it is still
	 * the active one (a disabled cache's get applies nothing).
	 */
	hfi1_mrc_drain_returned(ctx->mr->mrc);

	if (pd != old->pd) {
		atomic_fetch_add_explicit(&pd->usecnt, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&old->pd->usecnt, 1,
					  memory_order_relaxed);
	}
	/* Lookups miss while the MR changes. */
	atomic_store_explicit(&mr->key, 0, memory_order_release);
	atomic_store(&mr->active, new);
	mr_wait_inflight(mr);
	/* Invalidated before it became active: mr_invalidated() left it. */
	if (atomic_load(&new->reason))
		mr_post_invalidated(ctx, new);
	hfi1_mrc_put(ctx->mr->mrc, &old->mrc);
	vmr->access = access;
	atomic_store_explicit(&mr->key, new->key, memory_order_release);
	return 0;

err:
	errno = ret;
	return ret;
}

/* --- the context's cache --- */

/*
 * The cache's hold and release: libibverbs' fork protection over what the
 * cache keeps pinned. With it on (ibv_fork_init(), RDMAV_FORK_SAFE; UCX
 * turns it on as it opens the device), libibverbs madvises a range
 * MADV_DONTFORK when the first MR over it is registered and MADV_DOFORK
 * when the last is deregistered, counting MRs per page. A cached entry
 * outlives its MRs; holding a count of its own from its registration to
 * its TID_FREE, it keeps the pages it pins out of a child, as an MR's
 * are, and a hit (reg+dereg of memory an entry holds) makes no madvise():
 * two system calls that take mmap_lock for writing, 2-3x the cost of the
 * whole hit. Without fork protection both are no-ops.
 */
static int mr_cache_hold(uint64_t start, uint64_t end, void *arg)
{
	(void)arg;
	return ibv_dontfork_range((void *)(uintptr_t)start, end - start) ?
		       EINVAL :
		       0;
}

static void mr_cache_release(uint64_t start, uint64_t end, void *arg)
{
	(void)arg;
	ibv_dofork_range((void *)(uintptr_t)start, end - start);
}

/*
 * The driver raised an event bit (the event thread's callback for its
 * event fd): apply the cache's pending invalidations now, so that an
 * invalidated MR's event reaches the application even if it makes no verbs
 * call. Reading the eventfd re-arms it first, so a bit raised during the
 * drain wakes the thread again. What raised it is logged already: no need
 * to wait for unmappings still under way (their own bit wakes the thread
 * again), which would hold the event up until the unmapping thread has
 * been scheduled again.
 */
static bool mr_drv_event(void *arg)
{
	struct hfi1_context *ctx = arg;
	uint64_t n;

	if (read(ctx->drv->event_fd, &n, sizeof(n)) == sizeof(n))
		hfi1_mrc_drain_returned(ctx->mr->mrc);
	return true;
}

int hfi1_mr_init(struct hfi1_context *ctx)
{
	struct hfi1_mrc_limits limits;
	struct hfi1_mr_state *mrs;
	int ret;

	mrs = calloc(1, sizeof(*mrs));
	if (!mrs)
		return ENOMEM;
	ret = pthread_spin_init(&mrs->table.lock, PTHREAD_PROCESS_PRIVATE);
	if (ret)
		goto err_free;
	ret = pthread_spin_init(&mrs->history.lock, PTHREAD_PROCESS_PRIVATE);
	if (ret)
		goto err_table_lock;
	mrs->history.recs =
		calloc(HFI1DV_MR_EVENT_HISTORY, sizeof(*mrs->history.recs));
	if (!mrs->history.recs) {
		ret = ENOMEM;
		goto err_history_lock;
	}
	mrs->mrc_ops.invalidated = mr_invalidated;
	mrs->mrc_ops.log = hfi1_log_line;
	mrs->mrc_ops.hold = mr_cache_hold;
	mrs->mrc_ops.release = mr_cache_release;
	mrs->mrc_ops.arg = ctx;
	hfi1_env_mr_cache_limits(&limits, hfi1_log_line, ctx);
	/* The counters live in the stats file hfi1_mrstat(1) reads. */
	mrs->mrc =
		hfi1_mrc_create(ctx->drv, &limits,
				hfi1_stats_counters(ctx->stats), &mrs->mrc_ops);
	if (!mrs->mrc) {
		ret = errno;
		hfi1_err(ctx, "cannot create the MR cache: %s\n",
			 strerror(ret));
		goto err_history;
	}
	hfi1_stats_set_limits(ctx->stats, &limits);
	/* A backend without an event fd has -1: nothing to watch. */
	if (ctx->drv->event_fd >= 0) {
		ret = hfi1_evloop_add(ctx->evloop, ctx->drv->event_fd,
				      mr_drv_event, ctx);
		if (ret)
			goto err_mrc;
	}
	ctx->mr = mrs;
	return 0;

err_mrc:
	hfi1_mrc_destroy(mrs->mrc);
err_history:
	free(mrs->history.recs);
err_history_lock:
	pthread_spin_destroy(&mrs->history.lock);
err_table_lock:
	pthread_spin_destroy(&mrs->table.lock);
err_free:
	free(mrs);
	return ret;
}

/*
 * After the event thread stopped. MRs the application did not deregister
 * are flushed by the cache (their refs are told so) and freed with their
 * chunks.
 */
void hfi1_mr_cleanup(struct hfi1_context *ctx)
{
	struct hfi1_mr_state *mrs = ctx->mr;
	unsigned int i;

	if (!mrs)
		return;
	hfi1_mrc_destroy(mrs->mrc);
	for (i = 0; i < HFI1_MR_CHUNKS; i++)
		free(atomic_load_explicit(&mrs->table.chunks[i],
					  memory_order_relaxed));
	free(mrs->history.recs);
	pthread_spin_destroy(&mrs->history.lock);
	pthread_spin_destroy(&mrs->table.lock);
	free(mrs);
	ctx->mr = NULL;
}
