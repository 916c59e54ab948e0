/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the seam between the provider and what serves its device. Two
 * backends serve a context, chosen once by the match table when libibverbs
 * allocates the device:
 * - the soft HFI (backend_soft.c): the device and its driver emulated in
 *   this process, its state read from the tree hfi1-soft lays out;
 * - the kernel (backend_kernel.c): a real hfi1 behind the uverbs device
 *   and /dev/hfi1_N.
 * Each gives the context its hfi1 user context (ctx->drv, the driver
 * interface of drv/hfi1_drv.h) and its verbs ops. What the rest of the
 * provider does differently follows from the flags below, never from
 * which backend it is.
 */
#ifndef HFI1_BACKEND_H
#define HFI1_BACKEND_H

#include <rdma/ib_user_verbs.h>
#include <rdma/rvt-abi.h>

#include "hfi1.h"

enum hfi1_backend_flags {
	/*
	 * The provider makes the context's async event queue (async.h):
	 * there is no kernel to give one.
	 */
	HFI1_BACKEND_ASYNC_QUEUE = 1 << 0,
	/* MRs are served by the MR cache over ctx->drv (mr.h). */
	HFI1_BACKEND_MR_CACHE = 1 << 1,
};

/*
 * A CQ as its backend serves it: rdmavt's ring, which the provider polls
 * (cq.c), and the backend's own handle for it.
 */
struct hfi1_backend_cq {
	struct rvt_cq_wc *ring;
	uint32_t cqe; /* entries usable: the ring has cqe + 1 slots */
	void *handle; /* the soft HFI's struct softhfi_cq */
};

/*
 * The CQ commands, rdmavt's CREATE_CQ, RESIZE_CQ, REQ_NOTIFY_CQ and
 * DESTROY_CQ. Each returns 0 or an errno, with a log line for what it
 * refuses. The verb (cq.c) has checked its input and holds the CQ's poll
 * lock across resize.
 */
struct hfi1_backend_cq_ops {
	/*
	 * A CQ of @cqe entries whose events carry @user_handle; its
	 * completion events go to @channel (NULL: none), one of @ctx's.
	 * Fills @cq.
	 */
	int (*create)(struct hfi1_context *ctx, uint32_t cqe,
		      uint64_t user_handle, struct ibv_comp_channel *channel,
		      struct hfi1_backend_cq *cq);
	/* A new ring of @cqe entries holding the old one's; updates @cq. */
	int (*resize)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq,
		      uint32_t cqe);
	/* One completion event for the next (solicited) completion. */
	int (*arm)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq,
		   bool solicited_only);
	/* EBUSY while a QP or SRQ uses it. */
	int (*destroy)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq);
	/*
	 * Optional: a poller found @cq empty. A backend that is its own
	 * adapter does its work now if it can without waiting (the soft
	 * HFI's engine), so that completions come without a wake-up.
	 */
	void (*progress)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq);
};

/*
 * What a QP is created with: qp.c's checked input, naming the objects it
 * uses by the backend's handles for them.
 */
struct hfi1_backend_qp_init {
	enum ibv_qp_type qp_type; /* IBV_QPT_RC, _UC or _UD */
	bool sq_sig_all;
	uint32_t pdn;
	void *send_cq, *recv_cq; /* the backend's CQ handles */
	void *srq; /* the backend's SRQ handle; NULL: its own receive queue */
	struct ibv_qp_cap cap; /* as asked, within the provider's limits */
	uint64_t user_handle; /* the QP's async events carry it */
};

/*
 * A QP as its backend serves it: its handle and number, and rdmavt's
 * receive ring, which the provider fills without a call (wr.c).
 */
struct hfi1_backend_qp {
	void *handle; /* the soft HFI's struct softhfi_qp */
	uint32_t qpn;
	/* The receive ring and its geometry; rq is NULL with an SRQ. */
	struct rvt_rwq *rq;
	uint32_t rq_size; /* slots: max_recv_wr + 1 */
	uint32_t rq_max_sge; /* SGEs in each slot */
	struct ibv_qp_cap cap; /* as granted (>= as asked) */
};

/*
 * The QP commands (rdmavt's CREATE_QP, MODIFY_QP, QUERY_QP, DESTROY_QP,
 * with the kernel's structs) and posting. Each returns 0 or an errno; the
 * verb (qp.c, wr.c) has checked its input and logs what is refused.
 */
