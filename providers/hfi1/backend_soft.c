// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the soft backend (backend.h). The soft HFI serves the context
 * in this process: its hfi1 user context is softhfi/'s, and its device and
 * port attributes come from the tree hfi1-soft keeps (softdev.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "softdev.h"
#include "softhfi.h"
#include "verbs.h"

/*
 * The soft HFI never keeps the fd libibverbs opened: it is /dev/null opened
 * read-write, whose write() "succeeds" without answering, and generic
 * libibverbs code (ibv_create_comp_channel, for one) would trust the
 * response it never got. /dev/null opened read-only fails every command
 * with EBADF and every ioctl with ENOTTY, which makes libibverbs read GIDs
 * and P_Keys from the device tree.
 */
static int hfi1_soft_cmd_fd(int cmd_fd)
{
	close(cmd_fd);
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Bring-up may size the soft HFI's driver (Documentation/soft-hfi.md):
 * softhfi/<param> files in the device's directory, each optional.
 */
static void read_soft_param(const struct hfi1_device *dev, const char *name,
			    unsigned int *val)
{
	char file[64];
	uint64_t v;

	snprintf(file, sizeof(file), "softhfi/%s", name);
	if (!hfi1_soft_read_u64(dev, file, &v) && v <= UINT_MAX)
		*val = v;
}

/* Assign the soft HFI's user context that backs this verbs context. */
static int soft_drv_open(struct hfi1_context *ctx)
{
	struct softhfi_params params;

	softhfi_default_params(&params);
	if (ctx->dev->unit >= 0)
		params.unit = ctx->dev->unit;
	read_soft_param(ctx->dev, "expected_count", &params.expected_count);
	read_soft_param(ctx->dev, "user_contexts", &params.user_contexts);
	read_soft_param(ctx->dev, "cache_size_mb", &params.cache_size_mb);
	read_soft_param(ctx->dev, "contig_pages", &params.contig_pages);

	ctx->drv = softhfi_open(&params);
	if (!ctx->drv) {
		/* A long format string stays whole, as in the kernel. */
		/* clang-format off */
		hfi1_err(ctx,
			 "cannot assign a soft HFI user context (expected_count %u, contig_pages %u): %s\n",
			 params.expected_count, params.contig_pages,
			 strerror(errno));
		/* clang-format on */
		return errno;
	}
	return 0;
}

/* --- the verbs the soft device answers itself --- */

static int
hfi1_soft_query_device_ex(struct ibv_context *ibctx,
			  const struct ibv_query_device_ex_input *input,
			  struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct ibv_device_attr_ex full = {};
	int ret;

	if (input && input->comp_mask) {
		hfi1_err(ctx, "unknown comp_mask 0x%x\n", input->comp_mask);
		return EINVAL;
	}
	if (attr_size < sizeof(attr->orig_attr)) {
		hfi1_err(ctx, "attr_size %zu is too small\n", attr_size);
		return EINVAL;
	}

	ret = hfi1_soft_query_device(ctx, &full);
	if (ret)
		return ret;
	/* Callers built against an older verbs.h pass a shorter struct. */
	memcpy(attr, &full,
	       attr_size < sizeof(full) ? attr_size : sizeof(full));
	return 0;
}

static int hfi1_soft_query_port_op(struct ibv_context *ibctx, uint8_t port,
				   struct ibv_port_attr *attr)
{
	return hfi1_soft_query_port(to_hfi1_ctx(ibctx), port, attr);
}

static const struct verbs_context_ops hfi1_soft_ctx_ops = {
	.alloc_pd = hfi1_alloc_pd,
	.dealloc_pd = hfi1_dealloc_pd,
	.dereg_mr = hfi1_dereg_mr,
	.free_context = hfi1_free_context,
	.query_device_ex = hfi1_soft_query_device_ex,
	.query_port = hfi1_soft_query_port_op,
	.reg_mr = hfi1_reg_mr,
	.rereg_mr = hfi1_rereg_mr,
};

static int hfi1_soft_open(struct hfi1_context *ctx)
{
	/* One completion vector: the soft HFI's engine thread. */
	ctx->ibv_ctx.context.num_comp_vectors = 1;
	return soft_drv_open(ctx);
}

const struct hfi1_backend hfi1_soft_backend = {
	.name = "soft",
	.flags = HFI1_BACKEND_ASYNC_QUEUE | HFI1_BACKEND_MR_CACHE,
	.ctx_ops = &hfi1_soft_ctx_ops,
	.cmd_fd = hfi1_soft_cmd_fd,
	.open = hfi1_soft_open,
};
