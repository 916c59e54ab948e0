/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: shared receive queues over the backend's SRQ commands (srq.c),
 * with rdmavt's receive ring, which the provider fills without a call.
 */
#ifndef HFI1_SRQ_H
#define HFI1_SRQ_H

#include <pthread.h>

#include "backend.h"

struct hfi1_srq {
	struct ibv_srq ibv_srq;
	struct hfi1_backend_srq be;
	/*
	 * Owns the ring's head: posters, and resize (MODIFY_SRQ with
	 * IBV_SRQ_MAX_WR), which swaps the ring.
	 */
	pthread_spinlock_t lock;
	/* Async events queued for it, under ctx->async.lock (async.h). */
	uint32_t async_posted;
};

static inline struct hfi1_srq *to_hfi1_srq(struct ibv_srq *ibsrq)
{
	return container_of(ibsrq, struct hfi1_srq, ibv_srq);
}

#endif /* HFI1_SRQ_H */
