// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: shared receive queues, as rdmavt's srq.c serves them: an
 * rvt_rwq ring the provider fills, which the engine takes receive WQEs
 * from for every QP attached, with the limit event (SRQ_LIMIT_REACHED)
 * armed by MODIFY_SRQ.
 *
 * The engine is the ring's only consumer (it moves tail, under e->lock);
 * the provider is its producer (head). Resize swaps the ring under
 * e->lock while the provider keeps its posters out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sctxt.h"

static size_t rwqe_size(uint32_t max_sge)
{
	return sizeof(struct rvt_rwqe) + max_sge * sizeof(struct rvt_wqe_sge);
}

static struct rvt_rwq *ring_alloc(uint32_t slots, uint32_t max_sge)
{
	return calloc(1, sizeof(struct rvt_rwq) + slots * rwqe_size(max_sge));
}

struct softhfi_srq *softhfi_srq_create(struct hfi1_drv *drv, uint32_t pdn,
				       uint32_t max_wr, uint32_t max_sge,
				       uint32_t limit, uint64_t user_handle,
				       struct softhfi_srq_info *info)
{
	struct sverbs *v = sverbs_of(drv);
	struct softhfi_srq *srq;

	if (!v || !v->engine) {
		errno = ENXIO;
		return NULL;
	}
	if (!sctxt_owned(v->ctxt)) {
		errno = EIO;
		return NULL;
	}
	if (!max_wr || max_wr > SOFTHFI_MAX_SRQ_WR || !max_sge ||
	    max_sge > SOFTHFI_MAX_SGE || limit > max_wr) {
		sverbs_log(v, SV_LOG_ERR,
			   "bad SRQ: max_wr %u, max_sge %u, limit %u", max_wr,
			   max_sge, limit);
		errno = EINVAL;
		return NULL;
	}
	srq = calloc(1, sizeof(*srq));
	if (!srq)
		return NULL;
	srq->v = v;
	srq->pdn = pdn;
	srq->user_handle = user_handle;
	srq->size = max_wr + 1;
	srq->max_sge = max_sge;
	srq->rwqe_size = rwqe_size(max_sge);
	srq->limit = limit;
	srq->rq = ring_alloc(srq->size, max_sge);
	if (!srq->rq) {
		free(srq);
		errno = ENOMEM;
		return NULL;
	}
	info->rq = srq->rq;
	info->rq_size = srq->size;
	info->max_wr = max_wr;
	info->max_sge = max_sge;
	return srq;
}

/* WQEs in the ring. */
static uint32_t srq_count(const struct softhfi_srq *srq)
{
	uint32_t head =
		atomic_load_explicit(&srq->rq->head.val, memory_order_acquire);
	uint32_t tail =
		atomic_load_explicit(&srq->rq->tail.val, memory_order_relaxed);

	return head >= tail ? head - tail : srq->size - tail + head;
}

int softhfi_srq_modify(struct softhfi_srq *srq, bool set_max_wr,
		       uint32_t max_wr, bool set_limit, uint32_t limit,
		       struct softhfi_srq_info *info)
{
	struct sengine *e = srq->v->engine;
	int ret = 0;

	pthread_mutex_lock(&e->lock);
	if (set_max_wr) {
		uint32_t n = srq_count(srq), tail, i;
		struct rvt_rwq *ring;

		if (!max_wr || max_wr > SOFTHFI_MAX_SRQ_WR || max_wr < n ||
		    (set_limit ? limit : srq->limit) > max_wr) {
			ret = EINVAL;
			goto out;
		}
		ring = ring_alloc(max_wr + 1, srq->max_sge);
		if (!ring) {
			ret = ENOMEM;
			goto out;
		}
		/* What is posted keeps its order, from slot 0. */
		tail = atomic_load(&srq->rq->tail.val);
		for (i = 0; i < n; i++) {
			memcpy((char *)ring->wq + i * srq->rwqe_size,
			       (char *)srq->rq->wq + ((tail + i) % srq->size) *
							     srq->rwqe_size,
			       srq->rwqe_size);
		}
		atomic_store(&ring->head.val, n);
		free(srq->rq);
		srq->rq = ring;
		srq->size = max_wr + 1;
	}
	if (set_limit) {
		if (limit > srq->size - 1) {
			ret = EINVAL;
			goto out;
		}
		srq->limit = limit;
	}
	info->rq = srq->rq;
	info->rq_size = srq->size;
	info->max_wr = srq->size - 1;
	info->max_sge = srq->max_sge;
out:
	pthread_mutex_unlock(&e->lock);
	return ret;
}

int softhfi_srq_query(struct softhfi_srq *srq, uint32_t *max_wr,
		      uint32_t *max_sge, uint32_t *limit)
{
	struct sengine *e = srq->v->engine;

	pthread_mutex_lock(&e->lock);
	*max_wr = srq->size - 1;
	*max_sge = srq->max_sge;
	*limit = srq->limit;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int softhfi_srq_destroy(struct softhfi_srq *srq)
{
	struct sengine *e = srq->v->engine;

	pthread_mutex_lock(&e->lock);
	if (srq->users) {
		pthread_mutex_unlock(&e->lock);
		return EBUSY;
	}
	pthread_mutex_unlock(&e->lock);
	free(srq->rq);
	free(srq);
	return 0;
}

bool ssrq_take_locked(struct softhfi_srq *srq, uint64_t *wr_id,
		      struct rvt_wqe_sge *sg, uint8_t *nsge)
{
	uint32_t tail, head;
	struct rvt_rwqe *w;

	tail = atomic_load_explicit(&srq->rq->tail.val, memory_order_relaxed);
	head = atomic_load_explicit(&srq->rq->head.val, memory_order_acquire);
	if (tail == head || tail >= srq->size || head >= srq->size)
		return false;
	w = (struct rvt_rwqe *)((char *)srq->rq->wq +
				(size_t)tail * srq->rwqe_size);
	*wr_id = w->wr_id;
	*nsge = w->num_sge > srq->max_sge ? srq->max_sge : w->num_sge;
	memcpy(sg, w->sg_list, sizeof(*sg) * *nsge);
	atomic_store_explicit(&srq->rq->tail.val,
			      tail + 1 >= srq->size ? 0 : tail + 1,
			      memory_order_release);
	/* Armed, and fewer left than the limit: the event, once. */
	if (srq->limit && srq_count(srq) < srq->limit) {
		srq->limit = 0;
		sverbs_event(srq->v, SEV_SRQ_LIMIT_REACHED, srq->user_handle);
	}
	return true;
}

bool ssrq_empty_locked(const struct softhfi_srq *srq)
{
	return !srq_count(srq);
}
