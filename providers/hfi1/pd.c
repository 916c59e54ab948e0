// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: protection domains that the provider serves itself (the soft
 * backend's); the kernel backend's are the kernel's (backend_kernel.c).
 *
 * Thread domains and parent domains are the provider's alone, as in
 * rdma-core's providers: no command goes to the kernel for them. A parent
 * domain (struct hfi1_pd with a protection domain) is its PD's stand-in:
 * same pdn, same handle, so an MR, QP, SRQ or AH made through it is in its
 * PD. hfi1 has no doorbell or buffer a thread domain could make private,
 * and its queues are the driver's memory (rdmavt's, mapped), so a thread
 * domain changes nothing, and a parent domain's allocators are kept but
 * never asked: the man page leaves both to the provider.
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
		hfi1_err(ctx, "%s %u still has %d objects\n",
			 pd->protection ? "parent domain of PD" : "PD", pd->pdn,
			 atomic_load(&pd->usecnt));
		return EBUSY;
	}
	if (pd->protection) {
		atomic_fetch_sub(&pd->protection->usecnt, 1);
		if (pd->td)
			atomic_fetch_sub(&pd->td->usecnt, 1);
		free(pd);
		return 0;
	}

	pthread_mutex_lock(&ctx->obj_lock);
	ctx->num_pd--;
	pthread_mutex_unlock(&ctx->obj_lock);
	free(pd);
	return 0;
}

struct ibv_td *hfi1_alloc_td(struct ibv_context *ibctx,
			     struct ibv_td_init_attr *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct hfi1_td *td;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		errno = ret;
		return NULL;
	}
	if (!attr || attr->comp_mask) {
		hfi1_err(ctx, "unknown comp_mask 0x%x\n",
			 attr ? attr->comp_mask : 0);
		errno = EINVAL;
		return NULL;
	}
	td = calloc(1, sizeof(*td));
	if (!td) {
		errno = ENOMEM;
		return NULL;
	}
	td->ibv_td.context = ibctx;
	return &td->ibv_td;
}

int hfi1_dealloc_td(struct ibv_td *ibtd)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibtd->context);
	struct hfi1_td *td = container_of(ibtd, struct hfi1_td, ibv_td);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	if (atomic_load(&td->usecnt)) {
		hfi1_err(ctx, "TD still in %d parent domains\n",
			 atomic_load(&td->usecnt));
		return EBUSY;
	}
	free(td);
	return 0;
}

#define HFI1_PARENT_DOMAIN_COMP_MASK              \
	(IBV_PARENT_DOMAIN_INIT_ATTR_ALLOCATORS | \
	 IBV_PARENT_DOMAIN_INIT_ATTR_PD_CONTEXT)

struct ibv_pd *
hfi1_alloc_parent_domain(struct ibv_context *ibctx,
			 struct ibv_parent_domain_init_attr *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct hfi1_pd *parent, *pd;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		goto err;
	ret = EINVAL;
	if (attr->comp_mask & ~HFI1_PARENT_DOMAIN_COMP_MASK) {
		hfi1_err(ctx, "unknown comp_mask 0x%x\n",
			 attr->comp_mask & ~HFI1_PARENT_DOMAIN_COMP_MASK);
		goto err;
	}
	if (!attr->pd || attr->pd->context != ibctx) {
		hfi1_err(ctx, "no PD of this context\n");
		goto err;
	}
	pd = to_hfi1_pd(attr->pd);
	if (pd->protection) {
		hfi1_err(ctx, "the PD is a parent domain itself\n");
		goto err;
	}
	if (attr->td && attr->td->context != ibctx) {
		hfi1_err(ctx, "the TD is not of this context\n");
		goto err;
	}
	if ((attr->comp_mask & IBV_PARENT_DOMAIN_INIT_ATTR_ALLOCATORS) &&
	    (!attr->alloc || !attr->free)) {
		hfi1_err(ctx, "allocators without alloc or free\n");
		goto err;
	}
	parent = calloc(1, sizeof(*parent));
	if (!parent) {
		ret = ENOMEM;
		goto err;
	}
	parent->ibv_pd.context = ibctx;
	parent->ibv_pd.handle = pd->ibv_pd.handle;
	parent->pdn = pd->pdn;
	parent->protection = pd;
	atomic_fetch_add(&pd->usecnt, 1);
	if (attr->td) {
		parent->td = container_of(attr->td, struct hfi1_td, ibv_td);
		atomic_fetch_add(&parent->td->usecnt, 1);
	}
	if (attr->comp_mask & IBV_PARENT_DOMAIN_INIT_ATTR_ALLOCATORS) {
		parent->alloc = attr->alloc;
		parent->free = attr->free;
	}
	if (attr->comp_mask & IBV_PARENT_DOMAIN_INIT_ATTR_PD_CONTEXT)
		parent->pd_context = attr->pd_context;
	return &parent->ibv_pd;

err:
	errno = ret;
	return NULL;
}
