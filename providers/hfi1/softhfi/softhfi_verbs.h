/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The soft HFI's verbs server: what rdmavt and the uverbs core are for
 * hfi1 in the kernel, served in this process. It speaks the kernel's ABI
 * (<rdma/ib_user_verbs.h>, <rdma/rvt-abi.h>) and no ibverbs type:
 * - completion queues are struct rvt_cq_wc rings of struct ib_uverbs_wc,
 *   which the provider polls without a call;
 * - receive queues are struct rvt_rwq rings, which the provider fills
 *   without a call;
 * - sends are struct ib_uverbs_send_wr, queued to the engine (engine.c),
 *   the thread that is the adapter: it sends, receives, places, acks and
 *   completes without the application calling in.
 *
 * Memory keys are the provider's (its MR table over the MR cache): the
 * engine resolves them through struct softhfi_verbs_ops, and places what
 * it receives through the TIDs of the MR it resolved, with the driver
 * interface's placement primitive (hfi1_drv_place()).
 */
#ifndef SOFTHFI_VERBS_H
#define SOFTHFI_VERBS_H

#include <stdbool.h>
#include <stdint.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rvt-abi.h>

#include "hfi1_drv.h"

/* What one soft context serves (the provider reports the same). */
#define SOFTHFI_MAX_QP_WR 16384
#define SOFTHFI_MAX_SGE 32
#define SOFTHFI_MAX_INLINE 256
#define SOFTHFI_MAX_RD_ATOM 16
#define SOFTHFI_MAX_AH 65536
#define SOFTHFI_MAX_SRQ_WR 16384
#define SOFTHFI_MAX_MSG 0x80000000U /* hfi1's max_msg_sz: 2 GiB */

struct softhfi_cq;
struct softhfi_qp;
struct softhfi_srq;
struct hfi1_data_counters;

/* What the provider gives the verbs server of a context. */
struct softhfi_verbs_ops {
	/*
	 * An async event (IB_EVENT_* values, as ibv_event_type) on the
	 * object whose user_handle is @element. Never blocks; called from
	 * the engine or from a verb's thread.
	 */
	void (*event)(void *arg, uint32_t type, uint64_t element);
	/*
	 * Resolve @key for [iova, iova + len) in PD @pdn: for a remote
	 * access (@remote, @access IB_UVERBS_ACCESS_REMOTE_*) or a local
	 * one (@access 0 or IB_UVERBS_ACCESS_LOCAL_WRITE). On success the
	 * MR cannot be deregistered until mr_put(*mr): 0. Else ENOENT (no
	 * such key), EACCES (PD or access), ERANGE (outside the MR), ESTALE
	 * (invalidated: nothing may land there).
	 */
	int (*mr_get)(void *arg, uint32_t key, uint32_t pdn, uint64_t iova,
		      uint64_t len, uint32_t access, bool remote, void **mr);
	/*
	 * The TID of a resolved MR that maps byte @iova: its tidinfo,
	 * @iova's offset in it and the bytes left in it from there. 0,
	 * ERANGE or ESTALE.
	 */
	int (*mr_tid)(void *mr, uint64_t iova, uint32_t *tidinfo,
		      uint32_t *offset, uint32_t *left);
	/* The user address of byte @iova of a resolved MR (for sends). */
	uint64_t (*mr_addr)(void *mr, uint64_t iova);
	void (*mr_put)(void *mr);
	/* One log line, VERBS_LOG_* level. */
	void (*log)(void *arg, int level, const char *msg);
	void *arg;
};

/* Where the context sits on the soft fabric. */
struct softhfi_port {
	/* The node-local directory of (LID, QPN) endpoints, shared by the
	 * soft devices of one bring-up. */
	const char *fabric_dir;
	uint16_t lid;
	uint8_t gid[16]; /* GID[0] */
	/*
	 * Where the engine counts the packets and bytes it sends, receives
	 * and places (hfi1_stats_file.h: the context's stats file), until
	 * softhfi_verbs_stop(); NULL: in the verbs server's own memory.
	 */
	struct hfi1_data_counters *counters;
};

/*
 * Start the verbs server of the soft context @drv: its objects, its
 * engine thread and its endpoint on the fabric. 0 or an errno.
 */
int softhfi_verbs_start(struct hfi1_drv *drv, const struct softhfi_port *port,
			const struct softhfi_verbs_ops *ops);
/*
 * Stop the engine; every object still there is destroyed. In a forked
 * child it frees nothing but the child's copy.
 */
void softhfi_verbs_stop(struct hfi1_drv *drv);

/* --- completion queues (cq.c) --- */

/*
 * rdmavt's limits as hfi1 sets them for the provider (its HFI1_MAX_CQ and
 * HFI1_MAX_CQE, which the soft backend checks are the same).
 */
#define SOFTHFI_MAX_CQ 4096
#define SOFTHFI_MAX_CQE 65536
/* The kernel's IB_EVENT_CQ_ERR (enum ib_event_type), as IBV_EVENT_CQ_ERR. */
#define SOFTHFI_EVENT_CQ_ERR 0

/*
 * A CQ of at least @cqe entries (the ring holds cqe + 1 slots, rdmavt's
 * layout). @user_handle goes into its events: the comp channel's
 * (struct ib_uverbs_comp_event_desc) and the async CQ_ERR. @comp_fd is
 * the write end of the completion channel, or -1; the CQ owns it from
 * now on (it closes it, also on failure). NULL with errno set: EINVAL for
 * a bad @cqe (with a log line), ENXIO before softhfi_verbs_start(),
 * ENOMEM past SOFTHFI_MAX_CQ.
 */
