// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: completion queues. The backend serves the CQ commands and the
 * ring, rdmavt's struct rvt_cq_wc of struct ib_uverbs_wc (backend.h); the
 * provider polls the ring here without a call, for ibv_poll_cq() and the
 * extended poll API alike, the way rdma-core's hfi1verbs polls the ring
 * rdmavt maps.
 *
 * The ring's rule, the poller's half (the producer's is in the soft HFI's
 * cq.c, rdmavt's in the kernel): load-acquire head before reading the slot
 * at tail, so the slot's contents are there; store-release tail + 1 after
 * reading it, so the producer does not overwrite it while it is read. Only
 * the poller writes tail, under cq->lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cq.h"
#include "verbs.h"

/* The kernel's ib_wc_flags, what ib_uverbs_wc.wc_flags carries. */
enum {
	HFI1_UWC_GRH = 1 << 0,
	HFI1_UWC_WITH_IMM = 1 << 1,
	HFI1_UWC_WITH_INVALIDATE = 1 << 2,
};

/* What create_cq_ex serves: all but the timestamps, VLANs, tags and TM. */
#define HFI1_CQ_WC_FLAGS IBV_WC_STANDARD_FLAGS
#define HFI1_CQ_KNOWN_WC_FLAGS                                         \
	(IBV_WC_STANDARD_FLAGS | IBV_WC_EX_WITH_COMPLETION_TIMESTAMP | \
	 IBV_WC_EX_WITH_CVLAN | IBV_WC_EX_WITH_FLOW_TAG |              \
	 IBV_WC_EX_WITH_TM_INFO |                                      \
	 IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK)

static inline uint32_t ring_load(const uint32_t *idx, memory_order mo)
{
	return atomic_load_explicit((const _Atomic uint32_t *)idx, mo);
}

static void cq_lock(struct hfi1_cq *cq)
{
	if (!cq->single_threaded)
		pthread_spin_lock(&cq->lock);
}

static void cq_unlock(struct hfi1_cq *cq)
{
	if (!cq->single_threaded)
		pthread_spin_unlock(&cq->lock);
}

/* The entry at tail, or NULL if the ring is empty. Needs cq->lock. */
static const struct ib_uverbs_wc *ring_peek_locked(struct hfi1_cq *cq)
{
	struct rvt_cq_wc *ring = cq->be.ring;
	uint32_t tail = ring_load(&ring->tail.val, memory_order_relaxed);

	/* Pairs with the producer's release of head. */
	if (ring_load(&ring->head.val, memory_order_acquire) == tail)
		return NULL;
	return &ring->uqueue[tail];
}

/* Done with the entry at tail: the producer may reuse it. Needs cq->lock. */
static void ring_pop_locked(struct hfi1_cq *cq)
{
	struct rvt_cq_wc *ring = cq->be.ring;
	uint32_t tail = ring_load(&ring->tail.val, memory_order_relaxed);

	/* Pairs with the producer's acquire of tail. */
	atomic_store_explicit((_Atomic uint32_t *)&ring->tail.val,
			      tail >= cq->be.cqe ? 0 : tail + 1,
			      memory_order_release);
}

static unsigned int wc_flags(uint32_t uflags)
{
	return (uflags & HFI1_UWC_GRH ? IBV_WC_GRH : 0) |
	       (uflags & HFI1_UWC_WITH_IMM ? IBV_WC_WITH_IMM : 0) |
	       (uflags & HFI1_UWC_WITH_INVALIDATE ? IBV_WC_WITH_INV : 0);
}

/* The uverbs ABI's completion as libibverbs' (IB_UVERBS_WC_* == IBV_WC_*). */
static void to_ibv_wc(struct ibv_wc *wc, const struct ib_uverbs_wc *u)
{
	wc->wr_id = u->wr_id;
	wc->status = u->status;
	wc->opcode = u->opcode;
	wc->vendor_err = u->vendor_err;
	wc->byte_len = u->byte_len;
	wc->imm_data = u->ex.imm_data;
	wc->qp_num = u->qp_num;
	wc->src_qp = u->src_qp;
	wc->wc_flags = wc_flags(u->wc_flags);
	wc->pkey_index = u->pkey_index;
	wc->slid = u->slid;
	wc->sl = u->sl;
	wc->dlid_path_bits = u->dlid_path_bits;
}

static int poll_ring(struct hfi1_cq *cq, int num_entries, struct ibv_wc *wc)
{
	const struct ib_uverbs_wc *u;
	int n;

	cq_lock(cq);
	for (n = 0; n < num_entries; n++) {
		u = ring_peek_locked(cq);
		if (!u)
			break;
		to_ibv_wc(&wc[n], u);
		ring_pop_locked(cq);
	}
	cq_unlock(cq);
	return n;
}

/*
 * Nothing in the ring: let the backend do its adapter's work now, outside
 * the poll lock (it may take a while). True if it was asked.
 */
static bool cq_progress(struct hfi1_cq *cq)
{
	struct hfi1_context *ctx = to_hfi1_ctx(cq->vcq.cq.context);
	const struct hfi1_backend_cq_ops *ops = ctx->dev->backend->cq;

	if (!ops->progress)
		return false;
	ops->progress(ctx, &cq->be);
	return true;
}

int hfi1_poll_cq(struct ibv_cq *ibcq, int num_entries, struct ibv_wc *wc)
{
	struct hfi1_cq *cq = to_hfi1_cq(ibcq);
	int n;

	n = hfi1_check_owned(to_hfi1_ctx(ibcq->context), __func__);
	if (n)
		return -n;
	n = poll_ring(cq, num_entries, wc);
	if (!n && cq_progress(cq))
		n = poll_ring(cq, num_entries, wc);
	return n;
}

void hfi1_cq_clean(struct hfi1_cq *cq, uint32_t qpn)
{
	struct rvt_cq_wc *ring;
	uint32_t head, tail, slots, n, i, src, removed = 0;

	cq_lock(cq);
	ring = cq->be.ring;
	slots = cq->be.cqe + 1;
	tail = ring_load(&ring->tail.val, memory_order_relaxed);
	/* Pairs with the producer's release of head. */
	head = ring_load(&ring->head.val, memory_order_acquire);
	if (head >= slots || tail >= slots) {
		/* The ring is the poller's to report: polls say so. */
		cq_unlock(cq);
		return;
	}
	n = head >= tail ? head - tail : slots - tail + head;
	/* From the newest: what is kept moves toward head, in order. */
	for (i = n; i-- > 0;) {
		src = (tail + i) % slots;
		if (ring->uqueue[src].qp_num == qpn)
			removed++;
		else if (removed)
			ring->uqueue[(src + removed) % slots] =
				ring->uqueue[src];
	}
	/* Pairs with the producer's acquire of tail. */
	if (removed)
		atomic_store_explicit((_Atomic uint32_t *)&ring->tail.val,
				      (tail + removed) % slots,
				      memory_order_release);
	cq_unlock(cq);
}

/* --- the extended poll API: cq->cur is the entry at tail --- */

static void cur_set(struct hfi1_cq *cq, const struct ib_uverbs_wc *u)
{
	cq->cur = u;
	cq->vcq.cq_ex.status = u->status;
	cq->vcq.cq_ex.wr_id = u->wr_id;
}

static int hfi1_start_poll(struct ibv_cq_ex *ibcq,
			   struct ibv_poll_cq_attr *attr)
{
	struct hfi1_cq *cq = to_hfi1_cq_ex(ibcq);
	const struct ib_uverbs_wc *u;
	int ret;

	ret = hfi1_check_owned(to_hfi1_ctx(ibcq->context), __func__);
	if (ret)
		return ret;
	if (attr->comp_mask) {
		hfi1_err(to_hfi1_ctx(ibcq->context), "unknown comp_mask 0x%x\n",
			 attr->comp_mask);
		return EINVAL;
	}
	cq_lock(cq);
	u = ring_peek_locked(cq);
	if (!u) {
		/* The caller does not call end_poll after ENOENT here. */
		cq_unlock(cq);
		if (!cq_progress(cq))
			return ENOENT;
		cq_lock(cq);
		u = ring_peek_locked(cq);
		if (!u) {
			cq_unlock(cq);
			return ENOENT;
		}
	}
	cur_set(cq, u);
	return 0;
}

static int hfi1_next_poll(struct ibv_cq_ex *ibcq)
{
	struct hfi1_cq *cq = to_hfi1_cq_ex(ibcq);
	const struct ib_uverbs_wc *u;

	/* After ENOENT nothing is current: look again, pop nothing. */
	if (cq->cur)
		ring_pop_locked(cq);
	cq->cur = NULL;
	u = ring_peek_locked(cq);
	if (!u)
		return ENOENT;
	cur_set(cq, u);
	return 0;
}

static void hfi1_end_poll(struct ibv_cq_ex *ibcq)
{
	struct hfi1_cq *cq = to_hfi1_cq_ex(ibcq);

	if (cq->cur)
		ring_pop_locked(cq);
	cq->cur = NULL;
	cq_unlock(cq);
}

static enum ibv_wc_opcode hfi1_read_opcode(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->opcode;
}

static uint32_t hfi1_read_vendor_err(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->vendor_err;
}

static uint32_t hfi1_read_byte_len(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->byte_len;
}

static __be32 hfi1_read_imm_data(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->ex.imm_data;
}

static uint32_t hfi1_read_qp_num(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->qp_num;
}

static uint32_t hfi1_read_src_qp(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->src_qp;
}

static unsigned int hfi1_read_wc_flags(struct ibv_cq_ex *ibcq)
{
	return wc_flags(to_hfi1_cq_ex(ibcq)->cur->wc_flags);
}

static uint32_t hfi1_read_slid(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->slid;
}

static uint8_t hfi1_read_sl(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->sl;
}

static uint8_t hfi1_read_dlid_path_bits(struct ibv_cq_ex *ibcq)
{
	return to_hfi1_cq_ex(ibcq)->cur->dlid_path_bits;
}

static void set_ex_ops(struct ibv_cq_ex *ex)
{
	ex->start_poll = hfi1_start_poll;
	ex->next_poll = hfi1_next_poll;
	ex->end_poll = hfi1_end_poll;
	ex->read_opcode = hfi1_read_opcode;
	ex->read_vendor_err = hfi1_read_vendor_err;
	ex->read_byte_len = hfi1_read_byte_len;
	ex->read_imm_data = hfi1_read_imm_data;
	ex->read_qp_num = hfi1_read_qp_num;
	ex->read_src_qp = hfi1_read_src_qp;
	ex->read_wc_flags = hfi1_read_wc_flags;
	ex->read_slid = hfi1_read_slid;
	ex->read_sl = hfi1_read_sl;
	ex->read_dlid_path_bits = hfi1_read_dlid_path_bits;
}

/* --- the control verbs --- */

/*
 * The backend's CQ commands, or NULL with EOPNOTSUPP and a log line: the
 * kernel backend has none yet (rdmavt's CREATE_CQ and its mmap() of the
 * ring would be them, but there is no hardware here to try them on).
 */
static const struct hfi1_backend_cq_ops *cq_ops(struct hfi1_context *ctx,
						const char *verb)
{
	const struct hfi1_backend_cq_ops *ops = ctx->dev->backend->cq;

	if (!ops)
		hfi1_err(ctx, "%s: the %s backend serves no CQs yet\n", verb,
			 ctx->dev->backend->name);
	return ops;
}

static int check_cqe(struct hfi1_context *ctx, int64_t cqe)
{
	if (cqe < 1 || cqe > HFI1_MAX_CQE) {
		hfi1_err(ctx, "cqe %lld is not in 1..%u (max_cqe)\n",
			 (long long)cqe, HFI1_MAX_CQE);
		return EINVAL;
	}
	return 0;
}

static struct hfi1_cq *create_cq(struct hfi1_context *ctx, int64_t cqe,
				 struct ibv_comp_channel *channel,
				 uint32_t comp_vector, bool single_threaded)
{
	const struct hfi1_backend_cq_ops *ops;
	struct hfi1_cq *cq;
	int ret;

	ops = cq_ops(ctx, "create_cq");
	if (!ops) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	ret = check_cqe(ctx, cqe);
	if (ret)
		goto err;
	if (channel && channel->context != &ctx->ibv_ctx.context) {
		hfi1_err(ctx, "the completion channel is another context's\n");
		ret = EINVAL;
		goto err;
	}
	if (comp_vector >= (uint32_t)ctx->ibv_ctx.context.num_comp_vectors) {
		hfi1_err(ctx, "comp_vector %u is not below %d\n", comp_vector,
			 ctx->ibv_ctx.context.num_comp_vectors);
		ret = EINVAL;
		goto err;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		ret = ENOMEM;
		goto err;
	}
	pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE);
	cq->single_threaded = single_threaded;
	/* What libibverbs gives back as the event's ibv_cq. */
	ret = ops->create(ctx, cqe, (uintptr_t)&cq->vcq.cq, channel, &cq->be);
	if (ret) {
		pthread_spin_destroy(&cq->lock);
		free(cq);
		goto err;
	}
	cq->vcq.cq.cqe = cq->be.cqe;
	return cq;

err:
	errno = ret;
	return NULL;
}

