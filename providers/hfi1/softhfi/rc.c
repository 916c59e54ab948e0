// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the protocols the engine speaks for RC, UC and UD QPs (hfi1's
 * rc.c, uc.c and ud.c, over a stream instead of packets on a fabric).
 *
 * The link is reliable and in order, so RC keeps what it needs of IB's
 * and no more: each message carries its number in the send queue (ssn);
 * the responder answers every RC message in order (ACK, READ response,
 * atomic response or NAK), and the requester completes the oldest WQE in
 * flight with each answer. An RNR NAK rewinds the requester to the NAKed
 * message after the RNR timer; the responder drops every message until
 * that one comes again. A lost peer (the link closes) answers nothing
 * more: after retry_cnt + 1 timeouts, the oldest WQE in flight completes
 * with RETRY_EXC_ERR.
 *
 * Everything that lands goes through the TIDs of the MR it lands in
 * (place_mr()): the pinned pages, never the current mapping.
 *
 * All of it runs on the engine thread, or in a verb with e->lock held.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/uio.h>

#include "engine.h"
#include "sctxt.h"

#define UD_GRH_BYTES 40
#define UD_MTU 4096

_Static_assert(sizeof(struct ib_uverbs_sge) == sizeof(struct rvt_wqe_sge) &&
		       offsetof(struct ib_uverbs_sge, lkey) ==
			       offsetof(struct rvt_wqe_sge, lkey),
	       "the two SGE layouts match");

