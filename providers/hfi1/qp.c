// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: queue pairs over the backend's QP commands (backend.h), one
 * code path for both backends. The provider checks what it is given
 * against the limits it reports and converts between ibverbs' structs and
 * the kernel's (ib_uverbs_modify_qp, ib_uverbs_query_qp_resp); the IB
 * state machine and its attribute checks are the backend's, as they are
 * the kernel's under rdma-core's hfi1verbs. Posting is wr.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cq.h"
#include "qp.h"
#include "srq.h"
#include "verbs.h"

/* The create attributes served; the others are known, but not served. */
#define HFI1_QP_INIT_ATTR_SUPPORTED                            \
	(IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS | \
	 IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)
#define HFI1_QP_INIT_ATTR_KNOWN ((IBV_QP_INIT_ATTR_SEND_OPS_FLAGS << 1) - 1)

/*
 * The attributes of MODIFY_QP, the kernel's IB_QP_ATTR_STANDARD_BITS;
 * those up to IBV_QP_RATE_LIMIT are known, but not served.
 */
#define HFI1_QP_ATTR_SUPPORTED ((IBV_QP_DEST_QPN << 1) - 1)
#define HFI1_QP_ATTR_KNOWN ((IBV_QP_RATE_LIMIT << 1) - 1)
/*
 * QUERY_QP answers every attribute, whatever the mask: the mask may have
 * any bit below IBV_QP_RATE_LIMIT (those after DEST_QPN are reserved), as
 * ibv_cmd_query_qp() lets through; pyverbs asks with all of them.
 */
#define HFI1_QP_QUERY_ATTR_SUPPORTED (IBV_QP_RATE_LIMIT - 1)

/*
 * The backend's handle of a CQ.
 * XXX cq.c's struct hfi1_cq is being written: adjust here if its handle
 * moves.
 */
static void *cq_handle(struct ibv_cq *ibcq)
{
	return to_hfi1_cq(ibcq)->be.handle;
}

static const char *qp_state_str(enum ibv_qp_state state)
{
	static const char *const names[] = {
		[IBV_QPS_RESET] = "RESET", [IBV_QPS_INIT] = "INIT",
		[IBV_QPS_RTR] = "RTR",	   [IBV_QPS_RTS] = "RTS",
		[IBV_QPS_SQD] = "SQD",	   [IBV_QPS_SQE] = "SQE",
		[IBV_QPS_ERR] = "ERR",
	};

	if ((unsigned int)state < sizeof(names) / sizeof(names[0]))
		return names[state];
	return "an unknown state";
}

/* rdmavt's rvt_create_qp() checks, against the limits we report. */
static int check_qp_caps(struct hfi1_context *ctx, const struct ibv_qp_cap *cap,
			 bool srq)
{
	if (cap->max_send_wr > HFI1_MAX_QP_WR) {
		hfi1_err(ctx, "max_send_wr %u is over max_qp_wr %u\n",
			 cap->max_send_wr, HFI1_MAX_QP_WR);
		return EINVAL;
	}
	if (cap->max_send_sge > HFI1_MAX_SGE) {
		hfi1_err(ctx, "max_send_sge %u is over max_sge %u\n",
			 cap->max_send_sge, HFI1_MAX_SGE);
		return EINVAL;
	}
	if (cap->max_inline_data > HFI1_MAX_INLINE) {
		hfi1_err(ctx, "max_inline_data %u is over %u\n",
			 cap->max_inline_data, HFI1_MAX_INLINE);
		return EINVAL;
	}
	/* With an SRQ, the SRQ's caps are the receive queue's. */
	if (srq)
		return 0;
	if (cap->max_recv_wr > HFI1_MAX_QP_WR) {
		hfi1_err(ctx, "max_recv_wr %u is over max_qp_wr %u\n",
			 cap->max_recv_wr, HFI1_MAX_QP_WR);
		return EINVAL;
	}
	if (cap->max_recv_sge > HFI1_MAX_SGE) {
		hfi1_err(ctx, "max_recv_sge %u is over max_sge %u\n",
			 cap->max_recv_sge, HFI1_MAX_SGE);
		return EINVAL;
	}
	return 0;
}

static int check_cq(struct hfi1_context *ctx, struct ibv_cq *cq,
		    const char *which)
{
	if (!cq) {
		hfi1_err(ctx, "no %s CQ\n", which);
		return EINVAL;
	}
	if (cq->context != &ctx->ibv_ctx.context) {
		hfi1_err(ctx, "the %s CQ is another context's\n", which);
		return EINVAL;
	}
	return 0;
}

