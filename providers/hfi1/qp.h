/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: queue pairs (qp.c), posting to them (wr.c) and address handles
 * (ah.c). One code path for both backends: the backend serves the QP and
 * AH commands and rdmavt's struct rvt_rwq receive ring (backend.h); the
 * provider fills the ring without a call.
 */
#ifndef HFI1_QP_H
#define HFI1_QP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/*
 * One work request of the extended send API (ibv_wr_*), collected between
 * wr_start and wr_complete. Its SGEs are sq.sges[sge, sge + wr.num_sge);
 * with IBV_SEND_INLINE there is one, whose addr is an offset into sq.inl
 * until wr_complete posts it.
 */
struct hfi1_wr_pending {
	struct ib_uverbs_send_wr wr;
	uint32_t sge;
	bool has_data; /* a data setter was called */
	bool has_ud; /* wr_set_ud_addr was called */
};

/*
 * The extended send API's state: the work requests collected since
 * wr_start. The arrays grow when a batch needs more and are kept for the
 * next one. All of it under hfi1_qp.sq_lock, held from wr_start to
 * wr_complete or wr_abort.
 */
struct hfi1_wr_batch {
	uint64_t send_ops; /* IBV_QP_EX_WITH_*: the QP's send_ops_flags */
	struct hfi1_wr_pending *wrs;
	size_t nwr, wrs_size;
	struct ib_uverbs_sge *sges;
	size_t nsge, sges_size;
	uint8_t *inl; /* inline data, copied by the setters */
	size_t inl_len, inl_size;
	/* The first error since wr_start (0: none): wr_complete returns it. */
	int err;
};

struct hfi1_qp {
	struct verbs_qp vqp; /* first: libibverbs' view (ibv_qp, ibv_qp_ex) */
	/*
	 * The backend's QP: its handle, QP number, receive ring (rq, rq_size,
	 * rq_max_sge) and caps as granted. Constant after create.
	 */
	struct hfi1_backend_qp be;
	/* A copy of vqp.qp.qp_type, for the fast path. */
	enum ibv_qp_type qp_type;
	bool sq_sig_all;
	/*
	 * Serializes posting to the receive ring (post_recv from several
	 * threads): it owns the ring's head. The engine owns its tail.
	 */
	pthread_spinlock_t rq_lock;
	/*
	 * Serializes posting sends: post_send, and the extended send API
	 * from wr_start to wr_complete or wr_abort (its critical section,
	 * ibv_wr_post(3)).
	 */
	pthread_spinlock_t sq_lock;
	struct hfi1_wr_batch sq; /* the extended send API's, under sq_lock */
	/* Async events queued for it, under ctx->async.lock (async.h). */
	uint32_t async_posted;
};

struct hfi1_ah {
	struct ibv_ah ibv_ah;
	uint32_t handle; /* the backend's, for UD sends' wr.ud.ah */
};

static inline struct hfi1_qp *to_hfi1_qp(struct ibv_qp *ibqp)
{
	return container_of(ibqp, struct hfi1_qp, vqp.qp);
}

static inline struct hfi1_qp *to_hfi1_qp_ex(struct ibv_qp_ex *ibqpx)
{
	return container_of(ibqpx, struct hfi1_qp, vqp.qp_ex);
}

static inline struct hfi1_ah *to_hfi1_ah(struct ibv_ah *ibah)
{
	return container_of(ibah, struct hfi1_ah, ibv_ah);
}

/* The send opcodes each QP type has (IBV_QP_EX_WITH_*, IBV_WR_* bits). */
#define HFI1_QP_EX_UD_OPS (IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM)
#define HFI1_QP_EX_UC_OPS                                \
	(HFI1_QP_EX_UD_OPS | IBV_QP_EX_WITH_RDMA_WRITE | \
	 IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM)
#define HFI1_QP_EX_RC_OPS                               \
	(HFI1_QP_EX_UC_OPS | IBV_QP_EX_WITH_RDMA_READ | \
	 IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |            \
	 IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD)

/* The IBV_QP_EX_WITH_* opcodes a QP of @type can post; 0: not served. */
static inline uint64_t hfi1_qp_type_send_ops(enum ibv_qp_type type)
{
	switch (type) {
	case IBV_QPT_RC:
		return HFI1_QP_EX_RC_OPS;
	case IBV_QPT_UC:
		return HFI1_QP_EX_UC_OPS;
	case IBV_QPT_UD:
		return HFI1_QP_EX_UD_OPS;
	default:
		return 0;
	}
}

static inline const char *hfi1_qp_type_str(enum ibv_qp_type type)
{
	switch (type) {
	case IBV_QPT_RC:
		return "RC";
	case IBV_QPT_UC:
		return "UC";
	case IBV_QPT_UD:
		return "UD";
	default:
		return "unsupported";
	}
}

/*
 * wr.c: set up the extended send API of @qp for @send_ops_flags (checked
 * by the caller): its ibv_qp_ex ops. Allocates nothing.
 */
void hfi1_qp_init_wr_ops(struct hfi1_qp *qp, uint64_t send_ops_flags);
/* wr.c: free what the extended send API allocated. */
void hfi1_qp_free_wr_batch(struct hfi1_qp *qp);

#endif /* HFI1_QP_H */
