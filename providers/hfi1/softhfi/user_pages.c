// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: pinning, as the hfi1 driver's user_pages.c has it: the pin
 * limit (hfi1_can_pin_pages()), and which part of it refused last, the
 * pages pinned by a context and by the process (the mm's pinned_vm), and
 * pinning and unpinning pages
 * (hfi1_acquire_user_pages(), hfi1_release_user_pages()), here as
 * io_uring registered buffers. Which entries to pin or unpin, and when,
 * is user_exp_rcv.c's, as in hfi1.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <liburing.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "sctxt.h"

/* Pages pinned by all soft contexts of the process: hfi1's pinned_vm. */
_Atomic uint64_t process_pinned_pages;

static bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &
	       CAP_TO_MASK(CAP_IPC_LOCK);
}

/*
 * @limit refused @npages more: keep what it weighed for
 * sctxt_pin_refusal(). Caller holds ctx->lock.
 */
static void refused_locked(struct softhfi_ctxt *ctx,
			   enum hfi1_drv_pin_limit limit, uint64_t npages,
			   bool cap)
{
	struct hfi1_drv_pin_refusal *r = &ctx->refusal;
	uint64_t pg = ctx->page_size;
	struct rlimit rl = { 0 };

	getrlimit(RLIMIT_MEMLOCK, &rl);
	r->limit = limit;
	r->cap_ipc_lock = cap;
	r->asked = npages * pg;
	r->rlimit_memlock = rl.rlim_cur;
	r->process_pinned = atomic_load(&process_pinned_pages) * pg;
	r->context_pinned = ctx->tid_n_pinned * pg;
	r->user_contexts = ctx->params.user_contexts;
	r->share = rl.rlim_cur / pg / ctx->params.user_contexts / 4 * pg;
	r->cache_size = (uint64_t)ctx->params.cache_size_mb << 20;
}

/*
 * hfi1_can_pin_pages(): whether @ctx may pin @npages more. A refusal is
 * kept, with its figures, for sctxt_pin_refusal(). Caller holds ctx->lock.
 */
bool can_pin_locked(struct softhfi_ctxt *ctx, uint64_t npages)
{
	enum hfi1_drv_pin_limit limit = HFI1_DRV_PIN_NONE;
	bool cap = has_cap_ipc_lock();
	uint64_t cache_pages, ulimit_pages;
	struct rlimit rl = { 0 };

	if (!cap) {
		/* RLIM_INFINITY too: hfi1 divides it as any other. */
		getrlimit(RLIMIT_MEMLOCK, &rl);
		ulimit_pages = rl.rlim_cur / ctx->page_size;
		if (atomic_load(&process_pinned_pages) + npages > ulimit_pages)
			limit = HFI1_DRV_PIN_RLIMIT;
		/* A quarter of the limit for each of the device's contexts. */
		else if (ctx->tid_n_pinned + npages >
			 ulimit_pages / ctx->params.user_contexts / 4)
			limit = HFI1_DRV_PIN_SHARE;
	}
	cache_pages =
		((uint64_t)ctx->params.cache_size_mb << 20) / ctx->page_size;
	if (!limit && ctx->tid_n_pinned + npages > cache_pages)
		limit = HFI1_DRV_PIN_CACHE_SIZE;
	if (limit)
		refused_locked(ctx, limit, npages, cap);
	return !limit;
}

/*
 * The kernel refused to pin @npages more (io_uring's ENOMEM): its own
 * charge to RLIMIT_MEMLOCK, per user. Caller holds ctx->lock.
 */
void pin_refused_locked(struct softhfi_ctxt *ctx, uint64_t npages)
{
	refused_locked(ctx, HFI1_DRV_PIN_KERNEL, npages, has_cap_ipc_lock());
}

void sctxt_pin_refusal(struct hfi1_drv *drv,
		       struct hfi1_drv_pin_refusal *refusal)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	pthread_mutex_lock(&ctx->lock);
	*refusal = ctx->refusal;
	pthread_mutex_unlock(&ctx->lock);
}

void account_pinned_locked(struct softhfi_ctxt *ctx, int64_t npages)
{
	ctx->tid_n_pinned += npages;
	atomic_fetch_add(&process_pinned_pages, npages);
}

/* Set or clear the pins of entries; @iov NULL empties the slot. */
int pin_slots(struct softhfi_ctxt *ctx, unsigned int slot,
	      const struct iovec *iovs, unsigned int nr)
{
	static const struct iovec empty[SOFTHFI_GROUP_SIZE];
	unsigned int done = 0;
	int ret;

	while (done < nr) {
		unsigned int batch = nr - done;

		if (!iovs && batch > SOFTHFI_GROUP_SIZE)
			batch = SOFTHFI_GROUP_SIZE;
		ret = io_uring_register_buffers_update_tag(
			&ctx->ring, slot + done, iovs ? iovs + done : empty,
			NULL, batch);
		if (ret < 0)
			return done ? (int)done : ret;
		done += ret;
		if ((unsigned int)ret < batch)
			break;
	}
	return done;
}

/* Drop the pins of @n entries, neighbouring slots in one call. */
void unpin_entries(struct softhfi_ctxt *ctx, const uint32_t *slots,
		   unsigned int n)
{
	unsigned int i, run;

	for (i = 0; i < n; i += run) {
		for (run = 1; i + run < n && slots[i + run] == slots[i] + run;
		     run++)
			;
		pin_slots(ctx, slots[i], NULL, run);
	}
}

uint64_t softhfi_process_pinned_pages(void)
{
	return atomic_load(&process_pinned_pages);
}
