// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the kernel backend (backend.h). A real hfi1 serves the context:
 * the standard uverbs commands, which the hfi1 driver answers through
 * rdmavt, and an hfi1 user context on /dev/hfi1_N (drv/kdrv.c).
 *
 * It has no MRs yet: reg_mr needs ibv_cmd_reg_mr beside the cache, so
 * libibverbs answers EOPNOTSUPP for it. Nor QPs and AHs: its qp and ah
 * ops are NULL (they would be the ibv_cmd_* calls, and post_send
 * ibv_cmd_post_send), and so are the verbs in its ops table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kdrv.h"
#include "verbs.h"

static int
hfi1_kernel_query_device_ex(struct ibv_context *ibctx,
			    const struct ibv_query_device_ex_input *input,
			    struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct ib_uverbs_ex_query_device_resp resp;
	size_t resp_size = sizeof(resp);

	return ibv_cmd_query_device_any(ibctx, input, attr, attr_size, &resp,
					&resp_size);
}

static int hfi1_kernel_query_port(struct ibv_context *ibctx, uint8_t port,
				  struct ibv_port_attr *attr)
{
	struct ibv_query_port cmd;

	return ibv_cmd_query_port(ibctx, port, attr, &cmd, sizeof(cmd));
}

static struct ibv_pd *hfi1_kernel_alloc_pd(struct ibv_context *ibctx)
{
	struct ib_uverbs_alloc_pd_resp resp;
	struct ibv_alloc_pd cmd;
	struct hfi1_pd *pd;
	int ret;

	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_alloc_pd(ibctx, &pd->ibv_pd, &cmd, sizeof(cmd), &resp,
			       sizeof(resp));
	if (ret) {
		free(pd);
		errno = ret;
		return NULL;
	}
	pd->pdn = resp.pd_handle;
	return &pd->ibv_pd;
}

static int hfi1_kernel_dealloc_pd(struct ibv_pd *ibpd)
{
	int ret;

	ret = ibv_cmd_dealloc_pd(ibpd);
	if (ret)
		return ret;
	free(to_hfi1_pd(ibpd));
	return 0;
}

static const struct verbs_context_ops hfi1_kernel_ctx_ops = {
	.alloc_pd = hfi1_kernel_alloc_pd,
	.dealloc_pd = hfi1_kernel_dealloc_pd,
	.free_context = hfi1_free_context,
	.query_device_ex = hfi1_kernel_query_device_ex,
	.query_port = hfi1_kernel_query_port,
};

static int hfi1_kernel_open(struct hfi1_context *ctx)
{
	struct ib_uverbs_get_context_resp resp;
	struct ibv_get_context cmd;
	char path[32];

	if (ibv_cmd_get_context(&ctx->ibv_ctx, &cmd, sizeof(cmd), &resp,
				sizeof(resp)))
		return errno;

	if (ctx->dev->unit < 0)
		return ENODEV;
	snprintf(path, sizeof(path), "/dev/hfi1_%d", ctx->dev->unit);
	ctx->drv = hfi1_kdrv_open(path, NULL);
	if (!ctx->drv) {
		hfi1_err(ctx, "cannot assign an hfi1 user context on %s: %s\n",
			 path, strerror(errno));
		return errno;
	}
	return 0;
}

const struct hfi1_backend hfi1_kernel_backend = {
	.name = "kernel",
	.ctx_ops = &hfi1_kernel_ctx_ops,
	.open = hfi1_kernel_open,
};
