// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: protection domains that the provider serves itself (the soft
 * backend's); the kernel backend's are the kernel's (backend_kernel.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "verbs.h"

struct ibv_pd *hfi1_alloc_pd(struct ibv_context *ibctx)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct hfi1_pd *pd;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		errno = ret;
		return NULL;
	}
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

int hfi1_dealloc_pd(struct ibv_pd *ibpd)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibpd->context);
	struct hfi1_pd *pd = to_hfi1_pd(ibpd);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
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
