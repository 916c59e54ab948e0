// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: shared receive queues over the backend's SRQ commands, filled
 * through rdmavt's receive ring as a QP's receive queue is (wr.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "srq.h"
#include "verbs.h"

static struct hfi1_context *srq_ctx(struct hfi1_srq *srq)
{
	return to_hfi1_ctx(srq->ibv_srq.context);
}

static int check_srq_attr(struct hfi1_context *ctx,
			  const struct ibv_srq_attr *attr, bool create)
{
	if (create && (!attr->max_wr || attr->max_wr > HFI1_MAX_SRQ_WR)) {
		hfi1_err(ctx, "max_wr %u: 1..%u\n", attr->max_wr,
			 HFI1_MAX_SRQ_WR);
		return EINVAL;
	}
	if (create && (!attr->max_sge || attr->max_sge > HFI1_MAX_SRQ_SGE)) {
		hfi1_err(ctx, "max_sge %u: 1..%u\n", attr->max_sge,
			 HFI1_MAX_SRQ_SGE);
		return EINVAL;
	}
	if (create && attr->srq_limit > attr->max_wr) {
		hfi1_err(ctx, "srq_limit %u is above max_wr %u\n",
			 attr->srq_limit, attr->max_wr);
		return EINVAL;
	}
	return 0;
}

struct ibv_srq *hfi1_create_srq(struct ibv_pd *ibpd,
				struct ibv_srq_init_attr *init)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibpd->context);
	const struct hfi1_backend_srq_ops *ops = ctx->dev->backend->srq;
	struct hfi1_srq *srq;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		goto err;
	if (!ops) {
		/* No hfi1 hardware here to serve them on; see libhfi1(7). */
		hfi1_err(ctx, "the %s backend serves no SRQs\n",
			 ctx->dev->backend->name);
		ret = EOPNOTSUPP;
		goto err;
	}
	ret = check_srq_attr(ctx, &init->attr, true);
	if (ret)
		goto err;
	srq = calloc(1, sizeof(*srq));
	if (!srq) {
		ret = ENOMEM;
		goto err;
	}
	pthread_spin_init(&srq->lock, PTHREAD_PROCESS_PRIVATE);
	ret = ops->create(ctx, to_hfi1_pd(ibpd)->pdn, &init->attr,
			  (uintptr_t)&srq->ibv_srq, &srq->be);
	if (ret) {
		hfi1_err(ctx, "cannot create an SRQ: %s\n", strerror(ret));
		pthread_spin_destroy(&srq->lock);
		free(srq);
		goto err;
	}
	atomic_fetch_add_explicit(&to_hfi1_pd(ibpd)->usecnt, 1,
				  memory_order_relaxed);
	/* What was granted, as the kernel answers. */
	init->attr.max_wr = srq->be.max_wr;
	init->attr.max_sge = srq->be.max_sge;
	return &srq->ibv_srq;

err:
	errno = ret;
	return NULL;
}

int hfi1_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
		    int attr_mask)
{
	struct hfi1_srq *srq = to_hfi1_srq(ibsrq);
	struct hfi1_context *ctx = srq_ctx(srq);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	if (attr_mask & ~(IBV_SRQ_MAX_WR | IBV_SRQ_LIMIT)) {
		hfi1_err(ctx, "unknown attr_mask bits 0x%x\n",
			 attr_mask & ~(IBV_SRQ_MAX_WR | IBV_SRQ_LIMIT));
		return EINVAL;
	}
	if ((attr_mask & IBV_SRQ_MAX_WR) &&
	    (!attr->max_wr || attr->max_wr > HFI1_MAX_SRQ_WR)) {
		hfi1_err(ctx, "max_wr %u: 1..%u\n", attr->max_wr,
			 HFI1_MAX_SRQ_WR);
		return EINVAL;
	}
	/* Resize swaps the ring: posters stay out meanwhile. */
	pthread_spin_lock(&srq->lock);
	ret = ctx->dev->backend->srq->modify(ctx, &srq->be, attr, attr_mask);
	pthread_spin_unlock(&srq->lock);
	if (ret)
		hfi1_err(ctx, "cannot modify the SRQ (mask 0x%x): %s\n",
			 attr_mask, strerror(ret));
	return ret;
}

int hfi1_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct hfi1_srq *srq = to_hfi1_srq(ibsrq);
	struct hfi1_context *ctx = srq_ctx(srq);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	return ctx->dev->backend->srq->query(ctx, &srq->be, attr);
}

int hfi1_destroy_srq(struct ibv_srq *ibsrq)
{
	struct hfi1_srq *srq = to_hfi1_srq(ibsrq);
	struct hfi1_context *ctx = srq_ctx(srq);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	ret = ctx->dev->backend->srq->destroy(ctx, &srq->be);
	if (ret) {
		hfi1_err(ctx, "cannot destroy the SRQ: %s\n", strerror(ret));
		return ret;
	}
	hfi1_async_wait_acked(
		&ibsrq->mutex, &ibsrq->cond, &ibsrq->events_completed,
		hfi1_async_forget(ctx, (uintptr_t)ibsrq, srq->async_posted));
	atomic_fetch_sub_explicit(&to_hfi1_pd(ibsrq->pd)->usecnt, 1,
				  memory_order_relaxed);
	pthread_spin_destroy(&srq->lock);
	free(srq);
	return 0;
}

int hfi1_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		       struct ibv_recv_wr **bad_wr)
{
	struct hfi1_srq *srq = to_hfi1_srq(ibsrq);
	struct hfi1_context *ctx = srq_ctx(srq);
	uint32_t posted;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		*bad_wr = wr;
		return ret;
	}
	pthread_spin_lock(&srq->lock);
	ret = hfi1_rwq_post(srq->be.rq, srq->be.rq_size, srq->be.max_sge, wr,
			    bad_wr, &posted);
	pthread_spin_unlock(&srq->lock);
	if (ret == EINVAL)
		hfi1_err(ctx, "wr_id %llu has %d SGEs (max_sge %u)\n",
			 (unsigned long long)(*bad_wr)->wr_id,
			 (*bad_wr)->num_sge, srq->be.max_sge);
	else if (ret)
		hfi1_dbg(ctx, "the SRQ is full (wr_id %llu)\n",
			 (unsigned long long)(*bad_wr)->wr_id);
	return ret;
}