struct ibv_cq *hfi1_create_cq(struct ibv_context *ibctx, int cqe,
			      struct ibv_comp_channel *channel, int comp_vector)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct hfi1_cq *cq;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		errno = ret;
		return NULL;
	}
	if (comp_vector < 0) {
		hfi1_err(ctx, "comp_vector %d is negative\n", comp_vector);
		errno = EINVAL;
		return NULL;
	}
	/* libibverbs fills in the rest (verbs_init_cq()). */
	cq = create_cq(ctx, cqe, channel, comp_vector, false);
	return cq ? &cq->vcq.cq : NULL;
}

struct ibv_cq_ex *hfi1_create_cq_ex(struct ibv_context *ibctx,
				    struct ibv_cq_init_attr_ex *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct hfi1_pd *parent = NULL;
	uint32_t flags = 0;
	struct hfi1_cq *cq;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		goto err;
	ret = EINVAL;
	if (attr->comp_mask &
	    ~(IBV_CQ_INIT_ATTR_MASK_FLAGS | IBV_CQ_INIT_ATTR_MASK_PD)) {
		hfi1_err(ctx, "unknown comp_mask 0x%x\n", attr->comp_mask);
		goto err;
	}
	if (attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS)
		flags = attr->flags;
	if (flags & ~(IBV_CREATE_CQ_ATTR_SINGLE_THREADED |
		      IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN)) {
		hfi1_err(ctx, "unknown flags 0x%x\n", flags);
		goto err;
	}
	ret = EOPNOTSUPP;
	/* libibverbs refuses flags it does not know before us. */
	if (attr->wc_flags & ~(uint64_t)HFI1_CQ_WC_FLAGS) {
		/* No clock on the adapter: no completion timestamps. */
		hfi1_err(ctx, "wc_flags 0x%llx are not supported\n",
			 (unsigned long long)(attr->wc_flags &
					      ~(uint64_t)HFI1_CQ_WC_FLAGS));
		goto err;
	}
	if (attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_PD) {
		/* As mlx5's: a parent domain of this context, not a PD. */
		if (!attr->parent_domain ||
		    attr->parent_domain->context != ibctx ||
		    !to_hfi1_pd(attr->parent_domain)->protection) {
			hfi1_err(
				ctx,
				"parent_domain is no parent domain of the context\n");
			ret = EINVAL;
			goto err;
		}
		parent = to_hfi1_pd(attr->parent_domain);
	}
	if (flags & IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN) {
		/* An overrun is the CQ's error, as in rdmavt. */
		hfi1_err(ctx, "flag IGNORE_OVERRUN is not supported\n");
		goto err;
	}

	cq = create_cq(ctx, attr->cqe, attr->channel, attr->comp_vector,
		       flags & IBV_CREATE_CQ_ATTR_SINGLE_THREADED);
	if (!cq)
		return NULL;
	/* Held while the CQ lives; its ring is the driver's, not theirs. */
	if (parent) {
		cq->parent = parent;
		atomic_fetch_add(&parent->usecnt, 1);
	}
	/* libibverbs fills in the rest, as for ibv_create_cq(). */
	set_ex_ops(&cq->vcq.cq_ex);
	return &cq->vcq.cq_ex;

err:
	errno = ret;
	return NULL;
}