/* What create_qp_ex is given, checked; 0 or an errno with a log line. */
static int check_qp_init(struct hfi1_context *ctx,
			 const struct ibv_qp_init_attr_ex *attr)
{
	uint64_t ops;
	int ret;

	if (attr->comp_mask & ~HFI1_QP_INIT_ATTR_KNOWN) {
		hfi1_err(ctx, "unknown comp_mask bits 0x%x\n",
			 attr->comp_mask & ~HFI1_QP_INIT_ATTR_KNOWN);
		return EINVAL;
	}
	if (attr->comp_mask & ~HFI1_QP_INIT_ATTR_SUPPORTED) {
		hfi1_err(ctx, "comp_mask 0x%x is not supported\n",
			 attr->comp_mask & ~HFI1_QP_INIT_ATTR_SUPPORTED);
		return EOPNOTSUPP;
	}
	if (!(attr->comp_mask & IBV_QP_INIT_ATTR_PD) || !attr->pd) {
		hfi1_err(ctx, "no PD\n");
		return EINVAL;
	}
	if (attr->pd->context != &ctx->ibv_ctx.context) {
		hfi1_err(ctx, "the PD is another context's\n");
		return EINVAL;
	}
	if ((attr->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) &&
	    attr->create_flags) {
		hfi1_err(ctx, "create_flags 0x%x: none is supported\n",
			 attr->create_flags);
		return EOPNOTSUPP;
	}

	ops = hfi1_qp_type_send_ops(attr->qp_type);
	if (!ops) {
		hfi1_err(ctx, "QP type %d is not supported (RC, UC, UD are)\n",
			 attr->qp_type);
		return EOPNOTSUPP;
	}
	if ((attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) &&
	    (attr->send_ops_flags & ~ops)) {
		hfi1_err(ctx, "send_ops_flags 0x%llx are not supported on %s\n",
			 (unsigned long long)(attr->send_ops_flags & ~ops),
			 hfi1_qp_type_str(attr->qp_type));
		return EOPNOTSUPP;
	}

	ret = check_cq(ctx, attr->send_cq, "send");
	if (ret)
		return ret;
	ret = check_cq(ctx, attr->recv_cq, "receive");
	if (ret)
		return ret;
	if (attr->srq && attr->srq->context != &ctx->ibv_ctx.context) {
		hfi1_err(ctx, "the SRQ is not of this context\n");
		return EINVAL;
	}
	if (attr->srq && attr->qp_type == IBV_QPT_UD) {
		/* rdmavt serves SRQs to RC and UC QPs, as hfi1 does. */
		hfi1_err(ctx, "a UD QP cannot take an SRQ\n");
		return EINVAL;
	}
	return check_qp_caps(ctx, &attr->cap, attr->srq != NULL);
}

/* What set_qp() of libibverbs' cmd_qp.c does for the QPs it creates. */
static void init_ibv_qp(struct hfi1_qp *qp, struct ibv_context *ibctx,
			const struct ibv_qp_init_attr_ex *attr)
{
	struct ibv_qp *ibqp = &qp->vqp.qp;

	ibqp->context = ibctx;
	ibqp->qp_context = attr->qp_context;
	ibqp->pd = attr->pd;
	ibqp->send_cq = attr->send_cq;
	ibqp->recv_cq = attr->recv_cq;
	ibqp->srq = attr->srq;
	ibqp->qp_type = attr->qp_type;
	ibqp->state = IBV_QPS_RESET;
	ibqp->events_completed = 0;
	pthread_mutex_init(&ibqp->mutex, NULL);
	pthread_cond_init(&ibqp->cond, NULL);
	ibqp->qp_num = qp->be.qpn;
	ibqp->handle = qp->be.qpn;
	qp->vqp.comp_mask = 0;
}

static struct ibv_qp *create_qp(struct hfi1_context *ctx,
				struct ibv_qp_init_attr_ex *attr)
{
	const struct hfi1_backend_qp_ops *ops = ctx->dev->backend->qp;
	struct hfi1_backend_qp_init init;
	struct hfi1_qp *qp;
	int ret;

