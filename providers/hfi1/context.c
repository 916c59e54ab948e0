// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the context's life cycle, the same for both backends: the
 * backend opens the device's hfi1 user context, and the provider sets up
 * the async event queue and the MR cache where the backend's flags ask,
 * and the event thread for what they registered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "evloop.h"
#include "mr.h"
#include "stats.h"
#include "verbs.h"

void hfi1_log_line(void *arg, int level, const char *msg)
{
	struct hfi1_context *ctx = arg;
	size_t len = strlen(msg);

	hfi1_log(ctx, level, "%s%s", msg,
		 len && msg[len - 1] == '\n' ? "" : "\n");
}

struct verbs_context *hfi1_alloc_context(struct ibv_device *ibdev, int cmd_fd,
					 void *private_data)
{
	struct hfi1_device *dev = to_hfi1_dev(ibdev);
	const struct hfi1_backend *be = dev->backend;
	struct hfi1_context *ctx;
	int ret;

	if (be->cmd_fd) {
		cmd_fd = be->cmd_fd(cmd_fd);
		if (cmd_fd < 0)
			return NULL;
	}

	/* cmd_fd is the context's from here on, or closed on failure. */
	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, ctx, ibv_ctx,
					   RDMA_DRIVER_HFI1);
	if (!ctx)
		return NULL;

	ctx->dev = dev;
	ctx->async.wr_fd = -1;
	ctx->async.nowait_fd = -1;
	pthread_mutex_init(&ctx->async.lock, NULL);
	pthread_mutex_init(&ctx->obj_lock, NULL);
	verbs_set_ops(&ctx->ibv_ctx, be->ctx_ops);

	if (be->flags & HFI1_BACKEND_ASYNC_QUEUE) {
		ret = hfi1_async_init(ctx);
		if (ret)
			goto err_async;
	}
	ctx->evloop = hfi1_evloop_create(ctx);
	if (!ctx->evloop) {
		ret = errno;
		goto err_async;
	}
	/*
	 * Before the backend: what it serves may count there (the soft
	 * HFI's data path). Where the MR cache is, as its counters are.
	 */
	if (be->flags & HFI1_BACKEND_MR_CACHE) {
		ctx->stats = hfi1_stats_open(ibdev->name, hfi1_log_line, ctx);
		if (!ctx->stats) {
			ret = ENOMEM;
			goto err_evloop;
		}
	}
	ret = be->open(ctx);
	if (ret)
		goto err_stats;
	if (be->flags & HFI1_BACKEND_MR_CACHE) {
		ret = hfi1_mr_init(ctx);
		if (ret)
			goto err_close;
	}
	/* Last: the event thread calls into all of the above. */
	ret = hfi1_evloop_start(ctx->evloop);
	if (ret)
		goto err_mr;
	return &ctx->ibv_ctx;

err_mr:
	hfi1_mr_cleanup(ctx);
err_close:
	if (be->close)
		be->close(ctx);
	hfi1_drv_close(ctx->drv);
err_stats:
	hfi1_stats_close(ctx->stats);
err_evloop:
	hfi1_evloop_destroy(ctx->evloop);
err_async:
	hfi1_async_cleanup(ctx);
	pthread_mutex_destroy(&ctx->obj_lock);
	verbs_uninit_context(&ctx->ibv_ctx);
	free(ctx);
	errno = ret;
	return NULL;
}

int hfi1_refuse_child(struct hfi1_context *ctx, const char *verb)
{
	hfi1_err(
		ctx,
		"%s: refused in a forked child: the context and the pages it pins are the parent's\n",
		verb);
	return EIO;
}

/*
 * In a forked child this releases the child's copy of the context only:
 * the event thread, the cache's TIDs and counters, the stats file and the
 * driver's context are the parent's (each part below tells a child too).
 */
void hfi1_free_context(struct ibv_context *ibctx)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	const struct hfi1_backend *be = ctx->dev->backend;

	hfi1_async_close(ctx);
	/* The event thread stops first: its callbacks use what follows. */
	if (hfi1_drv_owned(ctx->drv))
		hfi1_evloop_destroy(ctx->evloop);
	else
		hfi1_evloop_drop(ctx->evloop);
	hfi1_mr_cleanup(ctx);
	if (be->close)
		be->close(ctx);
	hfi1_drv_close(ctx->drv);
	/* After all that counts there: the cache and the backend. */
	hfi1_stats_close(ctx->stats);
	hfi1_async_cleanup(ctx);
	pthread_mutex_destroy(&ctx->obj_lock);
	verbs_uninit_context(&ctx->ibv_ctx);
	free(ctx);
}
