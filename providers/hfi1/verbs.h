/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the verbs ops that the provider's object files implement, which
 * the backends' ops tables (backend_soft.c, backend_kernel.c) and the
 * device's (device.c) name.
 */
#ifndef HFI1_VERBS_H
#define HFI1_VERBS_H

#include <rdma/rvt-abi.h>

#include "hfi1.h"

/* context.c */
struct verbs_context *hfi1_alloc_context(struct ibv_device *ibdev, int cmd_fd,
					 void *private_data);
void hfi1_free_context(struct ibv_context *ibctx);

/* pd.c: PDs the provider serves itself */
struct ibv_pd *hfi1_alloc_pd(struct ibv_context *ibctx);
int hfi1_dealloc_pd(struct ibv_pd *ibpd);
struct ibv_td *hfi1_alloc_td(struct ibv_context *ibctx,
			     struct ibv_td_init_attr *attr);
int hfi1_dealloc_td(struct ibv_td *ibtd);
struct ibv_pd *
hfi1_alloc_parent_domain(struct ibv_context *ibctx,
			 struct ibv_parent_domain_init_attr *attr);

/* mr.c: MRs over the MR cache */
struct ibv_mr *hfi1_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			   uint64_t hca_va, int access);
int hfi1_dereg_mr(struct verbs_mr *vmr);
int hfi1_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
		  void *addr, size_t length, int access);

/* cq.c: CQs over the backend's rvt_cq_wc rings */
struct ibv_cq *hfi1_create_cq(struct ibv_context *ibctx, int cqe,
			      struct ibv_comp_channel *channel,
			      int comp_vector);
struct ibv_cq_ex *hfi1_create_cq_ex(struct ibv_context *ibctx,
				    struct ibv_cq_init_attr_ex *attr);
int hfi1_poll_cq(struct ibv_cq *ibcq, int num_entries, struct ibv_wc *wc);
int hfi1_req_notify_cq(struct ibv_cq *ibcq, int solicited_only);
int hfi1_resize_cq(struct ibv_cq *ibcq, int cqe);
int hfi1_destroy_cq(struct ibv_cq *ibcq);

/* qp.c: QPs over the backend's QP commands */
struct ibv_qp *hfi1_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
struct ibv_qp *hfi1_create_qp_ex(struct ibv_context *ibctx,
				 struct ibv_qp_init_attr_ex *attr);
int hfi1_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
		   int attr_mask);
int hfi1_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask,
		  struct ibv_qp_init_attr *init_attr);
int hfi1_destroy_qp(struct ibv_qp *ibqp);

/* wr.c: posting, the fast path (and the extended send API, qp.h) */
int hfi1_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad_wr);
int hfi1_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad_wr);
/*
 * Post a chain of receives into rdmavt's ring @rwq (@size slots of
 * @max_sge SGEs), as its only producer: the caller holds the ring's lock.
 * 0, or EINVAL (too many SGEs) or ENOMEM (full) with *bad_wr set;
 * *posted: how many went in before.
 */
int hfi1_rwq_post(struct rvt_rwq *rwq, uint32_t size, uint32_t max_sge,
		  struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr,
		  uint32_t *posted);
/* srq.c: SRQs over the backend's SRQ commands */
struct ibv_srq *hfi1_create_srq(struct ibv_pd *pd,
				struct ibv_srq_init_attr *attr);
int hfi1_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
		    int attr_mask);
int hfi1_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr);
int hfi1_destroy_srq(struct ibv_srq *ibsrq);
int hfi1_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		       struct ibv_recv_wr **bad_wr);

/* ah.c: AHs over the backend's AH commands */
struct ibv_ah *hfi1_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr);
int hfi1_destroy_ah(struct ibv_ah *ibah);

#endif /* HFI1_VERBS_H */
