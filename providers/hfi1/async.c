// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the async event queue (async.h).
 *
 * libibverbs reads struct ib_uverbs_async_event_desc records from
 * context->async_fd. The provider owns that fd: it is the read end of a
 * pipe whose write end only the provider holds. Records are 16 bytes, less
 * than PIPE_BUF, so each write lands whole and a reader never sees half of
 * one; the read end takes O_NONBLOCK and epoll as a kernel async fd does.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "hfi1.h"

/* Room for this many queued events before the application reads them. */
#define HFI1_ASYNC_QUEUE_BYTES (1 << 20)

int hfi1_async_post(struct hfi1_context *ctx, uint32_t event_type,
		    uint64_t element)
{
	struct ib_uverbs_async_event_desc desc = {
		.element = element,
		.event_type = event_type,
	};

	/* At close, nobody reads the queue any more. */
	if (atomic_load_explicit(&ctx->async.closed, memory_order_relaxed))
		return 0;
	if (write(ctx->async.wr_fd, &desc, sizeof(desc)) == sizeof(desc))
		return 0;
	hfi1_err(ctx, "async event queue full: event %u (element %llu) lost\n",
		 event_type, (unsigned long long)element);
	return errno == EAGAIN ? ENOSPC : errno;
}

int hfi1_async_init(struct hfi1_context *ctx)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return errno;
	ctx->ibv_ctx.context.async_fd = fds[0];
	ctx->async.wr_fd = fds[1];
	/* The event thread must never block on a reader that is not there. */
	if (fcntl(ctx->async.wr_fd, F_SETFL, O_NONBLOCK))
		return errno;
	/* Best effort: a bigger queue where fs.pipe-max-size allows it. */
	fcntl(ctx->async.wr_fd, F_SETPIPE_SZ, HFI1_ASYNC_QUEUE_BYTES);
	return 0;
}

void hfi1_async_close(struct hfi1_context *ctx)
{
	atomic_store(&ctx->async.closed, true);
}

/* The read end is context.async_fd, which verbs_uninit_context() closes. */
void hfi1_async_cleanup(struct hfi1_context *ctx)
{
	if (ctx->async.wr_fd >= 0)
		close(ctx->async.wr_fd);
	ctx->async.wr_fd = -1;
}