	if (!ops) {
		hfi1_err(ctx, "the %s backend serves no QPs\n",
			 ctx->dev->backend->name);
		errno = EOPNOTSUPP;
		return NULL;
	}
	ret = check_qp_init(ctx, attr);
	if (ret) {
		errno = ret;
		return NULL;
	}

	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_spin_init(&qp->rq_lock, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_init(&qp->sq_lock, PTHREAD_PROCESS_PRIVATE);
	qp->qp_type = attr->qp_type;
	qp->sq_sig_all = attr->sq_sig_all;

	init = (struct hfi1_backend_qp_init){
		.qp_type = attr->qp_type,
		.sq_sig_all = attr->sq_sig_all,
		.pdn = to_hfi1_pd(attr->pd)->pdn,
		.send_cq = cq_handle(attr->send_cq),
		.recv_cq = cq_handle(attr->recv_cq),
		.srq = attr->srq ? to_hfi1_srq(attr->srq)->be.handle : NULL,
		.cap = attr->cap,
		.user_handle = (uintptr_t)&qp->vqp.qp,
	};
	ret = ops->create(ctx, &init, &qp->be);
	if (ret) {
		hfi1_err(ctx, "cannot create a %s QP: %s\n",
			 hfi1_qp_type_str(attr->qp_type), strerror(ret));
		goto err_free;
	}
	/* The backend grants at least what was asked, and its ring holds it. */
	if (!init.srq &&
	    (!qp->be.rq || qp->be.rq_size <= qp->be.cap.max_recv_wr ||
	     qp->be.rq_max_sge < qp->be.cap.max_recv_sge)) {
		hfi1_err(ctx,
			 "QP %u: the backend's receive ring is too small\n",
			 qp->be.qpn);
		ops->destroy(ctx, &qp->be);
		ret = EPROTO;
		goto err_free;
	}

	init_ibv_qp(qp, &ctx->ibv_ctx.context, attr);
	if (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) {
		hfi1_qp_init_wr_ops(qp, attr->send_ops_flags);
		qp->vqp.comp_mask |= VERBS_QP_EX;
	}
	atomic_fetch_add_explicit(&to_hfi1_pd(attr->pd)->usecnt, 1,
				  memory_order_relaxed);
	/* As ibv_cmd_create_qp_ex2() does: the caps granted. */
	attr->cap = qp->be.cap;
	return &qp->vqp.qp;

err_free:
	pthread_spin_destroy(&qp->sq_lock);
	pthread_spin_destroy(&qp->rq_lock);
	free(qp);
	errno = ret;
	return NULL;
}

struct ibv_qp *hfi1_create_qp_ex(struct ibv_context *ibctx,
				 struct ibv_qp_init_attr_ex *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		errno = ret;
		return NULL;
	}
	return create_qp(ctx, attr);
}

struct ibv_qp *hfi1_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(pd->context);
	struct ibv_qp_init_attr_ex attr_ex = {};
	struct ibv_qp *qp;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		errno = ret;
		return NULL;
	}
	/* ibv_qp_init_attr is the beginning of ibv_qp_init_attr_ex. */
	memcpy(&attr_ex, attr, sizeof(*attr));
	attr_ex.comp_mask = IBV_QP_INIT_ATTR_PD;
	attr_ex.pd = pd;
	qp = create_qp(ctx, &attr_ex);
	if (qp)
		attr->cap = attr_ex.cap;
	return qp;
}

static void ah_attr_to_dest(const struct ibv_ah_attr *ah,
			    struct ib_uverbs_qp_dest *dest)
{
	memcpy(dest->dgid, ah->grh.dgid.raw, sizeof(dest->dgid));
	dest->flow_label = ah->grh.flow_label;
	dest->dlid = ah->dlid;
	dest->sgid_index = ah->grh.sgid_index;
	dest->hop_limit = ah->grh.hop_limit;
	dest->traffic_class = ah->grh.traffic_class;
	dest->sl = ah->sl;
	dest->src_path_bits = ah->src_path_bits;
	dest->static_rate = ah->static_rate;
	dest->is_global = ah->is_global;
	dest->port_num = ah->port_num;
}

static void dest_to_ah_attr(const struct ib_uverbs_qp_dest *dest,
			    struct ibv_ah_attr *ah)
{
	memcpy(ah->grh.dgid.raw, dest->dgid, sizeof(ah->grh.dgid.raw));
	ah->grh.flow_label = dest->flow_label;
	ah->dlid = dest->dlid;
	ah->grh.sgid_index = dest->sgid_index;
	ah->grh.hop_limit = dest->hop_limit;
	ah->grh.traffic_class = dest->traffic_class;
	ah->sl = dest->sl;
	ah->src_path_bits = dest->src_path_bits;
	ah->static_rate = dest->static_rate;
	ah->is_global = dest->is_global;
	ah->port_num = dest->port_num;
}

/*
 * The kernel's MODIFY_QP command as ibv_cmd_modify_qp() fills it: the
 * attributes @mask names, the others zero.
 */