int hfi1_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibcq->context);
	struct hfi1_cq *cq = to_hfi1_cq(ibcq);
	const struct hfi1_backend_cq_ops *ops;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	ops = cq_ops(ctx, __func__);
	if (!ops)
		return EOPNOTSUPP;
	return ops->arm(ctx, &cq->be, solicited_only);
}

int hfi1_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibcq->context);
	struct hfi1_cq *cq = to_hfi1_cq(ibcq);
	const struct hfi1_backend_cq_ops *ops;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	ops = cq_ops(ctx, __func__);
	if (!ops)
		return EOPNOTSUPP;
	ret = check_cqe(ctx, cqe);
	if (ret)
		return ret;
	/* Pollers stay out while the ring is swapped, even single-threaded. */
	pthread_spin_lock(&cq->lock);
	ret = ops->resize(ctx, &cq->be, cqe);
	if (!ret)
		ibcq->cqe = cq->be.cqe;
	pthread_spin_unlock(&cq->lock);
	return ret;
}

int hfi1_destroy_cq(struct ibv_cq *ibcq)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibcq->context);
	struct hfi1_cq *cq = to_hfi1_cq(ibcq);
	const struct hfi1_backend_cq_ops *ops;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	ops = cq_ops(ctx, __func__);
	if (!ops)
		return EOPNOTSUPP;
	ret = ops->destroy(ctx, &cq->be);
	if (ret)
		return ret;
	hfi1_async_wait_acked(
		&ibcq->mutex, &ibcq->cond, &ibcq->async_events_completed,
		hfi1_async_forget(ctx, (uintptr_t)ibcq, cq->async_posted));
	pthread_spin_destroy(&cq->lock);
	if (cq->parent)
		atomic_fetch_sub(&cq->parent->usecnt, 1);
	free(cq);
	return 0;
}
