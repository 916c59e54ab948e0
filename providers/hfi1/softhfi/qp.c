// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: queue pairs, as rdmavt's qp.c serves them: create, modify (the
 * state machine, checked by qp_state.c), query, destroy, and posting
 * sends. Receives the provider writes into the QP's rvt_rwq ring itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sctxt.h"

/* The soft HFI's port, as MODIFY_QP checks attributes against it. */
static const struct sqp_limits soft_limits = {
	.port_cnt = 1,
	.pkey_tbl_len = 16,
	.gid_tbl_len = 1, /* the GIDs that are not empty: GID 0 */
	.max_rd_atom = SOFTHFI_MAX_RD_ATOM,
	.max_dest_rd_atom = SOFTHFI_MAX_RD_ATOM,
	.active_mtu = 5, /* IBV_MTU_4096 */
};

static struct sengine *qp_engine(struct hfi1_drv *drv)
{
	struct sverbs *v = sverbs_of(drv);

	return v ? v->engine : NULL;
}

static uint32_t ud_room(uint32_t n)
{
	return n ? n : 1;
}

struct softhfi_qp *softhfi_qp_create(struct hfi1_drv *drv,
				     const struct softhfi_qp_init *init,
				     struct softhfi_qp_info *info)
{
	struct sengine *e = qp_engine(drv);
	struct softhfi_qp *qp;
	size_t rq_bytes;
	int err;