struct hfi1_backend_qp_ops {
	/* A QP as @init says; fills @qp. */
	int (*create)(struct hfi1_context *ctx,
		      const struct hfi1_backend_qp_init *init,
		      struct hfi1_backend_qp *qp);
	/*
	 * The kernel's MODIFY_QP: @cmd as ibv_cmd_modify_qp() fills it (but
	 * for qp_handle), the IB state machine's checks. EINVAL for a
	 * transition or attribute the spec refuses.
	 */
	int (*modify)(struct hfi1_context *ctx, struct hfi1_backend_qp *qp,
		      const struct ib_uverbs_modify_qp *cmd);
	/* The kernel's QUERY_QP response: all attributes and the caps. */
	int (*query)(struct hfi1_context *ctx, struct hfi1_backend_qp *qp,
		     struct ib_uverbs_query_qp_resp *resp);
	/* The QP's completions already in its CQs stay there. */
	int (*destroy)(struct hfi1_context *ctx, struct hfi1_backend_qp *qp);
	/*
	 * Post one send: @sg holds wr->num_sge entries; with IBV_SEND_INLINE
	 * the data is copied from their addresses before it returns, and so
	 * is @wr and @sg. 0, or ENOMEM (the send queue is full) or EINVAL,
	 * with nothing posted. Any thread; the fast path.
	 */
	int (*post_send)(struct hfi1_context *ctx, struct hfi1_backend_qp *qp,
			 const struct ib_uverbs_send_wr *wr,
			 const struct ib_uverbs_sge *sg);
	/* Receives were added to qp->rq (head store-released). */
	void (*post_recv_done)(struct hfi1_context *ctx,
			       struct hfi1_backend_qp *qp);
};

/* An SRQ as its backend serves it: its handle and rdmavt's ring. */
struct hfi1_backend_srq {
	void *handle; /* the soft HFI's struct softhfi_srq */
	struct rvt_rwq *rq;
	uint32_t rq_size; /* slots: max_wr + 1 */
	uint32_t max_wr;
	uint32_t max_sge; /* SGEs in each slot */
};

/*
 * The SRQ commands, rdmavt's CREATE_SRQ, MODIFY_SRQ, QUERY_SRQ and
 * DESTROY_SRQ. Each returns 0 or an errno; the verb (srq.c) has checked
 * its input and logs what is refused.
 */
struct hfi1_backend_srq_ops {
	/* An SRQ in PD @pdn whose events carry @user_handle; fills @srq. */
	int (*create)(struct hfi1_context *ctx, uint32_t pdn,
		      const struct ibv_srq_attr *attr, uint64_t user_handle,
		      struct hfi1_backend_srq *srq);
	/*
	 * IBV_SRQ_MAX_WR (a new ring, holding what is posted: @srq is
	 * updated; the caller keeps its posters out) and IBV_SRQ_LIMIT.
	 */
	int (*modify)(struct hfi1_context *ctx, struct hfi1_backend_srq *srq,
		      const struct ibv_srq_attr *attr, int attr_mask);
	int (*query)(struct hfi1_context *ctx, struct hfi1_backend_srq *srq,
		     struct ibv_srq_attr *attr);
	/* EBUSY while a QP uses it. */
	int (*destroy)(struct hfi1_context *ctx, struct hfi1_backend_srq *srq);
};

/* The AH commands, rdmavt's CREATE_AH and DESTROY_AH. 0 or an errno. */
struct hfi1_backend_ah_ops {
	/* An AH in PD @pdn: *@handle goes into UD sends' wr.ud.ah. */
	int (*create)(struct hfi1_context *ctx, uint32_t pdn,
		      const struct ib_uverbs_ah_attr *attr, uint32_t *handle);
	int (*destroy)(struct hfi1_context *ctx, uint32_t handle);
};

struct hfi1_backend {
	const char *name;
	unsigned int flags; /* enum hfi1_backend_flags */
	const struct verbs_context_ops *ctx_ops;
	/*
	 * Optional: given the fd libibverbs opened for the device, return the
	 * fd the context keeps as its cmd_fd (this one or another), or -1
	 * with errno set; @cmd_fd is then closed. Before the context exists.
	 */
	int (*cmd_fd)(int cmd_fd);
	/*
	 * Open the device for @ctx: assign its hfi1 user context (ctx->drv),
	 * register what the backend watches with ctx->evloop. 0 or an errno,
	 * with a log line; on failure nothing is left open.
	 */
	int (*open)(struct hfi1_context *ctx);
	/* Optional: undo open(), but for ctx->drv, which the caller closes. */
	void (*close)(struct hfi1_context *ctx);
	/* CQs (cq.c); NULL where the backend serves none yet. */
	const struct hfi1_backend_cq_ops *cq;
	/* QPs and posting (qp.c, wr.c); NULL where the backend has none. */
	const struct hfi1_backend_qp_ops *qp;
	/* AHs (ah.c); NULL where the backend has none. */
	const struct hfi1_backend_ah_ops *ah;
	/* SRQs (srq.c); NULL where the backend has none. */
	const struct hfi1_backend_srq_ops *srq;
};

extern const struct hfi1_backend hfi1_soft_backend;
extern const struct hfi1_backend hfi1_kernel_backend;

#endif /* HFI1_BACKEND_H */
