// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: posting work requests, the fast path (qp.c has the control
 * verbs).
 *
 * Sends go to the backend one at a time, as the kernel's struct
 * ib_uverbs_send_wr and an array of struct ib_uverbs_sge; the backend
 * copies both, and inline data, before it returns (on the soft HFI, into
 * the send queue its engine reads; no system call).
 *
 * Receives go into rdmavt's struct rvt_rwq ring, which the backend maps
 * for the QP (rdma-core's hfi1verbs does the same over the kernel's): the
 * provider owns the head, under the QP's rq_lock, and the adapter the
 * tail. An entry is written whole before head is store-released past it;
 * the adapter load-acquires head before it reads an entry, and
 * store-releases tail after it is done with one, which the provider
 * load-acquires before it reuses the slot. One slot stays empty, so head
 * + 1 == tail is "full".
 *
 * The extended send API (ibv_wr_post(3)) collects its work requests from
 * wr_start to wr_complete under the QP's sq_lock, with inline data copied
 * by the setters, and checks them all before it posts the first.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "qp.h"
#include "verbs.h"

/* An application's sg_list is passed to the backend as it is. */
_Static_assert(sizeof(struct ibv_sge) == sizeof(struct ib_uverbs_sge) &&
		       offsetof(struct ibv_sge, addr) ==
			       offsetof(struct ib_uverbs_sge, addr) &&
		       offsetof(struct ibv_sge, length) ==
			       offsetof(struct ib_uverbs_sge, length) &&
		       offsetof(struct ibv_sge, lkey) ==
			       offsetof(struct ib_uverbs_sge, lkey),
	       "struct ibv_sge is struct ib_uverbs_sge");

/*
 * The opcodes served have the kernel's values, and each one's
 * IBV_QP_EX_WITH_* bit is 1 << opcode.
 */