	if (!e) {
		errno = ENODEV;
		return NULL;
	}
	if (!sctxt_owned(to_sctxt(drv))) {
		errno = EIO;
		return NULL;
	}
	if ((init->qp_type != IB_UVERBS_QPT_RC &&
	     init->qp_type != IB_UVERBS_QPT_UC &&
	     init->qp_type != IB_UVERBS_QPT_UD) ||
	    !init->send_cq || !init->recv_cq ||
	    init->max_send_wr > SOFTHFI_MAX_QP_WR ||
	    init->max_recv_wr > SOFTHFI_MAX_QP_WR ||
	    init->max_send_sge > SOFTHFI_MAX_SGE ||
	    init->max_recv_sge > SOFTHFI_MAX_SGE ||
	    init->max_inline_data > SOFTHFI_MAX_INLINE ||
	    (init->srq && (init->max_recv_wr || init->max_recv_sge) && 0)) {
		errno = EINVAL;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->v = e->v;
	qp->type = init->qp_type;
	qp->pdn = init->pdn;
	qp->sq_sig_all = init->sq_sig_all;
	qp->user_handle = init->user_handle;
	qp->send_cq = init->send_cq;
	qp->recv_cq = init->recv_cq;
	qp->srq = init->srq;
	qp->state = SQP_RESET;
	qp->port = 1;
	pthread_spin_init(&qp->sq_lock, PTHREAD_PROCESS_PRIVATE);

	/* One slot more than asked: head == tail means empty. */
	qp->sq_size = ud_room(init->max_send_wr) + 1;
	qp->max_send_sge = init->max_send_sge;
	qp->max_inline = init->max_inline_data;
	qp->slot_size = sizeof(struct swqe) +
			qp->max_send_sge * sizeof(struct ib_uverbs_sge) +
			qp->max_inline;
	qp->slot_size = (qp->slot_size + 63) & ~63u;
	qp->sq = calloc(qp->sq_size, qp->slot_size);
	if (!qp->sq)
		goto err_free;

	if (init->srq) {
		if (init->srq->v != e->v || init->srq->pdn != init->pdn) {
			errno = EINVAL;
			goto err_free;
		}
		qp->rcv_sg = calloc(init->srq->max_sge, sizeof(*qp->rcv_sg));
		if (!qp->rcv_sg)
			goto err_free;
	} else {
		qp->max_recv_wr = ud_room(init->max_recv_wr);
		qp->rq_size = qp->max_recv_wr + 1;
		qp->rq_max_sge = init->max_recv_sge ? init->max_recv_sge : 1;
		qp->rwqe_size = sizeof(struct rvt_rwqe) +
				qp->rq_max_sge * sizeof(struct rvt_wqe_sge);
		rq_bytes = sizeof(struct rvt_rwq) +
			   (size_t)qp->rq_size * qp->rwqe_size;
		qp->rq = calloc(1, rq_bytes);
		qp->rcv_sg = calloc(qp->rq_max_sge, sizeof(*qp->rcv_sg));
		if (!qp->rq || !qp->rcv_sg)
			goto err_free;
	}

	pthread_mutex_lock(&e->lock);
	err = swire_qpn_alloc(&e->wire, &qp->qpn);
	if (err) {
		pthread_mutex_unlock(&e->lock);
		sverbs_log(e->v, SV_LOG_ERR, "no QPN left on LID %u: %s",
			   e->v->lid, strerror(err));
		errno = err;
		goto err_free;
	}
	LIST_INSERT_HEAD(&e->qps, qp, entry);
	if (qp->srq)
		qp->srq->users++;
	pthread_mutex_unlock(&e->lock);
	scq_get(qp->send_cq);
	scq_get(qp->recv_cq);

	memset(info, 0, sizeof(*info));
	info->qpn = qp->qpn;
	info->rq = qp->rq;
	info->rq_size = qp->rq_size;
	info->rq_max_sge = qp->rq_max_sge;
	info->max_send_wr = qp->sq_size - 1;
	info->max_recv_wr = qp->rq ? qp->rq_size - 1 : 0;
	info->max_send_sge = qp->max_send_sge;
	info->max_recv_sge = qp->rq ? qp->rq_max_sge : 0;
	info->max_inline_data = qp->max_inline;
	return qp;

err_free:
	err = errno;
	free(qp->rcv_sg);
	free(qp->rq);
	free(qp->sq);
	pthread_spin_destroy(&qp->sq_lock);
	free(qp);
	errno = err ? err : ENOMEM;
	return NULL;
}

/* Take @qp out of the engine, its link and its QPN with it. e->lock. */
static void qp_unlink_locked(struct sengine *e, struct softhfi_qp *qp)
{
	LIST_REMOVE(qp, entry);
	if (qp->srq)
		qp->srq->users--;
	sqp_answer_locked(e, qp);
	if (qp->link) {
		qp->link->qp = NULL;
		qp->link->dead = true;
	}
	while (qp->resp_tail != qp->resp_head) {
		struct sresp *r = &qp->resp[qp->resp_tail++ % SQP_MAX_RESP];

		if (r->mr)
			e->v->ops.mr_put(r->mr);
	}
	swire_qpn_free(&e->wire, qp->qpn);
}

static void qp_free(struct softhfi_qp *qp)
{
	scq_put(qp->send_cq);
	scq_put(qp->recv_cq);
	free(qp->rcv_sg);
	free(qp->rq);
	free(qp->sq);
	pthread_spin_destroy(&qp->sq_lock);
	free(qp);
}

int softhfi_qp_destroy(struct softhfi_qp *qp)
{
	struct sengine *e = qp->v->engine;

	pthread_mutex_lock(&e->lock);
	qp_unlink_locked(e, qp);
	pthread_mutex_unlock(&e->lock);
	sengine_kick(e);
	qp_free(qp);
	return 0;
}

void sqp_destroy_all(struct sengine *e)
{
	struct softhfi_qp *qp;

	pthread_mutex_lock(&e->lock);
	while ((qp = LIST_FIRST(&e->qps))) {
		qp_unlink_locked(e, qp);
		qp_free(qp);
	}
	pthread_mutex_unlock(&e->lock);
}

/* Apply the attributes of a checked MODIFY_QP. e->lock. */
static void apply_locked(struct sengine *e, struct softhfi_qp *qp,
			 const struct ib_uverbs_modify_qp *c, uint8_t next)
{
	uint32_t m = c->attr_mask;

	if (m & SQP_ATTR_ACCESS_FLAGS)
		qp->access = c->qp_access_flags;
	if (m & SQP_ATTR_PKEY_INDEX)
		qp->pkey_index = c->pkey_index;
	if (m & SQP_ATTR_PORT)
		qp->port = c->port_num;
	if (m & SQP_ATTR_QKEY)
		qp->qkey = c->qkey;
	if (m & SQP_ATTR_AV)
		qp->ah = c->dest;
	if (m & SQP_ATTR_PATH_MTU)
		qp->path_mtu = c->path_mtu;
	if (m & SQP_ATTR_TIMEOUT)
		qp->timeout = c->timeout;
	if (m & SQP_ATTR_RETRY_CNT)
		qp->retry_cnt = c->retry_cnt;
	if (m & SQP_ATTR_RNR_RETRY)
		qp->rnr_retry = c->rnr_retry;
	if (m & SQP_ATTR_RQ_PSN)
		qp->rq_psn = c->rq_psn & 0xffffff;
	if (m & SQP_ATTR_SQ_PSN)
		qp->sq_psn = c->sq_psn & 0xffffff;
	if (m & SQP_ATTR_MAX_QP_RD_ATOMIC)
		qp->max_rd_atomic = c->max_rd_atomic;
	if (m & SQP_ATTR_MAX_DEST_RD_ATOMIC)
		qp->max_dest_rd_atomic = c->max_dest_rd_atomic;
	if (m & SQP_ATTR_MIN_RNR_TIMER)
		qp->min_rnr_timer = c->min_rnr_timer;
	if (m & SQP_ATTR_DEST_QPN)
		qp->dest_qpn = c->dest_qp_num & 0xffffff;

	if (next == qp->state)
		return;
	switch (next) {
	case SQP_RESET:
		if (qp->link) {
			qp->link->qp = NULL;
			qp->link->dead = true;
			qp->link = NULL;
		}
		/*
		 * Whatever was queued is dropped without completions, and
		 * the queue starts again at 0, as rdmavt's reset does: the
		 * peer's responder, reset too, expects message 0 first.
		 */
		pthread_spin_lock(&qp->sq_lock);
		atomic_store_explicit(&qp->sq_head, 0, memory_order_relaxed);
		qp->sq_done = qp->sq_next = 0;
		pthread_spin_unlock(&qp->sq_lock);
		qp->sq_off = qp->rsp_off = 0;
		qp->rd_out = 0;
		qp->e_ssn = 0;
		qp->in_msg = qp->drop_msg = false;
		qp->wait_until = 0;
		qp->rnr_tries = qp->conn_tries = 0;
		qp->state = next;
		qp->ack_deadline = 0;
		qp->retry_tries = 0;
		while (qp->resp_tail != qp->resp_head) {
			struct sresp *r =
				&qp->resp[qp->resp_tail++ % SQP_MAX_RESP];

			if (r->mr)
				e->v->ops.mr_put(r->mr);
			r->mr = NULL;
		}
		if (qp->rq) {
			atomic_store(&qp->rq->head.val, 0);
			atomic_store(&qp->rq->tail.val, 0);
		}
		break;
	case SQP_ERR:
		sqp_to_error_locked(e, qp);
		break;
	case SQP_SQD:
		qp->sq_draining = (m & SQP_ATTR_EN_SQD_ASYNC_NOTIFY) &&
				  c->en_sqd_async_notify;
		qp->state = next;
		break;
	default:
		qp->state = next;
	}
}

int softhfi_qp_modify(struct softhfi_qp *qp,
		      const struct ib_uverbs_modify_qp *cmd)
{
	struct sengine *e = qp->v->engine;
	const char *why = NULL;
	uint8_t next;
	int ret;

	pthread_mutex_lock(&e->lock);
	ret = sqp_check_modify(qp->type, qp->state, cmd, &soft_limits, &why);
	if (ret) {
		pthread_mutex_unlock(&e->lock);
		sverbs_log(qp->v, SV_LOG_ERR, "QP 0x%x in %s: %s", qp->qpn,
			   sqp_state_name(qp->state), why ? why : "invalid");
		return ret;
	}
	next = sqp_next_state(qp->state, cmd);
	apply_locked(e, qp, cmd, next);
	atomic_store(&qp->kicked, true);
	pthread_mutex_unlock(&e->lock);
	sengine_kick(e);
	return 0;
}

int softhfi_qp_query(struct softhfi_qp *qp, struct ib_uverbs_query_qp_resp *r)
{
	struct sengine *e = qp->v->engine;

	memset(r, 0, sizeof(*r));
	pthread_mutex_lock(&e->lock);
	r->qp_state = qp->state;
	r->cur_qp_state = qp->state;
	r->path_mtu = qp->path_mtu;
	r->path_mig_state = 2; /* IBV_MIG_ARMED is 1: MIGRATED, no APM */
	r->qkey = qp->qkey;
	r->rq_psn = qp->rq_psn;
	r->sq_psn = qp->sq_psn;
	r->dest_qp_num = qp->dest_qpn;
	r->qp_access_flags = qp->access;
	r->dest = qp->ah;
	r->pkey_index = qp->pkey_index;
	r->sq_draining = qp->state == SQP_SQD && qp->sq_done != qp->sq_next;
	r->max_rd_atomic = qp->max_rd_atomic;
	r->max_dest_rd_atomic = qp->max_dest_rd_atomic;
	r->min_rnr_timer = qp->min_rnr_timer;
	r->port_num = qp->port;
	r->timeout = qp->timeout;
	r->retry_cnt = qp->retry_cnt;
	r->rnr_retry = qp->rnr_retry;
	r->max_send_wr = qp->sq_size - 1;
	r->max_recv_wr = qp->rq ? qp->rq_size - 1 : 0;
	r->max_send_sge = qp->max_send_sge;
	r->max_recv_sge = qp->rq ? qp->rq_max_sge : 0;
	r->max_inline_data = qp->max_inline;
	r->sq_sig_all = qp->sq_sig_all;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

/* Copy WQE @w's inline data from where the poster has it into the WQE. */
static int inline_copy_in(struct softhfi_qp *qp, struct swqe *w, bool sent)
{
	char *dst = (char *)&w->sg[qp->max_send_sge];
	uint32_t i;
	int err;

	for (i = 0; i < w->wr.num_sge; i++) {
		/*
		 * A sendmsg() has just read these bytes whole: they are
		 * mapped, unless another thread unmaps what this one posts.
		 */
		if (sent) {
			memcpy(dst, (void *)(uintptr_t)w->sg[i].addr,
			       w->sg[i].length);
		} else {
			err = copy_from_user(qp->v->ctxt, dst, w->sg[i].addr,
					     w->sg[i].length);
			if (err)
				return err;
		}
		dst += w->sg[i].length;
	}
	w->inl = true;
	w->wr.num_sge = 0;
	w->inl_at = SWQE_INL_COPIED;
	return 0;
}

/*
 * Send WQE @idx, posted inline with its data left where the poster has
 * it, while its post still runs: the sendmsg() that puts it on the wire
 * reads the data, one system call where a copy first would make two.
 * Then the data goes into the WQE for a retransmission; if it did not go
 * out (no room, no link yet), copy_from_user() copies it, and memory
 * that faults is EFAULT as it would have been at once. e->lock, which
 * keeps the engine thread from the WQE until the data is in it.
 */
static int send_inline_now(struct sengine *e, struct softhfi_qp *qp,
			   uint32_t idx)
{
	struct swqe *w = sq_slot(qp, idx);
	int err;

	atomic_store(&qp->kicked, false);
	sqp_progress_locked(e, qp);
	/* Completed (UC, UD, a flush): its slot may be posted again. */
	if ((int32_t)(qp->sq_done - idx) > 0)
		return 0;
	err = inline_copy_in(qp, w, w->inl_at == SWQE_INL_USER_SENT);
	if (!err)
		return 0;
	pthread_spin_lock(&qp->sq_lock);
	if (atomic_load_explicit(&qp->sq_head, memory_order_relaxed) ==
	    idx + 1) {
		/* The last posted, and not sent: it was never posted. */
		atomic_store_explicit(&qp->sq_head, idx, memory_order_relaxed);
		pthread_spin_unlock(&qp->sq_lock);
		return err;
	}
	/* Another post came after it: it fails in its turn. */
	w->inl_at = SWQE_INL_FAULT;
	atomic_store(&qp->kicked, true);
	pthread_spin_unlock(&qp->sq_lock);
	return 0;
}

/* The AH's destination for a UD send. e->lock not needed: ah.c. */
int softhfi_post_send(struct softhfi_qp *qp, const struct ib_uverbs_send_wr *wr,
		      const struct ib_uverbs_sge *sg)
{
	struct sengine *e = qp->v->engine;
	uint64_t length = 0;
	struct swqe *w;
	uint32_t head, i;
	bool now;
	int ret = 0;

	switch (wr->opcode) {
	case IB_UVERBS_WR_SEND:
	case IB_UVERBS_WR_SEND_WITH_IMM:
		break;
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		if (qp->type == IB_UVERBS_QPT_UD)
			return EINVAL;
		break;
	case IB_UVERBS_WR_RDMA_READ:
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD:
		if (qp->type != IB_UVERBS_QPT_RC)
			return EINVAL;
		break;
	default:
		return EINVAL;
	}
	if (wr->num_sge > qp->max_send_sge)
		return EINVAL;
	if ((wr->opcode == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP ||
	     wr->opcode == IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD) &&
	    (wr->num_sge != 1 || sg[0].length != 8))
		return EINVAL;
	for (i = 0; i < wr->num_sge; i++)
		length += sg[i].length;
	if ((wr->send_flags & SSEND_INLINE) && length > qp->max_inline)
		return EINVAL;
	if (length > SOFTHFI_MAX_MSG)
		return EINVAL;
	if (qp->state < SQP_RTS && qp->state != SQP_ERR)
		return EINVAL;
	/* Inline data sent now is read where it is: send_inline_now(). */
	now = (wr->send_flags & SSEND_INLINE) && length && wr->num_sge <= 16 &&
	      !pthread_mutex_trylock(&e->lock);

	pthread_spin_lock(&qp->sq_lock);
	head = atomic_load_explicit(&qp->sq_head, memory_order_relaxed);
	/* The engine's sq_done is read racily: at worst a false "full". */
	if (head - __atomic_load_n(&qp->sq_done, __ATOMIC_ACQUIRE) >=
	    qp->sq_size - 1) {
		ret = ENOMEM;
		goto out;
	}
	w = sq_slot(qp, head);
	w->wr = *wr;
	w->length = length;
	w->inl = false;
	w->inl_at = SWQE_INL_COPIED;
	if (qp->type == IB_UVERBS_QPT_UD) {
		ret = softhfi_ah_resolve(qp->v, qp->pdn, wr->wr.ud.ah, &w->dlid,
					 &w->grh, w->dgid);
		if (ret)
			goto out;
	}
	if ((wr->send_flags & SSEND_INLINE) && length) {
		memcpy(w->sg, sg, sizeof(*sg) * wr->num_sge);
		w->inl_at = SWQE_INL_USER;
		/* Unless sent now, and read where it is: send_inline_now(). */
		if (!now) {
			ret = inline_copy_in(qp, w, false);
			if (ret)
				goto out;
		}
	} else if (wr->num_sge) {
		memcpy(w->sg, sg, sizeof(*sg) * wr->num_sge);
	}
	atomic_store_explicit(&qp->sq_head, head + 1, memory_order_release);
	atomic_store(&qp->kicked, true);
out:
	pthread_spin_unlock(&qp->sq_lock);
	if (now) {
		if (!ret)
			ret = send_inline_now(e, qp, head);
		sengine_unlock_progressed(e);
		return ret;
	}
	/* On the wire now, if the engine is free; else the engine's job. */
	if (!ret && !sengine_progress(e, qp))
		sengine_kick(e);
	return ret;
}

void softhfi_post_recv_done(struct softhfi_qp *qp)
{
	struct sengine *e = qp->v->engine;

	/* A QP in ERR flushes what is posted; an RNR wait ends sooner. */
	if (qp->state == SQP_ERR) {
		atomic_store(&qp->kicked, true);
		sengine_kick(e);
	}
}
