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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "hfi1.h"

/* Room for this many queued events before the application reads them. */
#define HFI1_ASYNC_QUEUE_BYTES (1 << 20)

/* Caller holds ctx->async.lock. */
static int post_locked(struct hfi1_context *ctx, uint32_t event_type,
		       uint64_t element)
{
	struct ib_uverbs_async_event_desc desc = {
		.element = element,
		.event_type = event_type,
	};

	if (write(ctx->async.wr_fd, &desc, sizeof(desc)) == sizeof(desc))
		return 0;
	hfi1_err(ctx, "async event queue full: event %u (element %llu) lost\n",
		 event_type, (unsigned long long)element);
	return errno == EAGAIN ? ENOSPC : errno;
}

int hfi1_async_post(struct hfi1_context *ctx, uint32_t event_type,
		    uint64_t element)
{
	int ret;

	/* At close, nobody reads the queue any more. */
	if (atomic_load_explicit(&ctx->async.closed, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&ctx->async.lock);
	ret = post_locked(ctx, event_type, element);
	pthread_mutex_unlock(&ctx->async.lock);
	return ret;
}

int hfi1_async_post_obj(struct hfi1_context *ctx, uint32_t event_type,
			uint64_t element, uint32_t *posted)
{
	int ret;

	if (atomic_load_explicit(&ctx->async.closed, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&ctx->async.lock);
	ret = post_locked(ctx, event_type, element);
	if (!ret)
		(*posted)++;
	pthread_mutex_unlock(&ctx->async.lock);
	return ret;
}

bool hfi1_async_is_object_event(uint32_t event_type)
{
	switch (event_type) {
	case IBV_EVENT_CQ_ERR:
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_COMM_EST:
	case IBV_EVENT_SQ_DRAINED:
	case IBV_EVENT_PATH_MIG:
	case IBV_EVENT_PATH_MIG_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED:
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED:
		return true;
	default:
		return false;
	}
}

/*
 * Reads what is queued without ever waiting, whatever O_NONBLOCK the
 * application set on async_fd: the application may read the same queue
 * meanwhile and leave nothing. Caller holds ctx->async.lock.
 */
static ssize_t read_nowait(struct hfi1_context *ctx, void *buf, size_t len)
{
	int fd = ctx->ibv_ctx.context.async_fd;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	char path[64];
	ssize_t n;

	if (ctx->async.nowait_fd < 0) {
		n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
		if (n >= 0 || errno != EOPNOTSUPP)
			return n;
		/* A kernel whose pipes lack RWF_NOWAIT: a second open. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ctx->async.nowait_fd =
			open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (ctx->async.nowait_fd < 0)
			return -1;
	}
	return read(ctx->async.nowait_fd, buf, len);
}

uint32_t hfi1_async_forget(struct hfi1_context *ctx, uint64_t element,
			   uint32_t posted)
{
	struct ib_uverbs_async_event_desc *q = NULL;
	size_t n = 0, kept = 0, i, done;
	uint32_t removed = 0;
	ssize_t got = 0;
	int queued;

	if (!posted)
		return 0;
	pthread_mutex_lock(&ctx->async.lock);
	/* Nothing is posted meanwhile: what is queued can only shrink. */
	if (ioctl(ctx->ibv_ctx.context.async_fd, FIONREAD, &queued) ||
	    queued <= 0)
		goto out;
	q = malloc(queued);
	if (!q) {
		hfi1_err(
			ctx,
			"no memory to take a destroyed object's events out of the queue\n");
		goto out;
	}
	/* Records are written and read whole, so every read ends on one. */
	while (n * sizeof(*q) < (size_t)queued) {
		got = read_nowait(ctx, q + n, queued - n * sizeof(*q));
		if (got <= 0)
			break;
		n += got / sizeof(*q);
	}
	if (got < 0 && errno != EAGAIN)
		hfi1_err(ctx, "cannot read the async event queue: %s\n",
			 strerror(errno));
	for (i = 0; i < n; i++) {
		if (q[i].element == element &&
		    hfi1_async_is_object_event(q[i].event_type))
			removed++;
		else
			q[kept++] = q[i];
	}
	/* Back in their order; the room they took is still there. */
	for (done = 0; done < kept * sizeof(*q); done += got) {
		got = write(ctx->async.wr_fd, (char *)q + done,
			    kept * sizeof(*q) - done);
		if (got <= 0) {
			hfi1_err(ctx,
				 "async event queue: %zu events lost: %s\n",
				 kept - done / sizeof(*q), strerror(errno));
			break;
		}
	}
out:
	pthread_mutex_unlock(&ctx->async.lock);
	free(q);
	return posted - removed;
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
	if (ctx->async.nowait_fd >= 0)
		close(ctx->async.nowait_fd);
	ctx->async.nowait_fd = -1;
	pthread_mutex_destroy(&ctx->async.lock);
}