#define HFI1_CHECK_OPCODE(op)                                           \
	_Static_assert((int)IBV_WR_##op == (int)IB_UVERBS_WR_##op &&    \
			       IBV_QP_EX_WITH_##op == 1 << IBV_WR_##op, \
		       "IBV_WR_" #op)
HFI1_CHECK_OPCODE(RDMA_WRITE);
HFI1_CHECK_OPCODE(RDMA_WRITE_WITH_IMM);
HFI1_CHECK_OPCODE(SEND);
HFI1_CHECK_OPCODE(SEND_WITH_IMM);
HFI1_CHECK_OPCODE(RDMA_READ);
HFI1_CHECK_OPCODE(ATOMIC_CMP_AND_SWP);
HFI1_CHECK_OPCODE(ATOMIC_FETCH_AND_ADD);

/* The send flags served; the backend takes them as they are. */
#define HFI1_SEND_FLAGS                                            \
	(IBV_SEND_FENCE | IBV_SEND_SIGNALED | IBV_SEND_SOLICITED | \
	 IBV_SEND_INLINE)

/* Opcodes that may carry inline data. */
#define HFI1_INLINE_OPS (HFI1_QP_EX_UC_OPS)

static struct hfi1_context *qp_ctx(struct hfi1_qp *qp)
{
	return to_hfi1_ctx(qp->vqp.qp.context);
}

/* A failed send, said once: a full queue is not the application's error. */
static void log_send_error(struct hfi1_qp *qp, uint64_t wr_id, int ret)
{
	struct hfi1_context *ctx = qp_ctx(qp);

	if (ret == ENOMEM)
		hfi1_dbg(ctx, "QP %u: the send queue is full (wr_id %llu)\n",
			 qp->be.qpn, (unsigned long long)wr_id);
	else
		hfi1_err(ctx, "QP %u: send wr_id %llu refused: %s\n",
			 qp->be.qpn, (unsigned long long)wr_id, strerror(ret));
}

/* --- ibv_post_send --- */

/* @wr as the kernel's send work request; 0 or EINVAL with a log line. */
static int send_wr_to_uverbs(struct hfi1_qp *qp, const struct ibv_send_wr *wr,
			     struct ib_uverbs_send_wr *uwr)
{
	struct hfi1_context *ctx = qp_ctx(qp);

	memset(uwr, 0, sizeof(*uwr));
	if (wr->num_sge < 0 ||
	    (uint32_t)wr->num_sge > qp->be.cap.max_send_sge) {
		hfi1_err(ctx,
			 "QP %u: wr_id %llu has %d SGEs (max_send_sge %u)\n",
			 qp->be.qpn, (unsigned long long)wr->wr_id, wr->num_sge,
			 qp->be.cap.max_send_sge);
		return EINVAL;
	}
	if ((unsigned int)wr->opcode >= 64 ||
	    !(hfi1_qp_type_send_ops(qp->qp_type) & (1ULL << wr->opcode))) {
		hfi1_err(
			ctx,
			"QP %u: wr_id %llu: opcode %d is not served on %s QPs\n",
			qp->be.qpn, (unsigned long long)wr->wr_id, wr->opcode,
			hfi1_qp_type_str(qp->qp_type));
		return EINVAL;
	}
	if (wr->send_flags & ~HFI1_SEND_FLAGS) {
		hfi1_err(
			ctx,
			"QP %u: wr_id %llu: send_flags 0x%x are not supported\n",
			qp->be.qpn, (unsigned long long)wr->wr_id,
			wr->send_flags & ~HFI1_SEND_FLAGS);
		return EINVAL;
	}

	uwr->wr_id = wr->wr_id;
	uwr->num_sge = wr->num_sge;
	uwr->opcode = wr->opcode;
	uwr->send_flags = wr->send_flags;
	switch (wr->opcode) {
	case IBV_WR_SEND_WITH_IMM:
		uwr->ex.imm_data = wr->imm_data;
		break;
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		uwr->ex.imm_data = wr->imm_data;
		/* fallthrough */
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_READ:
		uwr->wr.rdma.remote_addr = wr->wr.rdma.remote_addr;
		uwr->wr.rdma.rkey = wr->wr.rdma.rkey;
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		uwr->wr.atomic.remote_addr = wr->wr.atomic.remote_addr;
		uwr->wr.atomic.compare_add = wr->wr.atomic.compare_add;
		uwr->wr.atomic.swap = wr->wr.atomic.swap;
		uwr->wr.atomic.rkey = wr->wr.atomic.rkey;
		break;
	default:
		break;
	}

	if (qp->qp_type != IBV_QPT_UD)
		return 0;
	if (!wr->wr.ud.ah) {
		hfi1_err(ctx, "QP %u: wr_id %llu: a UD send without an AH\n",
			 qp->be.qpn, (unsigned long long)wr->wr_id);
		return EINVAL;
	}
	if (wr->wr.ud.ah->pd != qp->vqp.qp.pd) {
		hfi1_err(ctx, "QP %u: wr_id %llu: the AH is another PD's\n",
			 qp->be.qpn, (unsigned long long)wr->wr_id);
		return EINVAL;
	}
	uwr->wr.ud.ah = to_hfi1_ah(wr->wr.ud.ah)->handle;
	uwr->wr.ud.remote_qpn = wr->wr.ud.remote_qpn;
	uwr->wr.ud.remote_qkey = wr->wr.ud.remote_qkey;
	return 0;
}

int hfi1_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad_wr)
{
	struct hfi1_qp *qp = to_hfi1_qp(ibqp);
	struct hfi1_context *ctx = qp_ctx(qp);
	const struct hfi1_backend_qp_ops *ops = ctx->dev->backend->qp;
	struct ib_uverbs_send_wr uwr;
	bool refused = false;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		*bad_wr = wr;
		return ret;
	}

	pthread_spin_lock(&qp->sq_lock);
	for (; wr; wr = wr->next) {
		/* It says what it refuses. */
		ret = send_wr_to_uverbs(qp, wr, &uwr);
		if (ret)
			break;
		ret = ops->post_send(ctx, &qp->be, &uwr,
				     (const struct ib_uverbs_sge *)wr->sg_list);
		if (ret) {
			refused = true;
			break;
		}
	}
	pthread_spin_unlock(&qp->sq_lock);

	if (refused)
		log_send_error(qp, wr->wr_id, ret);
	if (ret)
		*bad_wr = wr;
	return ret;
}

