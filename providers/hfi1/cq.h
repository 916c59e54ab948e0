/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: completion queues (cq.c). One code path for both backends: the
 * backend serves the CQ commands and rdmavt's struct rvt_cq_wc ring
 * (backend.h), the provider polls the ring without a call.
 */
#ifndef HFI1_CQ_H
#define HFI1_CQ_H

#include <pthread.h>
#include <stdbool.h>

#include "backend.h"

struct hfi1_cq {
	struct verbs_cq vcq; /* first: libibverbs' view */
	/*
	 * The poller's lock: it owns the ring's tail, and keeps pollers out
	 * while a resize swaps the ring. Not taken for a CQ created
	 * IBV_CREATE_CQ_ATTR_SINGLE_THREADED but by resize.
	 */
	pthread_spinlock_t lock;
	bool single_threaded;
	struct hfi1_backend_cq be; /* ring, cqe, the backend's handle */
	/* The extended poll API's current entry, under lock. */
	const struct ib_uverbs_wc *cur;
	/* The parent domain it was created in (IBV_CQ_INIT_ATTR_MASK_PD). */
	struct hfi1_pd *parent;
	/* Async events queued for it, under ctx->async.lock (async.h). */
	uint32_t async_posted;
};

static inline struct hfi1_cq *to_hfi1_cq(struct ibv_cq *ibcq)
{
	return container_of(ibcq, struct hfi1_cq, vcq.cq);
}

static inline struct hfi1_cq *to_hfi1_cq_ex(struct ibv_cq_ex *ibcq)
{
	return container_of(ibcq, struct hfi1_cq, vcq.cq_ex);
}

/*
 * Take @qpn's completions out of the ring, for a QP gone to RESET: the
 * poller's side only. The entries between tail and the head seen are the
 * poller's; those kept move toward head and tail passes the removed ones,
 * so a producer, which writes only at head and reads tail, is not in the
 * way. mlx4's and mlx5's providers clean their CQs so.
 */
void hfi1_cq_clean(struct hfi1_cq *cq, uint32_t qpn);

#endif /* HFI1_CQ_H */
