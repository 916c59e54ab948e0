// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: placement, the adapter's "DMA" into expected-receive buffers
 * (sctxt_place(), the driver interface's placement op). No file of the hfi1 driver corresponds: on the device
 * the receive engine writes what arrives through the RcvArray entries the
 * driver programmed (hfi1_put_tid(), chip.c). Not called dma.c, which
 * would suggest hfi1's sdma.c and user_sdma.c, its send DMA engines.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <liburing.h>

#include "sctxt.h"

/*
 * Check @tidinfo and the range against the entry, then queue one
 * READ_FIXED (none if @len is 0). io_uring resolves the slot when the
 * request is submitted, so holding ctx->lock over submission means the
 * pages written are those of the entry as checked, even if it is
 * invalidated or freed meanwhile. Returns 0 or a positive errno. Caller
 * holds ctx->place_lock.
 *
 * Only the unmappings whose munmap() has returned are applied first, which
 * costs no system call: data racing one still in flight lands in the
 * pages the entry pinned, as it would on the device before its MMU
 * notifier ran, and never in what is mapped there now.
 */
static int submit_place(struct softhfi_ctxt *ctx, uint32_t tidinfo,
			size_t offset, int fd, size_t len)
{
	struct io_uring_sqe *sqe;
	struct soft_tid *tid;
	uint64_t size;
	int rcventry, err = 0, ret;

	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	rcventry = tid_to_rcventry(ctx, tidinfo);
	if (rcventry < 0) {
		err = EINVAL;
		goto out;
	}
	tid = &ctx->tids[rcventry];
	if (tid->state == TID_UNUSED) {
		err = EBADF;
		goto out;
	}
	if (tid->state == TID_INVALIDATED || tid->state == TID_UNPINNING) {
		err = ESTALE;
		goto out;
	}
	size = (uint64_t)tid->npages * ctx->page_size;
	if (HFI1_TID_GET(tidinfo, LEN) != tid->npages || offset > size ||
	    len > size - offset || len > UINT_MAX) {
		err = EINVAL;
		goto out;
	}
	if (!len)
		goto out;
	sqe = io_uring_get_sqe(&ctx->ring);
	if (!sqe) {
		err = EBUSY;
		goto out;
	}
	io_uring_prep_read_fixed(sqe, fd,
				 (void *)(uintptr_t)(tid->vaddr + offset), len,
				 -1, rcventry);
	ret = io_uring_submit(&ctx->ring);
	if (ret != 1)
		err = ret < 0 ? -ret : EIO;
out:
	ctxt_unlock(ctx);
	return err;
}

/* The placement op: see hfi1_drv_place(). */
ssize_t sctxt_place(struct hfi1_drv *drv, uint32_t tidinfo, size_t offset,
		    int fd, size_t len)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	struct io_uring_cqe *cqe;
	size_t placed = 0;
	int err = 0, ret;

	if (!sctxt_owned(ctx)) {
		errno = EIO;
		return -1;
	}
	pthread_mutex_lock(&ctx->place_lock);
	/* Nothing to move, but the entry and offset are checked all the same */
	if (!len)
		err = submit_place(ctx, tidinfo, offset, fd, 0);
	while (placed < len) {
		err = submit_place(ctx, tidinfo, offset + placed, fd,
				   len - placed);
		if (err)
			break;
		ret = io_uring_wait_cqe(&ctx->ring, &cqe);
		if (ret < 0) {
			err = -ret;
			break;
		}
		ret = cqe->res;
		io_uring_cqe_seen(&ctx->ring, cqe);
		if (ret < 0) {
			err = -ret;
			break;
		}
		if (!ret)
			break;
		placed += ret;
	}
	pthread_mutex_unlock(&ctx->place_lock);
	if (err && !placed) {
		errno = err;
		return -1;
	}
	return placed;
}