/* --- ibv_post_recv: into the rvt_rwq ring --- */

static uint32_t ring_load(const uint32_t *idx, memory_order order)
{
	return atomic_load_explicit((_Atomic uint32_t *)idx, order);
}

int hfi1_rwq_post(struct rvt_rwq *rwq, uint32_t size, uint32_t max_sge,
		  struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr,
		  uint32_t *posted)
{
	size_t wqe_size =
		sizeof(struct rvt_rwqe) + max_sge * sizeof(struct rvt_wqe_sge);
	uint32_t head, next, tail;
	struct rvt_rwqe *wqe;
	int i, ret = 0;

	*posted = 0;
	head = ring_load(&rwq->head.val, memory_order_relaxed);
	/* Pairs with the adapter's release of tail. */
	tail = ring_load(&rwq->tail.val, memory_order_acquire);
	for (; wr; wr = wr->next) {
		if (wr->num_sge < 0 || (uint32_t)wr->num_sge > max_sge) {
			ret = EINVAL;
			break;
		}
		next = head + 1 >= size ? 0 : head + 1;
		if (next == tail) {
			tail = ring_load(&rwq->tail.val, memory_order_acquire);
			if (next == tail) {
				ret = ENOMEM;
				break;
			}
		}
		wqe = (struct rvt_rwqe *)((char *)rwq->wq + head * wqe_size);
		wqe->wr_id = wr->wr_id;
		wqe->num_sge = wr->num_sge;
		for (i = 0; i < wr->num_sge; i++) {
			wqe->sg_list[i].addr = wr->sg_list[i].addr;
			wqe->sg_list[i].length = wr->sg_list[i].length;
			wqe->sg_list[i].lkey = wr->sg_list[i].lkey;
		}
		head = next;
		(*posted)++;
	}
	/* Pairs with the adapter's acquire of head: the entries are there. */
	if (*posted)
		atomic_store_explicit((_Atomic uint32_t *)&rwq->head.val, head,
				      memory_order_release);
	if (ret)
		*bad_wr = wr;
	return ret;
}

int hfi1_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad_wr)
{
	struct hfi1_qp *qp = to_hfi1_qp(ibqp);
	struct hfi1_context *ctx = qp_ctx(qp);
	uint32_t posted;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		*bad_wr = wr;
		return ret;
	}
	if (!qp->be.rq) {
		hfi1_err(ctx, "QP %u has an SRQ: post receives to it\n",
			 qp->be.qpn);
		*bad_wr = wr;
		return EINVAL;
	}
	if (ibqp->state == IBV_QPS_RESET) {
		hfi1_err(ctx, "QP %u is in RESET\n", qp->be.qpn);
		*bad_wr = wr;
		return EINVAL;
	}

	pthread_spin_lock(&qp->rq_lock);
	ret = hfi1_rwq_post(qp->be.rq, qp->be.rq_size, qp->be.rq_max_sge, wr,
			    bad_wr, &posted);
	pthread_spin_unlock(&qp->rq_lock);

	if (posted)
		ctx->dev->backend->qp->post_recv_done(ctx, &qp->be);
	if (ret == EINVAL)
		hfi1_err(ctx,
			 "QP %u: wr_id %llu has %d SGEs (max_recv_sge %u)\n",
			 qp->be.qpn, (unsigned long long)(*bad_wr)->wr_id,
			 (*bad_wr)->num_sge, qp->be.cap.max_recv_sge);
	else if (ret)
		hfi1_dbg(ctx, "QP %u: the receive queue is full (wr_id %llu)\n",
			 qp->be.qpn, (unsigned long long)(*bad_wr)->wr_id);
	return ret;
}

