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
#include <stdlib.h>
#include <sys/socket.h>
#include <liburing.h>

#include "sctxt.h"

/*
 * Check @tidinfo and the range against the entry, then queue one
 * READ_FIXED (none if @len is 0), behind a read of @skip bytes into
 * skip_buf that it is linked to: it runs only if all of them were read. io_uring resolves the slot when the
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
static int submit_place(struct softhfi_ctxt *ctx, size_t skip, uint32_t tidinfo,
			size_t offset, int fd, size_t len)
{
	struct io_uring_sqe *sqe;
	struct soft_tid *tid;
	uint64_t size;
	int rcventry, err = 0, ret;
	unsigned int n = skip ? 2 : 1;

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
	if (io_uring_sq_space_left(&ctx->ring) < n) {
		err = EBUSY;
		goto out;
	}
	if (skip) {
		/* MSG_WAITALL: a short read fails, and cancels the next. */
		sqe = io_uring_get_sqe(&ctx->ring);
		io_uring_prep_recv(sqe, fd, ctx->skip_buf, skip, MSG_WAITALL);
		sqe->flags |= IOSQE_IO_LINK;
	}
	sqe = io_uring_get_sqe(&ctx->ring);
	io_uring_prep_read_fixed(sqe, fd,
				 (void *)(uintptr_t)(tid->vaddr + offset), len,
				 -1, rcventry);
	ret = io_uring_submit(&ctx->ring);
	if (ret != (int)n)
		err = ret < 0 ? -ret : EIO;
out:
	ctxt_unlock(ctx);
	return err;
}

/* The next completion's result, or a negative errno. */
static int reap(struct softhfi_ctxt *ctx)
{
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_wait_cqe(&ctx->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&ctx->ring, cqe);
	return ret;
}

/*
 * The skip of a placement whose range the entry refused, or of a
 * zero-length one: read on its own, so that the stream stays whole.
 */
static int skip_alone(struct softhfi_ctxt *ctx, int fd, size_t skip)
{
	ssize_t n = recv(fd, ctx->skip_buf, skip, MSG_WAITALL);

	if (n == (ssize_t)skip)
		return 0;
	return n < 0 ? errno : EPIPE;
}

/*
 * The placement op: see hfi1_drv_place() and hfi1_drv_place_after().
 * @skip is read whatever becomes of the placement, so that the stream
 * stays whole; only a failing stream (EPIPE, a dead link) leaves it.
 */
ssize_t sctxt_place(struct hfi1_drv *drv, size_t skip, uint32_t tidinfo,
		    size_t offset, int fd, size_t len)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	size_t placed = 0;
	int err = 0, ret;

	if (!sctxt_owned(ctx)) {
		errno = EIO;
		return -1;
	}
	if (skip > HFI1_DRV_PLACE_SKIP_MAX) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&ctx->place_lock);
	if (skip && !ctx->skip_buf) {
		ctx->skip_buf = malloc(HFI1_DRV_PLACE_SKIP_MAX);
		if (!ctx->skip_buf) {
			err = ENOMEM;
			goto out;
		}
	}
	/* Nothing to move, but the entry and offset are checked all the same */
	if (!len)
		err = submit_place(ctx, 0, tidinfo, offset, fd, 0);
	while (placed < len) {
		err = submit_place(ctx, skip, tidinfo, offset + placed, fd,
				   len - placed);
		if (err)
			break;
		if (skip) {
			ret = reap(ctx);
			if (ret != (int)skip) {
				/* Cut short: the READ_FIXED was cancelled. */
				reap(ctx);
				skip = 0;
				err = ret < 0 && ret != -ECANCELED ? -ret :
								     EPIPE;
				break;
			}
			skip = 0;
		}
		ret = reap(ctx);
		if (ret < 0) {
			err = -ret;
			break;
		}
		if (!ret)
			break;
		placed += ret;
	}
	if (skip) {
		ret = skip_alone(ctx, fd, skip);
		if (ret)
			err = ret;
	}
out:
	pthread_mutex_unlock(&ctx->place_lock);
	if (err && !placed) {
		errno = err;
		return -1;
	}
	return placed;
}