static void modify_qp_cmd(const struct ibv_qp_attr *attr, int mask,
			  struct ib_uverbs_modify_qp *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->attr_mask = mask;
	if (mask & IBV_QP_STATE)
		cmd->qp_state = attr->qp_state;
	if (mask & IBV_QP_CUR_STATE)
		cmd->cur_qp_state = attr->cur_qp_state;
	if (mask & IBV_QP_EN_SQD_ASYNC_NOTIFY)
		cmd->en_sqd_async_notify = attr->en_sqd_async_notify;
	if (mask & IBV_QP_ACCESS_FLAGS)
		cmd->qp_access_flags = attr->qp_access_flags;
	if (mask & IBV_QP_PKEY_INDEX)
		cmd->pkey_index = attr->pkey_index;
	if (mask & IBV_QP_PORT)
		cmd->port_num = attr->port_num;
	if (mask & IBV_QP_QKEY)
		cmd->qkey = attr->qkey;
	if (mask & IBV_QP_AV)
		ah_attr_to_dest(&attr->ah_attr, &cmd->dest);
	if (mask & IBV_QP_PATH_MTU)
		cmd->path_mtu = attr->path_mtu;
	if (mask & IBV_QP_TIMEOUT)
		cmd->timeout = attr->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		cmd->retry_cnt = attr->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		cmd->rnr_retry = attr->rnr_retry;
	if (mask & IBV_QP_RQ_PSN)
		cmd->rq_psn = attr->rq_psn;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		cmd->max_rd_atomic = attr->max_rd_atomic;
	if (mask & IBV_QP_ALT_PATH) {
		ah_attr_to_dest(&attr->alt_ah_attr, &cmd->alt_dest);
		cmd->alt_pkey_index = attr->alt_pkey_index;
		cmd->alt_port_num = attr->alt_port_num;
		cmd->alt_timeout = attr->alt_timeout;
	}
	if (mask & IBV_QP_MIN_RNR_TIMER)
		cmd->min_rnr_timer = attr->min_rnr_timer;
	if (mask & IBV_QP_SQ_PSN)
		cmd->sq_psn = attr->sq_psn;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		cmd->max_dest_rd_atomic = attr->max_dest_rd_atomic;
	if (mask & IBV_QP_PATH_MIG_STATE)
		cmd->path_mig_state = attr->path_mig_state;
	if (mask & IBV_QP_DEST_QPN)
		cmd->dest_qp_num = attr->dest_qp_num;
}

int hfi1_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibqp->context);
	struct hfi1_qp *qp = to_hfi1_qp(ibqp);
	struct ib_uverbs_modify_qp cmd;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	if (attr_mask & ~HFI1_QP_ATTR_KNOWN) {
		hfi1_err(ctx, "QP %u: unknown attr_mask bits 0x%x\n",
			 qp->be.qpn, attr_mask & ~HFI1_QP_ATTR_KNOWN);
		return EINVAL;
	}
	if (attr_mask & ~HFI1_QP_ATTR_SUPPORTED) {
		hfi1_err(ctx, "QP %u: attr_mask 0x%x is not supported\n",
			 qp->be.qpn, attr_mask & ~HFI1_QP_ATTR_SUPPORTED);
		return EOPNOTSUPP;
	}

	modify_qp_cmd(attr, attr_mask, &cmd);
	cmd.qp_handle = ibqp->handle;
	ret = ctx->dev->backend->qp->modify(ctx, &qp->be, &cmd);
	if (ret) {
		if (attr_mask & IBV_QP_STATE)
			hfi1_err(
				ctx,
				"QP %u: %s to %s (attr_mask 0x%x) refused: %s\n",
				qp->be.qpn, qp_state_str(ibqp->state),
				qp_state_str(attr->qp_state), attr_mask,
				strerror(ret));
		else
			hfi1_err(
				ctx,
				"QP %u: modify in %s (attr_mask 0x%x) refused: %s\n",
				qp->be.qpn, qp_state_str(ibqp->state),
				attr_mask, strerror(ret));
		return ret;
	}
	/*
	 * A QP reset leaves no completions behind to be polled as the new
	 * QP's (IB allows either; mlx4 and mlx5 clean): a QP taken from ERR
	 * back to RTS would otherwise first poll the flushes of its past.
	 */
	if ((attr_mask & IBV_QP_STATE) && attr->qp_state == IBV_QPS_RESET) {
		hfi1_cq_clean(to_hfi1_cq(ibqp->recv_cq), qp->be.qpn);
		if (ibqp->send_cq != ibqp->recv_cq)
			hfi1_cq_clean(to_hfi1_cq(ibqp->send_cq), qp->be.qpn);
	}
	/* As ibv_modify_qp() does after us; for callers of the op itself. */
	if (attr_mask & IBV_QP_STATE)
		ibqp->state = attr->qp_state;
	return 0;
}