struct softhfi_cq *softhfi_cq_create(struct hfi1_drv *drv, uint32_t cqe,
				     uint64_t user_handle, int comp_fd);
/* The ring and its size (entries usable: cqe); changes only on resize. */
struct rvt_cq_wc *softhfi_cq_ring(struct softhfi_cq *cq, uint32_t *cqe);
/*
 * A new ring of at least @cqe entries, holding what the old one held
 * (EINVAL if it holds more than @cqe). The caller keeps its pollers out
 * while it runs and reads the ring again after.
 */
int softhfi_cq_resize(struct softhfi_cq *cq, uint32_t cqe);
/* Arm for the next completion, or the next solicited one. 0 or an errno. */
int softhfi_cq_arm(struct softhfi_cq *cq, bool solicited_only);
/*
 * A poller found @cq empty: do the engine's work now, in the caller's
 * thread, if the engine thread is not at it (receives land and complete
 * without waiting for it to wake). Never waits on the engine.
 */
void softhfi_cq_progress(struct softhfi_cq *cq);
/* EBUSY while a QP or SRQ uses it; else 0 and @cq is gone. */
int softhfi_cq_destroy(struct softhfi_cq *cq);

/* --- queue pairs (qp.c) --- */

struct softhfi_qp_init {
	uint8_t qp_type; /* IB_UVERBS_QPT_RC, _UC, _UD */
	bool sq_sig_all;
	uint32_t pdn;
	struct softhfi_cq *send_cq, *recv_cq;
	struct softhfi_srq *srq; /* NULL: the QP has its own receive queue */
	uint32_t max_send_wr, max_recv_wr;
	uint32_t max_send_sge, max_recv_sge;
	uint32_t max_inline_data;
	uint64_t user_handle; /* for async events and completions' qp_num */
};

/* What the created QP gives back. */
struct softhfi_qp_info {
	uint32_t qpn;
	/* The receive ring (NULL with an SRQ) and its geometry. */
	struct rvt_rwq *rq;
	uint32_t rq_size; /* slots: max_recv_wr + 1 */
	uint32_t rq_max_sge;
	/* The caps as granted (>= those asked). */
	uint32_t max_send_wr, max_recv_wr;
	uint32_t max_send_sge, max_recv_sge;
	uint32_t max_inline_data;
};

/* NULL with errno set: EINVAL for a bad type or cap. */
struct softhfi_qp *softhfi_qp_create(struct hfi1_drv *drv,
				     const struct softhfi_qp_init *init,
				     struct softhfi_qp_info *info);
/*
 * The kernel's MODIFY_QP, with its checks (IB spec 10.3: the state table,
 * the attributes each transition needs and allows, their values): 0 or
 * EINVAL. Moving to ERR flushes.
 */
int softhfi_qp_modify(struct softhfi_qp *qp,
		      const struct ib_uverbs_modify_qp *cmd);
/* The kernel's QUERY_QP response, attributes and caps. */
int softhfi_qp_query(struct softhfi_qp *qp, struct ib_uverbs_query_qp_resp *r);
/* 0; the QP's completions already in its CQs stay there. */
int softhfi_qp_destroy(struct softhfi_qp *qp);

/*
 * Post one send: @sg holds wr->num_sge entries; inline data (IB_SEND_INLINE)
 * is copied from them now. 0, or ENOMEM (queue full), EINVAL (bad opcode,
 * too many SGEs, too much inline data, a UD send without an AH or a bad
 * one), with nothing queued.
 */
int softhfi_post_send(struct softhfi_qp *qp, const struct ib_uverbs_send_wr *wr,
		      const struct ib_uverbs_sge *sg);
/* Tell the engine about receives the provider put in the rvt_rwq ring. */
void softhfi_post_recv_done(struct softhfi_qp *qp);

/* --- shared receive queues (srq.c) --- */

/* The SRQ's receive ring, which the provider fills, and its geometry. */
struct softhfi_srq_info {
	struct rvt_rwq *rq;
	uint32_t rq_size; /* slots: max_wr + 1 */
	uint32_t max_wr;
	uint32_t max_sge;
};

/*
 * An SRQ in PD @pdn, armed at @limit (0: not armed); its events carry
 * @user_handle. NULL with errno set: EINVAL for bad sizes, ENXIO without
 * a verbs server.
 */
struct softhfi_srq *softhfi_srq_create(struct hfi1_drv *drv, uint32_t pdn,
				       uint32_t max_wr, uint32_t max_sge,
				       uint32_t limit, uint64_t user_handle,
				       struct softhfi_srq_info *info);
/*
 * MODIFY_SRQ: a new ring of @max_wr (what is posted moves with it; the
 * caller keeps its posters out and takes the ring from @info), and/or
 * arm the limit event at @limit. 0 or EINVAL.
 */
int softhfi_srq_modify(struct softhfi_srq *srq, bool set_max_wr,
		       uint32_t max_wr, bool set_limit, uint32_t limit,
		       struct softhfi_srq_info *info);
int softhfi_srq_query(struct softhfi_srq *srq, uint32_t *max_wr,
		      uint32_t *max_sge, uint32_t *limit);
/* EBUSY while a QP uses it. */
int softhfi_srq_destroy(struct softhfi_srq *srq);

/* --- address handles (ah.c) --- */

/* An AH for UD sends: a handle for ib_uverbs_send_wr's wr.ud.ah, or -1. */
int softhfi_ah_create(struct hfi1_drv *drv, uint32_t pdn,
		      const struct ib_uverbs_ah_attr *attr, uint32_t *handle);
int softhfi_ah_destroy(struct hfi1_drv *drv, uint32_t handle);

#endif /* SOFTHFI_VERBS_H */