/* --- the extended send API (ibv_wr_post(3)) --- */

/*
 * The first error of a batch is the one wr_complete returns; the rest of
 * the batch is ignored until then.
 */
#define wr_fail(qp, error, fmt, ...)                              \
	do {                                                      \
		hfi1_err(qp_ctx(qp), "QP %u: " fmt, (qp)->be.qpn, \
			 ##__VA_ARGS__);                          \
		(qp)->sq.err = (error);                           \
	} while (0)

/* Room for @need elements of @elem bytes in *@arr; false on ENOMEM. */
static bool grow(void **arr, size_t *size, size_t need, size_t elem)
{
	size_t n = *size ? *size : 16;
	void *p;

	if (need <= *size)
		return true;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (!p)
		return false;
	*arr = p;
	*size = n;
	return true;
}

/* The work request the setters apply to: the last one begun. */
static struct hfi1_wr_pending *wr_cur(struct hfi1_qp *qp, const char *setter)
{
	struct hfi1_wr_batch *b = &qp->sq;

	if (b->err)
		return NULL;
	if (!b->nwr) {
		wr_fail(qp, EINVAL, "%s before a work request\n", setter);
		return NULL;
	}
	return &b->wrs[b->nwr - 1];
}

/* Begin a work request of @opcode: the WR builders. */
static struct hfi1_wr_pending *wr_begin(struct hfi1_qp *qp, uint32_t opcode)
{
	struct ibv_qp_ex *qpx = &qp->vqp.qp_ex;
	struct hfi1_wr_batch *b = &qp->sq;
	struct hfi1_wr_pending *p;

	if (b->err)
		return NULL;
	if (!(b->send_ops & (1ULL << opcode))) {
		wr_fail(qp, EINVAL,
			"opcode %u is not in the QP's send_ops_flags 0x%llx\n",
			opcode, (unsigned long long)b->send_ops);
		return NULL;
	}
	if (qpx->wr_flags & ~HFI1_SEND_FLAGS) {
		wr_fail(qp, EINVAL, "wr_flags 0x%x are not supported\n",
			qpx->wr_flags & ~HFI1_SEND_FLAGS);
		return NULL;
	}
	if (b->nwr >= qp->be.cap.max_send_wr) {
		wr_fail(qp, ENOMEM,
			"more work requests than the send queue holds (%u)\n",
			qp->be.cap.max_send_wr);
		return NULL;
	}
	if (!grow((void **)&b->wrs, &b->wrs_size, b->nwr + 1, sizeof(*p))) {
		wr_fail(qp, ENOMEM, "no memory for a work request\n");
		return NULL;
	}

	p = &b->wrs[b->nwr++];
	memset(p, 0, sizeof(*p));
	p->wr.wr_id = qpx->wr_id;
	p->wr.opcode = opcode;
	/* Inline is what the inline data setters make. */
	p->wr.send_flags = qpx->wr_flags & ~IBV_SEND_INLINE;
	return p;
}

static void hfi1_wr_send(struct ibv_qp_ex *qpx)
{
	wr_begin(to_hfi1_qp_ex(qpx), IB_UVERBS_WR_SEND);
}

static void hfi1_wr_send_imm(struct ibv_qp_ex *qpx, __be32 imm_data)
{
	struct hfi1_wr_pending *p;

	p = wr_begin(to_hfi1_qp_ex(qpx), IB_UVERBS_WR_SEND_WITH_IMM);
	if (p)
		p->wr.ex.imm_data = imm_data;
}

static void wr_rdma(struct ibv_qp_ex *qpx, uint32_t opcode, uint32_t rkey,
		    uint64_t remote_addr, __be32 imm_data)
{
	struct hfi1_wr_pending *p;

	p = wr_begin(to_hfi1_qp_ex(qpx), opcode);
	if (!p)
		return;
	p->wr.wr.rdma.remote_addr = remote_addr;
	p->wr.wr.rdma.rkey = rkey;
	p->wr.ex.imm_data = imm_data;
}

static void hfi1_wr_rdma_write(struct ibv_qp_ex *qpx, uint32_t rkey,
			       uint64_t remote_addr)
{
	wr_rdma(qpx, IB_UVERBS_WR_RDMA_WRITE, rkey, remote_addr, 0);
}

static void hfi1_wr_rdma_write_imm(struct ibv_qp_ex *qpx, uint32_t rkey,
				   uint64_t remote_addr, __be32 imm_data)
{
	wr_rdma(qpx, IB_UVERBS_WR_RDMA_WRITE_WITH_IMM, rkey, remote_addr,
		imm_data);
}

static void hfi1_wr_rdma_read(struct ibv_qp_ex *qpx, uint32_t rkey,
			      uint64_t remote_addr)
{
	wr_rdma(qpx, IB_UVERBS_WR_RDMA_READ, rkey, remote_addr, 0);
}

static void wr_atomic(struct ibv_qp_ex *qpx, uint32_t opcode, uint32_t rkey,
		      uint64_t remote_addr, uint64_t compare_add, uint64_t swap)
{
	struct hfi1_wr_pending *p;

	p = wr_begin(to_hfi1_qp_ex(qpx), opcode);
	if (!p)
		return;
	p->wr.wr.atomic.remote_addr = remote_addr;
	p->wr.wr.atomic.compare_add = compare_add;
	p->wr.wr.atomic.swap = swap;
	p->wr.wr.atomic.rkey = rkey;
}

static void hfi1_wr_atomic_cmp_swp(struct ibv_qp_ex *qpx, uint32_t rkey,
				   uint64_t remote_addr, uint64_t compare,
				   uint64_t swap)
{
	wr_atomic(qpx, IB_UVERBS_WR_ATOMIC_CMP_AND_SWP, rkey, remote_addr,
		  compare, swap);
}

static void hfi1_wr_atomic_fetch_add(struct ibv_qp_ex *qpx, uint32_t rkey,
				     uint64_t remote_addr, uint64_t add)
{
	wr_atomic(qpx, IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD, rkey, remote_addr,
		  add, 0);
}

static void hfi1_wr_set_sge_list(struct ibv_qp_ex *qpx, size_t num_sge,
				 const struct ibv_sge *sg_list)
{
	struct hfi1_qp *qp = to_hfi1_qp_ex(qpx);
	struct hfi1_wr_batch *b = &qp->sq;
	struct hfi1_wr_pending *p;

	p = wr_cur(qp, "wr_set_sge_list");
	if (!p)
		return;
	if (p->has_data) {
		wr_fail(qp, EINVAL, "wr_id %llu has its data already\n",
			(unsigned long long)p->wr.wr_id);
		return;
	}
	if (num_sge > qp->be.cap.max_send_sge) {
		wr_fail(qp, EINVAL, "wr_id %llu: %zu SGEs (max_send_sge %u)\n",
			(unsigned long long)p->wr.wr_id, num_sge,
			qp->be.cap.max_send_sge);
		return;
	}
	if (!grow((void **)&b->sges, &b->sges_size, b->nsge + num_sge,
		  sizeof(*b->sges))) {
		wr_fail(qp, ENOMEM, "no memory for %zu SGEs\n", num_sge);
		return;
	}
	memcpy(&b->sges[b->nsge], sg_list, num_sge * sizeof(*sg_list));
	p->sge = b->nsge;
	p->wr.num_sge = num_sge;
	p->has_data = true;
	b->nsge += num_sge;
}

static void hfi1_wr_set_sge(struct ibv_qp_ex *qpx, uint32_t lkey, uint64_t addr,
			    uint32_t length)
{
	const struct ibv_sge sge = {
		.addr = addr,
		.length = length,
		.lkey = lkey,
	};

	hfi1_wr_set_sge_list(qpx, 1, &sge);
}

/*
 * Inline data is copied now, into the batch's buffer, and posted as one
 * SGE with IBV_SEND_INLINE, which the backend copies from at post time.
 * The SGE's addr is an offset into the buffer (which may move as it
 * grows) until wr_complete.
 */
static void hfi1_wr_set_inline_data_list(struct ibv_qp_ex *qpx, size_t num_buf,
					 const struct ibv_data_buf *buf_list)
{
	struct hfi1_qp *qp = to_hfi1_qp_ex(qpx);
	struct hfi1_wr_batch *b = &qp->sq;
	struct hfi1_wr_pending *p;
	size_t i, len = 0;

	p = wr_cur(qp, "wr_set_inline_data_list");
	if (!p)
		return;
	if (p->has_data) {
		wr_fail(qp, EINVAL, "wr_id %llu has its data already\n",
			(unsigned long long)p->wr.wr_id);
		return;
	}
	if (!(HFI1_INLINE_OPS & (1ULL << p->wr.opcode))) {
		wr_fail(qp, EINVAL,
			"wr_id %llu: inline data is for SEND and RDMA WRITE\n",
			(unsigned long long)p->wr.wr_id);
		return;
	}
	for (i = 0; i < num_buf; i++) {
		len += buf_list[i].length;
		if (len > qp->be.cap.max_inline_data)
			break;
	}
	if (len > qp->be.cap.max_inline_data) {
		wr_fail(qp, EINVAL,
			"wr_id %llu: over max_inline_data %u of inline data\n",
			(unsigned long long)p->wr.wr_id,
			qp->be.cap.max_inline_data);
		return;
	}
	if (!grow((void **)&b->inl, &b->inl_size, b->inl_len + len, 1) ||
	    !grow((void **)&b->sges, &b->sges_size, b->nsge + 1,
		  sizeof(*b->sges))) {
		wr_fail(qp, ENOMEM, "no memory for inline data\n");
		return;
	}

	b->sges[b->nsge] = (struct ib_uverbs_sge){
		.addr = b->inl_len,
		.length = len,
	};
	for (i = 0; i < num_buf; i++) {
		memcpy(b->inl + b->inl_len, buf_list[i].addr,
		       buf_list[i].length);
		b->inl_len += buf_list[i].length;
	}
	p->sge = b->nsge++;
	p->wr.num_sge = 1;
	p->wr.send_flags |= IBV_SEND_INLINE;
	p->has_data = true;
}

static void hfi1_wr_set_inline_data(struct ibv_qp_ex *qpx, void *addr,
				    size_t length)
{
	const struct ibv_data_buf buf = {
		.addr = addr,
		.length = length,
	};

	hfi1_wr_set_inline_data_list(qpx, 1, &buf);
}

static void hfi1_wr_set_ud_addr(struct ibv_qp_ex *qpx, struct ibv_ah *ah,
				uint32_t remote_qpn, uint32_t remote_qkey)
{
	struct hfi1_qp *qp = to_hfi1_qp_ex(qpx);
	struct hfi1_wr_pending *p;

	p = wr_cur(qp, "wr_set_ud_addr");
	if (!p)
		return;
	if (qp->qp_type != IBV_QPT_UD) {
		wr_fail(qp, EINVAL, "wr_set_ud_addr on a QP that is not UD\n");
		return;
	}
	if (!ah || ah->pd != qp->vqp.qp.pd) {
		wr_fail(qp, EINVAL, "wr_id %llu: %s\n",
			(unsigned long long)p->wr.wr_id,
			ah ? "the AH is another PD's" : "no AH");
		return;
	}
	p->wr.wr.ud.ah = to_hfi1_ah(ah)->handle;
	p->wr.wr.ud.remote_qpn = remote_qpn;
	p->wr.wr.ud.remote_qkey = remote_qkey;
	p->has_ud = true;
}

static void wr_reset(struct hfi1_wr_batch *b)
{
	b->nwr = 0;
	b->nsge = 0;
	b->inl_len = 0;
	b->err = 0;
}

static void hfi1_wr_start(struct ibv_qp_ex *qpx)
{
	struct hfi1_qp *qp = to_hfi1_qp_ex(qpx);

	pthread_spin_lock(&qp->sq_lock);
	wr_reset(&qp->sq);
}

/* What only the whole batch can tell; 0 or an errno with a log line. */
static int wr_check_batch(struct hfi1_qp *qp)
{
	struct hfi1_wr_batch *b = &qp->sq;
	size_t i;

	if (b->err || qp->qp_type != IBV_QPT_UD)
		return b->err;
	for (i = 0; i < b->nwr; i++) {
		if (!b->wrs[i].has_ud) {
			wr_fail(qp, EINVAL,
				"wr_id %llu: a UD send without an AH\n",
				(unsigned long long)b->wrs[i].wr.wr_id);
			return EINVAL;
		}
	}
	return 0;
}

static int hfi1_wr_complete(struct ibv_qp_ex *qpx)
{
	struct hfi1_qp *qp = to_hfi1_qp_ex(qpx);
	struct hfi1_context *ctx = qp_ctx(qp);
	const struct hfi1_backend_qp_ops *ops = ctx->dev->backend->qp;
	struct hfi1_wr_batch *b = &qp->sq;
	struct hfi1_wr_pending *p = NULL;
	size_t i;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		goto out;
	/* The setters' errors and these were said already. */
	ret = wr_check_batch(qp);
	if (ret)
		goto out;
	for (i = 0; i < b->nwr; i++) {
		p = &b->wrs[i];
		if (p->wr.send_flags & IBV_SEND_INLINE)
			b->sges[p->sge].addr += (uintptr_t)b->inl;
		ret = ops->post_send(ctx, &qp->be, &p->wr, &b->sges[p->sge]);
		if (ret)
			break;
	}
out:
	wr_reset(b);
	pthread_spin_unlock(&qp->sq_lock);

	if (ret && p)
		log_send_error(qp, p->wr.wr_id, ret);
	return ret;
}

static void hfi1_wr_abort(struct ibv_qp_ex *qpx)
{
	struct hfi1_qp *qp = to_hfi1_qp_ex(qpx);

	wr_reset(&qp->sq);
	pthread_spin_unlock(&qp->sq_lock);
}

void hfi1_qp_init_wr_ops(struct hfi1_qp *qp, uint64_t send_ops_flags)
{
	struct ibv_qp_ex *qpx = &qp->vqp.qp_ex;

	qp->sq.send_ops = send_ops_flags;
	/* Every builder is there; those not asked for fail the batch. */
	qpx->wr_send = hfi1_wr_send;
	qpx->wr_send_imm = hfi1_wr_send_imm;
	qpx->wr_rdma_write = hfi1_wr_rdma_write;
	qpx->wr_rdma_write_imm = hfi1_wr_rdma_write_imm;
	qpx->wr_rdma_read = hfi1_wr_rdma_read;
	qpx->wr_atomic_cmp_swp = hfi1_wr_atomic_cmp_swp;
	qpx->wr_atomic_fetch_add = hfi1_wr_atomic_fetch_add;
	qpx->wr_set_sge = hfi1_wr_set_sge;
	qpx->wr_set_sge_list = hfi1_wr_set_sge_list;
	qpx->wr_set_inline_data = hfi1_wr_set_inline_data;
	qpx->wr_set_inline_data_list = hfi1_wr_set_inline_data_list;
	qpx->wr_set_ud_addr = hfi1_wr_set_ud_addr;
	qpx->wr_start = hfi1_wr_start;
	qpx->wr_complete = hfi1_wr_complete;
	qpx->wr_abort = hfi1_wr_abort;
}

void hfi1_qp_free_wr_batch(struct hfi1_qp *qp)
{
	free(qp->sq.wrs);
	free(qp->sq.sges);
	free(qp->sq.inl);
}