static void query_resp_to_caps(const struct ib_uverbs_query_qp_resp *r,
			       struct ibv_qp_cap *cap)
{
	cap->max_send_wr = r->max_send_wr;
	cap->max_recv_wr = r->max_recv_wr;
	cap->max_send_sge = r->max_send_sge;
	cap->max_recv_sge = r->max_recv_sge;
	cap->max_inline_data = r->max_inline_data;
}

int hfi1_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int attr_mask,
		  struct ibv_qp_init_attr *init_attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibqp->context);
	struct hfi1_qp *qp = to_hfi1_qp(ibqp);
	struct ib_uverbs_query_qp_resp r;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	/* As ibv_cmd_query_qp(): the rest needs the _ex command. */
	if (attr_mask & ~HFI1_QP_QUERY_ATTR_SUPPORTED) {
		hfi1_err(ctx, "QP %u: attr_mask 0x%x is not supported\n",
			 qp->be.qpn, attr_mask & ~HFI1_QP_QUERY_ATTR_SUPPORTED);
		return EOPNOTSUPP;
	}

	memset(&r, 0, sizeof(r));
	ret = ctx->dev->backend->qp->query(ctx, &qp->be, &r);
	if (ret) {
		hfi1_err(ctx, "QP %u: query failed: %s\n", qp->be.qpn,
			 strerror(ret));
		return ret;
	}

	/* The kernel answers every attribute, whatever attr_mask asks. */
	memset(attr, 0, sizeof(*attr));
	attr->qp_state = r.qp_state;
	attr->cur_qp_state = r.cur_qp_state;
	attr->path_mtu = r.path_mtu;
	attr->path_mig_state = r.path_mig_state;
	attr->qkey = r.qkey;
	attr->rq_psn = r.rq_psn;
	attr->sq_psn = r.sq_psn;
	attr->dest_qp_num = r.dest_qp_num;
	attr->qp_access_flags = r.qp_access_flags;
	query_resp_to_caps(&r, &attr->cap);
	dest_to_ah_attr(&r.dest, &attr->ah_attr);
	dest_to_ah_attr(&r.alt_dest, &attr->alt_ah_attr);
	attr->pkey_index = r.pkey_index;
	attr->alt_pkey_index = r.alt_pkey_index;
	attr->sq_draining = r.sq_draining;
	attr->max_rd_atomic = r.max_rd_atomic;
	attr->max_dest_rd_atomic = r.max_dest_rd_atomic;
	attr->min_rnr_timer = r.min_rnr_timer;
	attr->port_num = r.port_num;
	attr->timeout = r.timeout;
	attr->retry_cnt = r.retry_cnt;
	attr->rnr_retry = r.rnr_retry;
	attr->alt_port_num = r.alt_port_num;
	attr->alt_timeout = r.alt_timeout;

	memset(init_attr, 0, sizeof(*init_attr));
	init_attr->qp_context = ibqp->qp_context;
	init_attr->send_cq = ibqp->send_cq;
	init_attr->recv_cq = ibqp->recv_cq;
	init_attr->srq = ibqp->srq;
	init_attr->qp_type = ibqp->qp_type;
	query_resp_to_caps(&r, &init_attr->cap);
	init_attr->sq_sig_all = r.sq_sig_all;

	/* As ibv_query_qp() does after us; for callers of the op itself. */
	ibqp->state = attr->qp_state;
	return 0;
}

int hfi1_destroy_qp(struct ibv_qp *ibqp)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibqp->context);
	struct hfi1_qp *qp = to_hfi1_qp(ibqp);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	ret = ctx->dev->backend->qp->destroy(ctx, &qp->be);
	if (ret) {
		hfi1_err(ctx, "QP %u: cannot destroy: %s\n", qp->be.qpn,
			 strerror(ret));
		return ret;
	}

	hfi1_async_wait_acked(
		&ibqp->mutex, &ibqp->cond, &ibqp->events_completed,
		hfi1_async_forget(ctx, (uintptr_t)ibqp, qp->async_posted));
	atomic_fetch_sub_explicit(&to_hfi1_pd(ibqp->pd)->usecnt, 1,
				  memory_order_relaxed);
	hfi1_qp_free_wr_batch(qp);
	pthread_cond_destroy(&ibqp->cond);
	pthread_mutex_destroy(&ibqp->mutex);
	pthread_spin_destroy(&qp->sq_lock);
	pthread_spin_destroy(&qp->rq_lock);
	free(qp);
	return 0;
}