/* IB's RNR timer encoding (IB spec table 45), in microseconds. */
static const uint32_t rnr_usec[32] = {
	655360, 10,    20,    30,     40,     60,     80,     120,
	160,	240,   320,   480,    640,    960,    1280,   1920,
	2560,	3840,  5120,  7680,   10240,  15360,  20480,  30720,
	40960,	61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

static uint64_t timeout_ns(uint8_t timeout)
{
	/* 4.096 us * 2^timeout; 0 means for ever: try again every 100 ms. */
	if (!timeout)
		return 100000000ull;
	return 4096ull << (timeout > 31 ? 31 : timeout);
}

uint64_t sqp_timer_bound_ns(const struct softhfi_qp *qp)
{
	if (qp->type != IB_UVERBS_QPT_RC || qp->state != SQP_RTS)
		return UINT64_MAX;
	return timeout_ns(qp->timeout);
}

static uint32_t wc_opcode(uint32_t wr_opcode)
{
	switch (wr_opcode) {
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		return IB_UVERBS_WC_RDMA_WRITE;
	case IB_UVERBS_WR_RDMA_READ:
		return IB_UVERBS_WC_RDMA_READ;
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
		return IB_UVERBS_WC_COMP_SWAP;
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD:
		return IB_UVERBS_WC_FETCH_ADD;
	default:
		return IB_UVERBS_WC_SEND;
	}
}

static bool is_read_or_atomic(uint32_t op)
{
	return op == IB_UVERBS_WR_RDMA_READ ||
	       op == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP ||
	       op == IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD;
}

/* Complete the send WQE at sq_done and move past it. */
static void complete_send(struct softhfi_qp *qp, uint32_t status)
{
	struct swqe *w = sq_slot(qp, qp->sq_done);
	struct ib_uverbs_wc wc = {
		.wr_id = w->wr.wr_id,
		.status = status,
		.opcode = wc_opcode(w->wr.opcode),
		.qp_num = qp->qpn,
		.port_num = 1,
	};
	bool signaled =
		status || qp->sq_sig_all || (w->wr.send_flags & SSEND_SIGNALED);

	if (w->wr.opcode == IB_UVERBS_WR_RDMA_READ)
		wc.byte_len = w->length;
	else if (is_read_or_atomic(w->wr.opcode))
		wc.byte_len = 8;
	/*
	 * The slot is free (and w no longer ours) before its completion can
	 * be polled: a poster that counts the completions it polled must
	 * never find the queue full.
	 */
	__atomic_store_n(&qp->sq_done, qp->sq_done + 1, __ATOMIC_RELEASE);
	if (signaled)
		scq_push(qp->send_cq, &wc, false);
	qp->rnr_tries = 0;
	qp->conn_tries = 0;
	qp->retry_tries = 0;
	/* An answer came: the next one is due a timeout from now. */
	qp->ack_deadline = 0;
	if (qp->type == IB_UVERBS_QPT_RC && qp->sq_done != qp->sq_next &&
	    qp->timeout)
		qp->ack_deadline = sengine_now() + timeout_ns(qp->timeout);
}

static void complete_recv(struct softhfi_qp *qp, uint64_t wr_id,
			  uint32_t status, uint32_t opcode, uint32_t len,
			  const struct spkt *h)
{
	struct ib_uverbs_wc wc = {
		.wr_id = wr_id,
		.status = status,
		.opcode = opcode,
		.byte_len = len,
		.qp_num = qp->qpn,
		.src_qp = h ? h->sqpn : 0,
		.slid = h ? h->slid : 0,
		.port_num = 1,
	};

	if (h && (h->flags & SPF_IMM) && !status) {
		wc.ex.imm_data = h->imm;
		wc.wc_flags |= SWC_FLAG_WITH_IMM;
	}
	if (h && (h->flags & SPF_GRH))
		wc.wc_flags |= SWC_FLAG_GRH;
	scq_push_given(qp->recv_cq, &wc,
		       !status && h && (h->flags & SPF_SOLICITED),
		       h && (h->flags & SPF_EVENT_GIVEN));
}

/* --- placement: through the TIDs of the MR, never the mapping --- */

static uint32_t key_status(int err, bool remote)
{
	if (remote)
		return SWC_REM_ACCESS_ERR;
	return err == ERANGE ? SWC_LOC_LEN_ERR : SWC_LOC_PROT_ERR;
}

/*
 * Where placed data comes from: a link's stream, whose skipped headers
 * (l->skip) go first, its lane (lane), or the engine's byte pipe (l
 * NULL).
 */
struct ssrc {
	struct slink *l;
	int fd;
	bool lane;
};

static struct ssrc link_src(struct slink *l)
{
	if (l->rx_lane)
		return (struct ssrc){ .l = l, .fd = l->lane_in, .lane = true };
	return (struct ssrc){ .l = l, .fd = l->fd };
}

/*
 * Move @len bytes read from @src into [iova, iova + len) of the MR @key
 * names. *placed: the bytes read from @src. 0 or an errno (ENOENT, EACCES,
 * ERANGE, ESTALE from the key; EPIPE if the link died).
 */
static int place_mr(struct sengine *e, uint32_t key, uint32_t pdn,
		    uint64_t iova, uint64_t len, uint32_t access, bool remote,
		    struct ssrc src, uint64_t *placed)
{
	const struct softhfi_verbs_ops *ops = &e->v->ops;
	void *mr;
	int err;

	*placed = 0;
	if (!len)
		return 0;
	err = ops->mr_get(ops->arg, key, pdn, iova, len, access, remote, &mr);
	if (err)
		return err;
	while (*placed < len) {
		uint32_t tidinfo, offset, left;
		uint64_t n;
		ssize_t got;

		err = ops->mr_tid(mr, iova + *placed, &tidinfo, &offset, &left);
		if (err)
			break;
		n = len - *placed < left ? len - *placed : left;
		if (src.l && src.l->skip && !src.lane) {
			/* The skipped headers, read in the same call. */
			got = hfi1_drv_place_after(e->v->drv, src.l->skip,
						   tidinfo, offset, src.fd, n);
			if (got >= 0 || errno != EPIPE)
				src.l->skip = 0;
			else
				src.l->dead = true;
		} else {
			got = hfi1_drv_place(e->v->drv, tidinfo, offset, src.fd,
					     n);
		}
		if (got < 0) {
			err = errno == ESTALE || errno == EBADF ? ESTALE :
								  errno;
			/* A lane holds a payload whole, or has lost its way. */
			if (src.lane && err == EAGAIN) {
				src.l->dead = true;
				err = EPIPE;
			}
			break;
		}
		*placed += got;
		if ((uint64_t)got < n) {
			if (src.lane)
				src.l->dead = true;
			err = EPIPE;
			break;
		}
	}
	ops->mr_put(mr);
	sctr_add(&e->v->ctr->placed_bytes, *placed);
	return err;
}

/*
 * Place @len bytes from @fd at byte @off of the message that the SGE
 * list @sg describes. *used: the bytes read from @fd. 0, or a completion
 * status: LOC_LEN_ERR when the list is too short, LOC_PROT_ERR for a bad
 * key.
 */
static uint32_t place_sges(struct sengine *e, struct softhfi_qp *qp,
			   const struct rvt_wqe_sge *sg, unsigned int nsge,
			   uint64_t off, struct ssrc src, uint64_t len,
			   uint64_t *used)
{
	uint64_t start = 0;
	unsigned int i;

	*used = 0;
	for (i = 0; i < nsge && *used < len; i++) {
		uint64_t end = start + sg[i].length, n, inner, placed;
		int err;

		if (off + *used >= end) {
			start = end;
			continue;
		}
		inner = off + *used - start;
		n = sg[i].length - inner;
		if (n > len - *used)
			n = len - *used;
		err = place_mr(e, sg[i].lkey, qp->pdn, sg[i].addr + inner, n,
			       IB_UVERBS_ACCESS_LOCAL_WRITE, false, src,
			       &placed);
		*used += placed;
		if (err)
			return err == EPIPE ? SWC_GENERAL_ERR :
					      key_status(err, false);
		start = end;
	}
	return *used < len ? SWC_LOC_LEN_ERR : 0;
}

/* @len bytes of @buf into the SGE list, through the engine's pipe. */
static uint32_t place_bytes(struct sengine *e, struct softhfi_qp *qp,
			    const struct rvt_wqe_sge *sg, unsigned int nsge,
			    uint64_t off, const void *buf, size_t len)
{
	uint64_t used;
	uint32_t st;

	if (write(e->byte_pipe[1], buf, len) != (ssize_t)len)
		return SWC_GENERAL_ERR;
	st = place_sges(e, qp, sg, nsge, off,
			(struct ssrc){ .fd = e->byte_pipe[0] }, len, &used);
	if (used < len) {
		char sink[64];

		(void)!read(e->byte_pipe[0], sink, len - used);
	}
	return st;
}

/* --- state --- */

void sqp_flush_locked(struct sengine *e, struct softhfi_qp *qp)
{
	uint32_t head =
		atomic_load_explicit(&qp->sq_head, memory_order_acquire);

	while (qp->sq_done != head)
		complete_send(qp, SWC_WR_FLUSH_ERR);
	qp->sq_next = qp->sq_done;
	qp->sq_off = 0;
	qp->rd_out = 0;
	qp->rsp_off = 0;
	qp->ack_deadline = 0;
	qp->wait_until = 0;
	while (qp->resp_tail != qp->resp_head) {
		struct sresp *r = &qp->resp[qp->resp_tail++ % SQP_MAX_RESP];

		if (r->mr)
			e->v->ops.mr_put(r->mr);
		r->mr = NULL;
	}
	/* The receive under way: taken from the RQ or the SRQ. */
	if (qp->in_msg && !qp->drop_msg)
		complete_recv(qp, qp->rcv_wr_id, SWC_WR_FLUSH_ERR, SWC_RECV, 0,
			      NULL);
	if (qp->rq) {
		uint32_t tail = atomic_load_explicit(&qp->rq->tail.val,
						     memory_order_relaxed);
		uint32_t rhead = atomic_load_explicit(&qp->rq->head.val,
						      memory_order_acquire);

		while (tail != rhead && tail < qp->rq_size) {
			complete_recv(qp, rq_slot(qp, tail)->wr_id,
				      SWC_WR_FLUSH_ERR, SWC_RECV, 0, NULL);
			if (++tail >= qp->rq_size)
				tail = 0;
		}
		atomic_store_explicit(&qp->rq->tail.val, tail,
				      memory_order_release);
	}
	qp->in_msg = false;
	qp->drop_msg = false;
}

void sqp_to_error_locked(struct sengine *e, struct softhfi_qp *qp)
{
	if (qp->state == SQP_ERR)
		return;
	qp->state = SQP_ERR;
	/* The peer learns it as IB's would: nothing more answers. */
	if (qp->link) {
		qp->link->qp = NULL;
		qp->link->dead = true;
		qp->link = NULL;
	}
	sqp_flush_locked(e, qp);
	if (qp->srq)
		sverbs_event(e->v, SEV_QP_LAST_WQE_REACHED, qp->user_handle);
}

/*
 * The link to the peer is gone (its process died, its QP was destroyed
 * or went to ERR). As on a fabric, nothing answers any more: what is in
 * flight is sent again once the link is back, and the peer not coming
 * back fails the oldest WQE with RETRY_EXC_ERR after retry_cnt + 1
 * timeouts, as IB's requester gives up (no_link()). A peer that had
 * only stopped answering after its last message ends in the meantime,
 * as on hardware.
 */
void sqp_link_lost_locked(struct sengine *e, struct softhfi_qp *qp)
{
	qp->in_msg = false;
	qp->drop_msg = false;
	/* UC: nobody answers, so the fabric just loses what comes. */
	if (qp->type == IB_UVERBS_QPT_UC)
		qp->peer_lost = true;
	if (qp->type != IB_UVERBS_QPT_RC || qp->sq_done == qp->sq_next)
		return;
	qp->sq_next = qp->sq_done;
	qp->sq_off = 0;
	qp->rd_out = 0;
	qp->rsp_off = 0;
	qp->ack_deadline = 0;
}

static void arm_ack_timer(struct softhfi_qp *qp);

/* --- the responder --- */

static bool resp_full(struct softhfi_qp *qp)
{
	return qp->resp_head - qp->resp_tail >= SQP_MAX_RESP;
}

static struct sresp *resp_push(struct softhfi_qp *qp, uint8_t op, uint32_t ssn)
{
	struct sresp *r;

	if (resp_full(qp))
		return NULL;
	r = &qp->resp[qp->resp_head++ % SQP_MAX_RESP];
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->ssn = ssn;
	return r;
}

/*
 * An ACK answers every message up to its ssn, as IB's do: one queued
 * behind another not yet sent replaces it. While the link has no room
 * (both ends sending), the queue fills with READ and atomic responses,
 * which the requester bounds, never with ACKs, and no answer is lost.
 * @again: the ACK of a duplicate (recv_duplicate()), needless where the
 * one queued answers it already, and on the stream only, as the
 * doorbell may say a later one; so copies sent again and again never
 * fill the queue either.
 */
static void ack(struct softhfi_qp *qp, uint32_t ssn, bool again)
{
	struct sresp *r;

	if (qp->resp_head != qp->resp_tail) {
		r = &qp->resp[(qp->resp_head - 1) % SQP_MAX_RESP];
		if (r->op == SP_ACK) {
			if (again && (int32_t)(r->ssn - ssn) >= 0)
				return;
			r->ssn = ssn;
			r->again = again;
			return;
		}
	}
	r = resp_push(qp, SP_ACK, ssn);
	if (r)
		r->again = again;
}

/*
 * An answer of @op to message @ssn is queued and nothing of it sent yet:
 * a duplicate needs no second one (the requester drops the rest of one
 * it saw begin before it went back). So the duplicates of a requester that
 * goes back again and again hold at most one entry for each READ or
 * atomic it has in flight, as many as the originals, and the queue
 * (twice that, and two ACKs) never refuses an original for them.
 */
static bool resp_queued(const struct softhfi_qp *qp, uint8_t op, uint32_t ssn)
{
	uint32_t i;

	for (i = qp->resp_tail; i != qp->resp_head; i++)
		if (qp->resp[i % SQP_MAX_RESP].op == op &&
		    qp->resp[i % SQP_MAX_RESP].ssn == ssn &&
		    !qp->resp[i % SQP_MAX_RESP].sent)
			return true;
	return false;
}

static void nak(struct softhfi_qp *qp, uint32_t ssn, uint8_t syndrome)
{
	struct sresp *r = resp_push(qp, SP_NAK, ssn);

	if (r)
		r->nak = syndrome;
}

/* A responder error that IB reports to the responder's owner as well. */
static void responder_fatal(struct sengine *e, struct softhfi_qp *qp,
			    uint32_t ssn, uint8_t syndrome, uint32_t event)
{
	nak(qp, ssn, syndrome);
	/* The NAK goes out before the QP stops answering. */
	sqp_progress_locked(e, qp);
	sverbs_event(e->v, event, qp->user_handle);
	sqp_to_error_locked(e, qp);
}

/* Take the next receive WQE into rcv_*: false if there is none. */
static bool rq_take(struct softhfi_qp *qp)
{
	uint32_t tail, head;
	struct rvt_rwqe *w;

	if (qp->srq)
		return ssrq_take_locked(qp->srq, &qp->rcv_wr_id, qp->rcv_sg,
					&qp->rcv_nsge);
	if (!qp->rq)
		return false;
	tail = atomic_load_explicit(&qp->rq->tail.val, memory_order_relaxed);
	head = atomic_load_explicit(&qp->rq->head.val, memory_order_acquire);
	if (tail == head || tail >= qp->rq_size || head >= qp->rq_size)
		return false;
	w = rq_slot(qp, tail);
	qp->rcv_wr_id = w->wr_id;
	qp->rcv_nsge =
		w->num_sge > qp->rq_max_sge ? qp->rq_max_sge : w->num_sge;
	memcpy(qp->rcv_sg, w->sg_list, sizeof(*qp->rcv_sg) * qp->rcv_nsge);
	atomic_store_explicit(&qp->rq->tail.val,
			      tail + 1 >= qp->rq_size ? 0 : tail + 1,
			      memory_order_release);
	return true;
}

static bool rq_empty(struct softhfi_qp *qp)
{
	if (qp->srq)
		return ssrq_empty_locked(qp->srq);
	return !qp->rq ||
	       atomic_load_explicit(&qp->rq->tail.val, memory_order_relaxed) ==
		       atomic_load_explicit(&qp->rq->head.val,
					    memory_order_acquire);
}

static uint64_t sge_total(const struct rvt_wqe_sge *sg, unsigned int n)
{
	uint64_t t = 0;

	while (n--)
		t += sg[n].length;
	return t;
}

static void recv_send(struct sengine *e, struct slink *l, struct softhfi_qp *qp,
		      const struct spkt *h)
{
	bool rc = qp->type == IB_UVERBS_QPT_RC;
	uint64_t used;
	uint32_t st;

	/*
	 * The message being received, sent again from its start (the
	 * requester's answer timeout): into the same receive WQE.
	 */
	if ((h->flags & SPF_FIRST) && qp->in_msg && !qp->drop_msg) {
		qp->rcv_off = 0;
	} else if (h->flags & SPF_FIRST) {
		qp->in_msg = true;
		qp->drop_msg = false;
		qp->rcv_off = 0;
		if (!rq_take(qp)) {
			if (rc)
				nak(qp, h->ssn, SNAK_RNR);
			qp->drop_msg = true;
		} else if (h->total > sge_total(qp->rcv_sg, qp->rcv_nsge)) {
			complete_recv(qp, qp->rcv_wr_id, SWC_LOC_LEN_ERR,
				      SWC_RECV, 0, h);
			slink_drop(e, l, h->len);
			if (rc)
				responder_fatal(e, qp, h->ssn, SNAK_INV_REQ,
						SEV_QP_REQ_ERR);
			else
				qp->drop_msg = true;
			return;
		}
	}
	if (!qp->in_msg || qp->drop_msg) {
		slink_drop(e, l, h->len);
		goto last;
	}
	st = place_sges(e, qp, qp->rcv_sg, qp->rcv_nsge, qp->rcv_off,
			link_src(l), h->len, &used);
	qp->rcv_off += used;
	if (st) {
		slink_drop(e, l, h->len - used);
		if (l->dead)
			return;
		complete_recv(qp, qp->rcv_wr_id, st, SWC_RECV, 0, h);
		qp->drop_msg = true;
		if (rc) {
			responder_fatal(e, qp, h->ssn, SNAK_OP, SEV_QP_FATAL);
			return;
		}
	}
last:
	if (!(h->flags & SPF_LAST))
		return;
	if (qp->in_msg && !qp->drop_msg) {
		complete_recv(qp, qp->rcv_wr_id, 0, SWC_RECV, qp->rcv_off, h);
		qp->e_ssn++;
		if (rc)
			ack(qp, h->ssn, false);
	} else if (!rc) {
		qp->e_ssn = h->ssn + 1;
	}
	qp->in_msg = false;
	qp->drop_msg = false;
}

static void recv_write(struct sengine *e, struct slink *l,
		       struct softhfi_qp *qp, const struct spkt *h)
{
	bool rc = qp->type == IB_UVERBS_QPT_RC;
	uint64_t placed;
	int err;

	if (h->flags & SPF_FIRST) {
		qp->in_msg = true;
		qp->drop_msg = false;
		/* Before any key, as hfi1: even a zero-length WRITE. */
		if (!(qp->access & IB_UVERBS_ACCESS_REMOTE_WRITE)) {
			slink_drop(e, l, h->len);
			if (rc) {
				responder_fatal(e, qp, h->ssn, SNAK_INV_REQ,
						SEV_QP_REQ_ERR);
				return;
			}
			qp->drop_msg = true;
			goto last;
		}
		/* WRITE with immediate needs a receive WQE: RNR up front. */
		if ((h->flags & SPF_IMM) && rq_empty(qp)) {
			slink_drop(e, l, h->len);
			if (rc)
				nak(qp, h->ssn, SNAK_RNR);
			qp->drop_msg = true;
			goto last;
		}
	}
	if (!qp->in_msg || qp->drop_msg) {
		slink_drop(e, l, h->len);
		goto last;
	}
	/* A zero-length WRITE checks no key (UCX's flush relies on it). */
	err = place_mr(e, h->key, qp->pdn, h->va, h->len,
		       IB_UVERBS_ACCESS_REMOTE_WRITE, true, link_src(l),
		       &placed);
	if (err) {
		slink_drop(e, l, h->len - placed);
		if (l->dead)
			return;
		qp->drop_msg = true;
		if (rc) {
			responder_fatal(e, qp, h->ssn, SNAK_ACCESS,
					SEV_QP_ACCESS_ERR);
			return;
		}
	}
last:
	if (!(h->flags & SPF_LAST))
		return;
	if (qp->in_msg && !qp->drop_msg) {
		if (h->flags & SPF_IMM) {
			if (rq_take(qp))
				complete_recv(qp, qp->rcv_wr_id, 0,
					      SWC_RECV_RDMA_WITH_IMM, h->total,
					      h);
		}
		qp->e_ssn++;
		if (rc)
			ack(qp, h->ssn, false);
	} else if (!rc) {
		qp->e_ssn = h->ssn + 1;
	}
	qp->in_msg = false;
	qp->drop_msg = false;
}

/*
 * A READ request: its response queued. @again: a duplicate, answered
 * again from the start, as IB's responder does; with no room for it, the
 * requester asks again.
 */
static void recv_read_req(struct sengine *e, struct softhfi_qp *qp,
			  const struct spkt *h, bool again)
{
	const struct softhfi_verbs_ops *ops = &e->v->ops;
	struct sresp *r;
	void *mr = NULL;
	int err = 0;

	if (!(qp->access & IB_UVERBS_ACCESS_REMOTE_READ)) {
		responder_fatal(e, qp, h->ssn, SNAK_INV_REQ, SEV_QP_REQ_ERR);
		return;
	}
	if (h->total)
		err = ops->mr_get(ops->arg, h->key, qp->pdn, h->va, h->total,
				  IB_UVERBS_ACCESS_REMOTE_READ, true, &mr);
	if (err) {
		responder_fatal(e, qp, h->ssn, SNAK_ACCESS, SEV_QP_ACCESS_ERR);
		return;
	}
	r = resp_push(qp, SP_READ_RESP, h->ssn);
	if (!r) {
		if (mr)
			ops->mr_put(mr);
		if (!again)
			responder_fatal(e, qp, h->ssn, SNAK_INV_REQ,
					SEV_QP_REQ_ERR);
		return;
	}
	r->mr = mr;
	r->va = h->va;
	r->left = h->total;
	if (!again)
		qp->e_ssn++;
}

/*
 * A duplicate atomic: its saved result again, never the operation twice.
 * The responses of the last SQP_MAX_RESP answers are kept; one older is
 * not answered, and the requester runs out of retries.
 */
static void atomic_again(struct softhfi_qp *qp, uint32_t ssn)
{
	struct sresp *r;
	unsigned int i;

	for (i = 0; i < SQP_MAX_RESP; i++) {
		uint64_t orig = qp->resp[i].atomic_orig;

		if (qp->resp[i].op != SP_ATOMIC_RESP || qp->resp[i].ssn != ssn)
			continue;
		r = resp_push(qp, SP_ATOMIC_RESP, ssn);
		if (r)
			r->atomic_orig = orig;
		return;
	}
}

/*
 * A request the responder has taken already, sent again: the requester
 * went back (its answer timeout) past answers it had not seen yet, which
 * it dropped. As IB's responder, answer it again and do it not twice: an
 * ACK for a SEND or a WRITE, the READ again, an atomic's saved result.
 */
static void recv_duplicate(struct sengine *e, struct slink *l,
			   struct softhfi_qp *qp, const struct spkt *h)
{
	slink_drop(e, l, h->len);
	if (l->dead || !(h->flags & SPF_LAST))
		return;
	switch (h->op) {
	case SP_SEND:
	case SP_WRITE:
		ack(qp, h->ssn, true);
		break;
	case SP_READ_REQ:
		if (!resp_queued(qp, SP_READ_RESP, h->ssn))
			recv_read_req(e, qp, h, true);
		break;
	case SP_CMP_SWAP:
	case SP_FETCH_ADD:
		if (!resp_queued(qp, SP_ATOMIC_RESP, h->ssn))
			atomic_again(qp, h->ssn);
		break;
	}
}

static void recv_atomic(struct sengine *e, struct softhfi_qp *qp,
			const struct spkt *h)
{
	const struct softhfi_verbs_ops *ops = &e->v->ops;
	uint64_t old, new, placed;
	struct sresp *r;
	void *mr;
	int err;

	if (!(qp->access & IB_UVERBS_ACCESS_REMOTE_ATOMIC) || (h->va & 7)) {
		responder_fatal(e, qp, h->ssn, SNAK_INV_REQ, SEV_QP_REQ_ERR);
		return;
	}
	err = ops->mr_get(ops->arg, h->key, qp->pdn, h->va, 8,
			  IB_UVERBS_ACCESS_REMOTE_ATOMIC, true, &mr);
	if (!err) {
		/* The engine is the only atomic unit: one at a time. */
		err = copy_from_user(e->v->ctxt, &old, ops->mr_addr(mr, h->va),
				     8);
		ops->mr_put(mr);
	}
	if (!err) {
		if (h->op == SP_CMP_SWAP)
			new = old == h->cmp ? h->swap : old;
		else
			new = old + h->cmp;
		err = EIO;
		if (write(e->byte_pipe[1], &new, 8) == 8)
			err = place_mr(e, h->key, qp->pdn, h->va, 8,
				       IB_UVERBS_ACCESS_REMOTE_ATOMIC, true,
				       (struct ssrc){ .fd = e->byte_pipe[0] },
				       &placed);
		if (err && placed < 8)
			(void)!read(e->byte_pipe[0], &new, 8 - placed);
	}
	if (err) {
		responder_fatal(e, qp, h->ssn, SNAK_ACCESS, SEV_QP_ACCESS_ERR);
		return;
	}
	r = resp_push(qp, SP_ATOMIC_RESP, h->ssn);
	if (!r) {
		responder_fatal(e, qp, h->ssn, SNAK_INV_REQ, SEV_QP_REQ_ERR);
		return;
	}
	r->atomic_orig = old;
	qp->e_ssn++;
}

/* --- the requester's side of answers --- */

static void recv_answer(struct sengine *e, struct slink *l,
			struct softhfi_qp *qp, const struct spkt *h)
{
	uint32_t out = qp->sq_next - qp->sq_done;
	struct swqe *w;

	/*
	 * The message still being sent (sq_off) may have its answer already:
	 * a NAK, its first packet being enough for the responder to refuse
	 * it (a bad rkey, no receive); or, when it is sent again after a
	 * timeout, the ACK of the copy that had arrived whole.
	 */
	if (qp->sq_off)
		out++;
	/* An ACK may answer several messages in flight, the rest just one. */
	if (!out || qp->state == SQP_ERR || h->ssn - qp->sq_done >= out ||
	    (h->op != SP_ACK && h->ssn != qp->sq_done)) {
		slink_drop(e, l, h->len);
		return;
	}
	if (h->ssn == qp->sq_next) {
		/* It goes no further; the responder drops what came of it. */
		qp->sq_next++;
		qp->sq_off = 0;
	}
	w = sq_slot(qp, qp->sq_done);
	switch (h->op) {
	case SP_ACK:
		/*
		 * READs and atomics before h->ssn were answered before it,
		 * on the stream; one in the doorbell may have passed their
		 * answers, and is taken again once they are in.
		 */
		while (!is_read_or_atomic(w->wr.opcode)) {
			bool last = qp->sq_done == h->ssn;

			complete_send(qp, 0);
			if (last)
				return;
			w = sq_slot(qp, qp->sq_done);
		}
		/*
		 * Or the requester went back past a READ's answer, which it
		 * dropped: the READ sent again is answered again.
		 */
		return;
	case SP_READ_RESP: {
		uint64_t used = 0;
		uint32_t st = 0;

		if (w->wr.opcode != IB_UVERBS_WR_RDMA_READ)
			break;
		/*
		 * Only the next bytes: after going back, the rest of the
		 * first answer is dropped, and the second one taken whole.
		 */
		if (h->va != qp->rsp_off) {
			slink_drop(e, l, h->len);
			return;
		}
		/* An answer coming: the READ is not late. */
		qp->ack_deadline = 0;
		arm_ack_timer(qp);
		if (h->len)
			st = place_sges(e, qp, (struct rvt_wqe_sge *)w->sg,
					w->wr.num_sge, qp->rsp_off, link_src(l),
					h->len, &used);
		qp->rsp_off += used;
		if (st) {
			slink_drop(e, l, h->len - used);
			if (l->dead)
				return;
			qp->rd_out--;
			complete_send(qp, st);
			sqp_to_error_locked(e, qp);
			return;
		}
		if (h->flags & SPF_LAST) {
			qp->rsp_off = 0;
			qp->rd_out--;
			complete_send(qp, 0);
		}
		return;
	}
	case SP_ATOMIC_RESP: {
		uint32_t st;

		if (w->wr.opcode != IB_UVERBS_WR_ATOMIC_CMP_AND_SWP &&
		    w->wr.opcode != IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD)
			break;
		st = place_bytes(e, qp, (struct rvt_wqe_sge *)w->sg,
				 w->wr.num_sge, 0, &h->cmp, 8);
		qp->rd_out--;
		complete_send(qp, st);
		if (st)
			sqp_to_error_locked(e, qp);
		return;
	}
	case SP_NAK:
		if (h->key == SNAK_RNR) {
			qp->sq_next = qp->sq_done;
			qp->sq_off = 0;
			qp->rd_out = 0;
			qp->rsp_off = 0;
			/*
			 * An answer: the RNR timer, not the answer timeout,
			 * runs now (as rdmavt stops its retry timer), and
			 * the message sent again arms that afresh.
			 */
			qp->ack_deadline = 0;
			if (qp->rnr_retry != 7 &&
			    ++qp->rnr_tries > qp->rnr_retry) {
				complete_send(qp, SWC_RNR_RETRY_EXC_ERR);
				sqp_to_error_locked(e, qp);
				return;
			}
			qp->wait_until = sengine_now() +
					 rnr_usec[h->total & 31] * 1000ull;
			return;
		}
		complete_send(qp, h->key == SNAK_ACCESS	 ? SWC_REM_ACCESS_ERR :
				  h->key == SNAK_INV_REQ ? SWC_REM_INV_REQ_ERR :
							   SWC_REM_OP_ERR);
		sqp_to_error_locked(e, qp);
		return;
	}
	/* An answer that does not fit the WQE: the peer is confused. */
	slink_drop(e, l, h->len);
	complete_send(qp, SWC_GENERAL_ERR);
	sqp_to_error_locked(e, qp);
}

static void recv_ud(struct sengine *e, struct slink *l, const struct spkt *h)
{
	struct softhfi_qp *qp = sengine_find_qp(e, h->dqpn);
	uint8_t grh[UD_GRH_BYTES] = {};
	uint64_t used;
	uint32_t st;

	if (!qp || qp->type != IB_UVERBS_QPT_UD || qp->state < SQP_RTR ||
	    qp->state == SQP_ERR || h->key != qp->qkey || !rq_take(qp)) {
		slink_drop(e, l, h->len);
		return;
	}
	if (h->len + UD_GRH_BYTES > sge_total(qp->rcv_sg, qp->rcv_nsge)) {
		slink_drop(e, l, h->len);
		complete_recv(qp, qp->rcv_wr_id, SWC_LOC_LEN_ERR, SWC_RECV, 0,
			      h);
		return;
	}
	if (h->flags & SPF_GRH) {
		/* IB's GRH: version 6, payload length, next header, hops. */
		uint32_t vtf = htonl(6u << 28);
		uint16_t paylen = htons(h->len);

		memcpy(grh, &vtf, 4);
		memcpy(grh + 4, &paylen, 2);
		grh[6] = 0x1b;
		grh[7] = 1;
		memcpy(grh + 8, h->sgid, 16);
		memcpy(grh + 24, h->dgid, 16);
	}
	st = place_bytes(e, qp, qp->rcv_sg, qp->rcv_nsge, 0, grh, UD_GRH_BYTES);
	if (!st) {
		st = place_sges(e, qp, qp->rcv_sg, qp->rcv_nsge, UD_GRH_BYTES,
				link_src(l), h->len, &used);
		if (used < h->len)
			slink_drop(e, l, h->len - used);
	} else {
		slink_drop(e, l, h->len);
	}
	if (l->dead)
		return;
	complete_recv(qp, qp->rcv_wr_id, st, SWC_RECV,
		      st ? 0 : h->len + UD_GRH_BYTES, h);
}

void sqp_recv_packet_locked(struct sengine *e, struct slink *l,
			    const struct spkt *h)
{
	struct softhfi_qp *qp = l->qp;

	if (l->kind == SWIRE_LINK_UD) {
		if (h->op == SP_UD_SEND)
			recv_ud(e, l, h);
		else
			slink_drop(e, l, h->len);
		return;
	}
	if (!qp || qp->state < SQP_RTR || qp->state == SQP_ERR) {
		slink_drop(e, l, h->len);
		return;
	}
	switch (h->op) {
	case SP_ACK:
	case SP_NAK:
	case SP_READ_RESP:
	case SP_ATOMIC_RESP:
		/* The ACKs left in the doorbell before it come first. */
		if (!(h->flags & SPF_BELL))
			slink_take_bell_ack(e, l);
		recv_answer(e, l, qp, h);
		return;
	}
	/* Requests: only the one expected next, and its packets. */
	if (h->ssn != qp->e_ssn) {
		if (qp->type == IB_UVERBS_QPT_RC &&
		    (int32_t)(h->ssn - qp->e_ssn) < 0)
			recv_duplicate(e, l, qp, h);
		else
			slink_drop(e, l, h->len);
		return;
	}
	if (qp->type == IB_UVERBS_QPT_UC &&
	    (h->op == SP_READ_REQ || h->op == SP_CMP_SWAP ||
	     h->op == SP_FETCH_ADD)) {
		slink_drop(e, l, h->len);
		return;
	}
	switch (h->op) {
	case SP_SEND:
		recv_send(e, l, qp, h);
		break;
	case SP_WRITE:
		recv_write(e, l, qp, h);
		break;
	case SP_READ_REQ:
		recv_read_req(e, qp, h, false);
		break;
	case SP_CMP_SWAP:
	case SP_FETCH_ADD:
		recv_atomic(e, qp, h);
		break;
	default:
		slink_drop(e, l, h->len);
		responder_fatal(e, qp, h->ssn, SNAK_INV_REQ, SEV_QP_REQ_ERR);
	}
}

/* --- sending --- */

static void hdr_init(struct sengine *e, struct softhfi_qp *qp, struct spkt *h,
		     uint8_t op, uint32_t ssn)
{
	memset(h, 0, sizeof(*h));
	h->op = op;
	h->slid = e->v->lid;
	h->sqpn = qp->qpn;
	h->dqpn = qp->dest_qpn;
	h->ssn = ssn;
}

/* Send the responses owed, in order, while the link has room. */
static void send_responses(struct sengine *e, struct softhfi_qp *qp,
			   struct slink *l)
{
	const struct softhfi_verbs_ops *ops = &e->v->ops;

	while (qp->resp_tail != qp->resp_head) {
		struct sresp *r = &qp->resp[qp->resp_tail % SQP_MAX_RESP];
		struct spkt h;

		/* A polling requester reads it in the doorbell. */
		if (r->op == SP_ACK && !r->again && slink_bell_ack(l, r->ssn)) {
			/* One that waits on its channel is woken for it. */
			slink_give_bell_event(l);
			qp->resp_tail++;
			continue;
		}
		if (r->op != SP_READ_RESP) {
			if (!slink_room(e, l, 0))
				return;
			hdr_init(e, qp, &h, r->op, r->ssn);
			h.key = r->nak;
			h.total = qp->min_rnr_timer;
			h.cmp = r->atomic_orig;
			if (slink_write(l, &h, NULL, 0, 0, 0))
				return;
			qp->resp_tail++;
			continue;
		}
		do {
			uint64_t n =
				r->left < l->pkt_max ? r->left : l->pkt_max;
			struct iovec iov;

			if (!slink_room(e, l, n))
				return;
			hdr_init(e, qp, &h, SP_READ_RESP, r->ssn);
			h.len = n;
			h.va = r->sent; /* where in the READ it goes */
			h.flags = (r->sent ? 0 : SPF_FIRST) |
				  (n == r->left ? SPF_LAST : 0);
			iov.iov_base = n ? (void *)(uintptr_t)ops->mr_addr(
						   r->mr, r->va + r->sent) :
					   NULL;
			iov.iov_len = n;
			if (slink_write(l, &h, &iov, n ? 1 : 0, n, 0) == EPIPE)
				return;
			r->sent += n;
			r->left -= n;
		} while (r->left);
		if (r->mr)
			ops->mr_put(r->mr);
		r->mr = NULL;
		qp->resp_tail++;
	}
}

/*
 * @qp goes away: the answers it owes go out first, while its link has
 * room, as an adapter's ACK has left by the time its QP is destroyed.
 * Else a peer that sees the link close with its last message unanswered
 * fails it with RETRY_EXC_ERR, though it arrived (a pingpong's last one).
 */
void sqp_answer_locked(struct sengine *e, struct softhfi_qp *qp)
{
	if (!qp->link || qp->link->dead || qp->state < SQP_RTR ||
	    qp->state == SQP_ERR)
		return;
	/*
	 * What already arrived on the link had reached the adapter, which
	 * would have answered it by now: take it, then answer.
	 */
	slink_readable(e, qp->link);
	if (qp->link && !qp->link->dead && qp->state != SQP_ERR)
		send_responses(e, qp, qp->link);
}

/*
 * The iovecs for bytes [off, off + n) of WQE @w's message, its keys
 * checked: 0 or a completion status.
 */
static uint32_t wqe_iov(struct sengine *e, struct softhfi_qp *qp,
			struct swqe *w, uint64_t off, uint64_t n,
			struct iovec *iov, int *iovcnt)
{
	const struct softhfi_verbs_ops *ops = &e->v->ops;
	uint64_t start = 0;
	unsigned int i;

	*iovcnt = 0;
	if (!n)
		return 0;
	if (w->inl_at == SWQE_INL_FAULT)
		return SWC_LOC_PROT_ERR;
	if (w->inl_at != SWQE_INL_COPIED) {
		/* Inline, still where the poster has it: no key to check. */
		for (i = 0; i < w->wr.num_sge && n; i++) {
			uint64_t len = w->sg[i].length, take;

			if (off >= len) {
				off -= len;
				continue;
			}
			take = len - off < n ? len - off : n;
			iov[*iovcnt].iov_base =
				(void *)(uintptr_t)(w->sg[i].addr + off);
			iov[*iovcnt].iov_len = take;
			(*iovcnt)++;
			off = 0;
			n -= take;
		}
		return 0;
	}
	if (w->inl) {
		iov[0].iov_base = (char *)&w->sg[qp->max_send_sge] + off;
		iov[0].iov_len = n;
		*iovcnt = 1;
		return 0;
	}
	for (i = 0; i < w->wr.num_sge && n; i++) {
		uint64_t end = start + w->sg[i].length, inner, take;
		void *mr;
		int err;

		if (off >= end) {
			start = end;
			continue;
		}
		inner = off - start;
		take = end - off < n ? end - off : n;
		err = ops->mr_get(ops->arg, w->sg[i].lkey, qp->pdn,
				  w->sg[i].addr + inner, take, 0, false, &mr);
		if (err)
			return key_status(err, false);
		if (*iovcnt == 16) {
			ops->mr_put(mr);
			break;
		}
		iov[*iovcnt].iov_base = (void *)(uintptr_t)ops->mr_addr(
			mr, w->sg[i].addr + inner);
		iov[*iovcnt].iov_len = take;
		(*iovcnt)++;
		ops->mr_put(mr);
		off += take;
		n -= take;
		start = end;
	}
	return 0;
}

static uint8_t wr_to_op(uint32_t opcode)
{
	switch (opcode) {
	case IB_UVERBS_WR_SEND:
	case IB_UVERBS_WR_SEND_WITH_IMM:
		return SP_SEND;
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		return SP_WRITE;
	case IB_UVERBS_WR_RDMA_READ:
		return SP_READ_REQ;
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
		return SP_CMP_SWAP;
	default:
		return SP_FETCH_ADD;
	}
}

/* RC: something is in flight, so an answer is due. */
static void arm_ack_timer(struct softhfi_qp *qp)
{
	if (qp->type == IB_UVERBS_QPT_RC && !qp->ack_deadline && qp->timeout)
		qp->ack_deadline = sengine_now() + timeout_ns(qp->timeout);
}

/*
 * No answer in time: IB's requester sends again from the oldest message
 * not answered, retry_cnt times. The stream loses nothing, so what was
 * lost was dropped by a responder not yet ready (below RTR); one that was
 * only slow answers the copies again (recv_duplicate()), as the answers
 * to the first ones that come before the copies went out are dropped.
 */
static void ack_timeout(struct sengine *e, struct softhfi_qp *qp)
{
	qp->ack_deadline = 0;
	if (++qp->retry_tries > qp->retry_cnt) {
		qp->sq_next = qp->sq_done + 1;
		qp->rd_out = 0;
		complete_send(qp, SWC_RETRY_EXC_ERR);
		sqp_to_error_locked(e, qp);
		return;
	}
	qp->sq_next = qp->sq_done;
	qp->sq_off = 0;
	qp->rd_out = 0;
	qp->rsp_off = 0;
}

/* RC: messages in flight, and their answer timeout has passed. */
static bool answer_overdue(const struct softhfi_qp *qp)
{
	return qp->ack_deadline && qp->sq_done != qp->sq_next &&
	       sengine_now() >= qp->ack_deadline;
}

/* A send that fails locally: complete it, and the QP goes to ERR. */
static void local_error(struct sengine *e, struct softhfi_qp *qp,
			uint32_t status)
{
	/* WQEs before it that are in flight complete first (RC). */
	if (qp->sq_done != qp->sq_next) {
		/* Keep order: fail it once the ones in flight are done. */
		qp->sq_next = qp->sq_done;
	}
	complete_send(qp, status);
	sqp_to_error_locked(e, qp);
}

/*
 * One packet of the message at sq_next, or the whole of a READ or atomic
 * request: false when the link has no room (or the QP failed).
 */
static bool send_one_packet(struct sengine *e, struct softhfi_qp *qp,
			    struct slink *l, struct swqe *w)
{
	uint64_t n = w->length - qp->sq_off;
	struct iovec iov[16];
	struct spkt h;
	uint32_t st;
	int iovcnt, err;

	hdr_init(e, qp, &h, wr_to_op(w->wr.opcode), qp->sq_next);
	h.total = w->length;
	if (h.op == SP_READ_REQ || h.op == SP_CMP_SWAP ||
	    h.op == SP_FETCH_ADD) {
		if (!slink_room(e, l, 0))
			return false;
		h.flags = SPF_FIRST | SPF_LAST;
		h.va = w->wr.wr.rdma.remote_addr;
		h.key = w->wr.wr.rdma.rkey;
		if (h.op != SP_READ_REQ) {
			h.va = w->wr.wr.atomic.remote_addr;
			h.key = w->wr.wr.atomic.rkey;
			h.cmp = w->wr.wr.atomic.compare_add;
			h.swap = w->wr.wr.atomic.swap;
			h.total = 8;
		}
		if (slink_write(l, &h, NULL, 0, 0, 0))
			return false;
		qp->rd_out++;
		qp->sq_next++;
		arm_ack_timer(qp);
		return true;
	}
	if (n > l->pkt_max)
		n = l->pkt_max;
	if (!slink_room(e, l, n))
		return false;
	st = wqe_iov(e, qp, w, qp->sq_off, n, iov, &iovcnt);
	if (st) {
		if (qp->sq_off)
			l->dead = true; /* half a message went out */
		local_error(e, qp, st);
		return false;
	}
	h.len = n;
	h.flags = (qp->sq_off ? 0 : SPF_FIRST) |
		  (qp->sq_off + n == w->length ? SPF_LAST : 0);
	if (w->wr.send_flags & SSEND_SOLICITED)
		h.flags |= SPF_SOLICITED;
	if (w->wr.opcode == IB_UVERBS_WR_SEND_WITH_IMM ||
	    w->wr.opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM) {
		h.flags |= SPF_IMM;
		h.imm = w->wr.ex.imm_data;
	}
	if (h.op == SP_WRITE) {
		h.va = w->wr.wr.rdma.remote_addr + qp->sq_off;
		h.key = w->wr.wr.rdma.rkey;
	}
	err = slink_write(l, &h, iov, iovcnt, n,
			  w->inl_at == SWQE_INL_USER ? SLINK_WHOLE : 0);
	/* Nothing went out: the poster copies it, or refuses it. */
	if (err == EFAULT && w->inl_at == SWQE_INL_USER)
		return false;
	if (!err && w->inl_at == SWQE_INL_USER && qp->sq_off + n == w->length)
		w->inl_at = SWQE_INL_USER_SENT;
	if (err == EFAULT) {
		l->dead = true;
		local_error(e, qp, SWC_LOC_PROT_ERR);
		return false;
	}
	if (err)
		return false;
	/*
	 * The answer is due a timeout after a message's last packet, not its
	 * first: one that takes longer than that to send is not lost.
	 */
	if (qp->sq_off)
		qp->ack_deadline = 0;
	qp->sq_off += n;
	arm_ack_timer(qp);
	if (qp->sq_off == w->length) {
		qp->sq_off = 0;
		qp->sq_next++;
		/* UC: done once it is on the wire; RC waits for its ACK. */
		if (qp->type == IB_UVERBS_QPT_UC)
			complete_send(qp, 0);
	}
	return true;
}

static void send_ud(struct sengine *e, struct softhfi_qp *qp, uint32_t head)
{
	while (qp->sq_next != head) {
		struct swqe *w = sq_slot(qp, qp->sq_next);
		struct iovec iov[16];
		struct slink *l;
		struct spkt h;
		int iovcnt, err;
		uint32_t st;

		if (w->length > UD_MTU) {
			qp->sq_next++;
			complete_send(qp, SWC_LOC_LEN_ERR);
			continue;
		}
		l = sengine_ud_link(e, w->dlid, w->wr.wr.ud.remote_qpn, &err);
		if (!l) {
			/* Nobody there: a datagram is lost, not an error. */
			qp->sq_next++;
			complete_send(qp, 0);
			continue;
		}
		if (!slink_room(e, l, w->length))
			return;
		st = wqe_iov(e, qp, w, 0, w->length, iov, &iovcnt);
		if (st) {
			qp->sq_next++;
			complete_send(qp, st);
			continue;
		}
		memset(&h, 0, sizeof(h));
		h.op = SP_UD_SEND;
		h.flags = SPF_FIRST | SPF_LAST;
		h.slid = e->v->lid;
		h.sqpn = qp->qpn;
		h.dqpn = w->wr.wr.ud.remote_qpn;
		/* A Q_Key with its high bit set means the QP's own. */
		h.key = (w->wr.wr.ud.remote_qkey & 0x80000000u) ?
				qp->qkey :
				w->wr.wr.ud.remote_qkey;
		h.len = h.total = w->length;
		if (w->wr.opcode == IB_UVERBS_WR_SEND_WITH_IMM) {
			h.flags |= SPF_IMM;
			h.imm = w->wr.ex.imm_data;
		}
		if (w->wr.send_flags & SSEND_SOLICITED)
			h.flags |= SPF_SOLICITED;
		if (w->grh) {
			h.flags |= SPF_GRH;
			memcpy(h.sgid, e->v->gid, 16);
			memcpy(h.dgid, w->dgid, 16);
		}
		err = slink_write(l, &h, iov, iovcnt, w->length,
				  w->inl_at == SWQE_INL_USER ? SLINK_WHOLE : 0);
		if (err && (err != EFAULT || w->inl_at == SWQE_INL_USER))
			return;
		qp->sq_next++;
		complete_send(qp, err ? SWC_LOC_PROT_ERR : 0);
	}
}

/* No link to the peer yet: retry, or give up as IB's timeout would. */
static void no_link(struct sengine *e, struct softhfi_qp *qp, int err)
{
	uint64_t now = sengine_now();

	if (qp->conn_tries++ > qp->retry_cnt && qp->timeout) {
		qp->wait_until = 0;
		qp->sq_next = qp->sq_done;
		local_error(e, qp, SWC_RETRY_EXC_ERR);
		return;
	}
	(void)err;
	qp->wait_until = now + timeout_ns(qp->timeout);
}

void sqp_progress_locked(struct sengine *e, struct softhfi_qp *qp)
{
	uint32_t head =
		atomic_load_explicit(&qp->sq_head, memory_order_acquire);
	struct slink *l;
	int err;

	if (qp->state == SQP_ERR) {
		sqp_flush_locked(e, qp);
		return;
	}
	if (qp->state < SQP_RTR)
		return;
	if (qp->type == IB_UVERBS_QPT_UD) {
		if (qp->state == SQP_RTS)
			send_ud(e, qp, head);
		return;
	}
	if (answer_overdue(qp)) {
		/* Not an answer missing, but one nobody read yet? */
		sengine_take_bell_acks(e, qp);
		if (qp->state != SQP_ERR && answer_overdue(qp))
			ack_timeout(e, qp);
		if (qp->state == SQP_ERR)
			return;
	}
	if (qp->wait_until) {
		if (sengine_now() < qp->wait_until)
			return;
		qp->wait_until = 0;
	}
	l = sengine_qp_link(e, qp, &err);
	if (!l && qp->peer_lost && qp->state == SQP_RTS) {
		/*
		 * UC to a peer that is gone: as on a fabric, each message
		 * leaves and is lost, and completes. (One whose peer has not
		 * connected yet waits for it instead, below.)
		 */
		qp->sq_off = 0;
		while (qp->sq_next != head) {
			qp->sq_next++;
			complete_send(qp, 0);
		}
		return;
	}
	if (!l) {
		if (qp->state >= SQP_RTS && qp->sq_next != head)
			no_link(e, qp, err);
		return;
	}
	send_responses(e, qp, l);
	if (qp->state != SQP_RTS)
		goto drained;
	while (qp->sq_next != head && !l->dead) {
		struct swqe *w = sq_slot(qp, qp->sq_next);

		if (qp->type == IB_UVERBS_QPT_RC) {
			if ((w->wr.send_flags & SSEND_FENCE) && qp->rd_out)
				break;
			if (is_read_or_atomic(w->wr.opcode) &&
			    qp->rd_out >=
				    (qp->max_rd_atomic ? qp->max_rd_atomic : 1))
				break;
		}
		if (!send_one_packet(e, qp, l, w))
			break;
		if (qp->state == SQP_ERR)
			return;
	}
drained:
	if (qp->state == SQP_SQD && qp->sq_draining &&
	    qp->sq_done == qp->sq_next) {
		qp->sq_draining = 0;
		sverbs_event(e->v, SEV_SQ_DRAINED, qp->user_handle);
	}
}
