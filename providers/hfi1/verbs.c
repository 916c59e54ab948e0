// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: device queries and protection domains, for both backends.
 *
 * The soft HFI answers from its own state; the kernel backend sends the
 * standard uverbs commands, which the hfi1 driver (through rdmavt) serves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "softdev.h"
#include "verbs.h"

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

static struct ibv_pd *hfi1_soft_alloc_pd(struct ibv_context *ibctx)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct hfi1_pd *pd;

	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}

	pthread_mutex_lock(&ctx->obj_lock);
	if (ctx->num_pd >= HFI1_MAX_PD) {
		pthread_mutex_unlock(&ctx->obj_lock);
		hfi1_err(ctx, "out of PDs (max_pd %u)\n", HFI1_MAX_PD);
		free(pd);
		errno = ENOMEM;
		return NULL;
	}
	ctx->num_pd++;
	pd->pdn = ++ctx->next_pdn;
	pthread_mutex_unlock(&ctx->obj_lock);

	pd->ibv_pd.context = ibctx;
	pd->ibv_pd.handle = pd->pdn;
	return &pd->ibv_pd;
}

static int hfi1_soft_dealloc_pd(struct ibv_pd *ibpd)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibpd->context);
	struct hfi1_pd *pd = to_hfi1_pd(ibpd);

	if (atomic_load(&pd->usecnt)) {
		hfi1_err(ctx, "PD %u still has %d objects\n", pd->pdn,
			 atomic_load(&pd->usecnt));
		return EBUSY;
	}

	pthread_mutex_lock(&ctx->obj_lock);
	ctx->num_pd--;
	pthread_mutex_unlock(&ctx->obj_lock);
	free(pd);
	return 0;
}

const struct verbs_context_ops hfi1_soft_ctx_ops = {
	.alloc_pd = hfi1_soft_alloc_pd,
	.dealloc_pd = hfi1_soft_dealloc_pd,
	.dereg_mr = hfi1_soft_dereg_mr,
	.free_context = hfi1_free_context,
	.query_device_ex = hfi1_soft_query_device_ex,
	.query_port = hfi1_soft_query_port_op,
	.reg_mr = hfi1_soft_reg_mr,
	.rereg_mr = hfi1_soft_rereg_mr,
};

/*
 * --- the kernel backend: standard uverbs commands ---
 *
 * It has no MRs yet: reg_mr needs ibv_cmd_reg_mr beside the cache, so
 * libibverbs answers EOPNOTSUPP for it.
 */

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

const struct verbs_context_ops hfi1_kernel_ctx_ops = {
	.alloc_pd = hfi1_kernel_alloc_pd,
	.dealloc_pd = hfi1_kernel_dealloc_pd,
	.free_context = hfi1_free_context,
	.query_device_ex = hfi1_kernel_query_device_ex,
	.query_port = hfi1_kernel_query_port,
};
