// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: pinning, as the hfi1 driver's user_pages.c has it: the pin
 * limit (hfi1_can_pin_pages()), the pages pinned by a context and by the
 * process (the mm's pinned_vm), and pinning and unpinning pages
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

/* hfi1_can_pin_pages(). Caller holds ctx->lock. */
bool can_pin_locked(struct softhfi_ctxt *ctx, uint64_t npages)
{
	uint64_t cache_limit, ulimit_pages;
	struct rlimit rl;

	if (!has_cap_ipc_lock()) {
		if (getrlimit(RLIMIT_MEMLOCK, &rl))
			return false;
		ulimit_pages = rl.rlim_cur == RLIM_INFINITY ?
				       UINT64_MAX / 2 :
				       rl.rlim_cur / ctx->page_size;
		if (atomic_load(&process_pinned_pages) + npages > ulimit_pages)
			return false;
		/* A quarter of the limit for each of the device's contexts. */
		if (ctx->tid_n_pinned + npages >
		    ulimit_pages / ctx->params.user_contexts / 4)
			return false;
	}
	cache_limit = (uint64_t)ctx->params.cache_size_mb * 1024 * 1024 /
		      ctx->page_size;
	return ctx->tid_n_pinned + npages <= cache_limit;
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
