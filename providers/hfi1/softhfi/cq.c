// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: completion queues, as rdmavt's cq.c serves them to hfi1's
 * users. A CQ is a struct rvt_cq_wc ring of cqe + 1 struct ib_uverbs_wc
 * slots: producers (the engine, a QP's flush, any thread) add at head
 * under the CQ's lock, and the provider's poller takes from tail without
 * a call. One slot stays empty, so head == tail is "empty" and
 * head + 1 == tail is "full".
 *
 * The ring's ordering rule (as rxe_queue.h's, one producer side and one
 * consumer side):
 * - the producer writes the slot at head, then store-releases head + 1;
 *   the consumer load-acquires head before it reads a slot, so it never
 *   sees a slot before its contents;
 * - the consumer reads the slot at tail, then store-releases tail + 1;
 *   the producer load-acquires tail before it writes a slot, so it never
 *   overwrites a slot still being read.
 * Each index has one writer side: head the producers (under cq->lock),
 * tail the poller (under the provider's poll lock), which may read its
 * own index relaxed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "engine.h"
#include "sctxt.h"

struct softhfi_cq {
	struct sverbs *v;
	LIST_ENTRY(softhfi_cq) link; /* v->cqs, under v->cq_lock */
	uint64_t user_handle;
	int comp_fd; /* the channel's write end, or -1 */
	atomic_uint users; /* QPs and SRQs that complete here */

	/* Serialises producers, arming and resizing; protects below. */
	pthread_mutex_t lock;
	struct rvt_cq_wc *ring;
	uint32_t cqe; /* usable entries: the ring has cqe + 1 slots */
	uint8_t notify; /* 0, IB_CQ_NEXT_COMP or IB_CQ_SOLICITED */
	bool error; /* overrun: completions are lost from now on */
};

/* The kernel's ib_cq_notify_flags values, which rdmavt keeps in notify. */
enum { SCQ_SOLICITED = 1, SCQ_NEXT_COMP = 2 };

static struct rvt_cq_wc *ring_alloc(uint32_t cqe)
{
	return calloc(1,
		      sizeof(struct rvt_cq_wc) +
			      ((size_t)cqe + 1) * sizeof(struct ib_uverbs_wc));
}

static inline uint32_t ring_load(const uint32_t *idx, memory_order mo)
{
	return atomic_load_explicit((const _Atomic uint32_t *)idx, mo);
}

static inline void ring_store(uint32_t *idx, uint32_t val)
{
	atomic_store_explicit((_Atomic uint32_t *)idx, val,
			      memory_order_release);
}

struct softhfi_cq *softhfi_cq_create(struct hfi1_drv *drv, uint32_t cqe,
				     uint64_t user_handle, int comp_fd)
{
	struct sverbs *v = sverbs_of(drv);
	struct softhfi_cq *cq;
	int ret;

	if (!v) {
		/* No server, so no log either: the caller says it. */
		ret = ENXIO;
		goto err_fd;
	}
	if (!sctxt_owned(v->ctxt)) {
		ret = EIO;
		goto err_fd;
	}
	if (!cqe || cqe > SOFTHFI_MAX_CQE) {
		sverbs_log(v, SV_LOG_ERR, "cqe %u is not in 1..%u\n", cqe,
			   SOFTHFI_MAX_CQE);
		ret = EINVAL;
		goto err_fd;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		ret = ENOMEM;
		goto err_fd;
	}
	cq->ring = ring_alloc(cqe);
	if (!cq->ring) {
		free(cq);
		ret = ENOMEM;
		goto err_fd;
	}
	cq->v = v;
	cq->cqe = cqe;
	cq->user_handle = user_handle;
	cq->comp_fd = comp_fd;
	pthread_mutex_init(&cq->lock, NULL);

	pthread_mutex_lock(&v->cq_lock);
	if (v->ncq >= SOFTHFI_MAX_CQ) {
		pthread_mutex_unlock(&v->cq_lock);
		sverbs_log(v, SV_LOG_ERR, "out of CQs (max_cq %u)\n",
			   SOFTHFI_MAX_CQ);
		pthread_mutex_destroy(&cq->lock);
		free(cq->ring);
		free(cq);
		ret = ENOMEM;
		goto err_fd;
	}
	v->ncq++;
	LIST_INSERT_HEAD(&v->cqs, cq, link);
	pthread_mutex_unlock(&v->cq_lock);
	return cq;

err_fd:
	if (comp_fd >= 0)
		close(comp_fd);
	errno = ret;
	return NULL;
}

struct rvt_cq_wc *softhfi_cq_ring(struct softhfi_cq *cq, uint32_t *cqe)
{
	struct rvt_cq_wc *ring;

	pthread_mutex_lock(&cq->lock);
	ring = cq->ring;
	*cqe = cq->cqe;
	pthread_mutex_unlock(&cq->lock);
	return ring;
}

int softhfi_cq_resize(struct softhfi_cq *cq, uint32_t cqe)
{
	struct sengine *e = cq->v->engine;
	struct rvt_cq_wc *ring, *old;
	uint32_t head, tail, n, i, slots;

	if (!sctxt_owned(cq->v->ctxt))
		return EIO;
	if (!cqe || cqe > SOFTHFI_MAX_CQE) {
		sverbs_log(cq->v, SV_LOG_ERR, "cqe %u is not in 1..%u\n", cqe,
			   SOFTHFI_MAX_CQE);
		return EINVAL;
	}
	ring = ring_alloc(cqe);
	if (!ring)
		return ENOMEM;

	/*
	 * The completions counted are those of the work posted before the
	 * resize, as an adapter would have made them by now: the engine
	 * moves what is posted first (UD and UC sends complete on the wire),
	 * and stays out until the ring is swapped.
	 */
	sengine_lock_posted(e);
	pthread_mutex_lock(&cq->lock);
	old = cq->ring;
	slots = cq->cqe + 1;
	/* The caller keeps the poller out: tail holds still. */
	head = ring_load(&old->head.val, memory_order_relaxed);
	tail = ring_load(&old->tail.val, memory_order_relaxed);
	if (head >= slots || tail >= slots) {
		/* The poller's side is the application's memory. */
		pthread_mutex_unlock(&cq->lock);
		pthread_mutex_unlock(&e->lock);
		sverbs_log(cq->v, SV_LOG_ERR,
			   "CQ ring indices %u/%u out of range\n", head, tail);
		free(ring);
		return EINVAL;
	}
	n = head >= tail ? head - tail : slots - tail + head;
	if (n > cqe) {
		pthread_mutex_unlock(&cq->lock);
		pthread_mutex_unlock(&e->lock);
		sverbs_log(cq->v, SV_LOG_ERR,
			   "cannot resize a CQ holding %u completions to %u\n",
			   n, cqe);
		free(ring);
		return EINVAL;
	}
	for (i = 0; i < n; i++)
		ring->uqueue[i] = old->uqueue[(tail + i) % slots];
	ring->head.val = n;
	ring->tail.val = 0;
	cq->ring = ring;
	cq->cqe = cqe;
	pthread_mutex_unlock(&cq->lock);
	pthread_mutex_unlock(&e->lock);
	free(old);
	return 0;
}

/*
 * The CQ whose verb (ibv_poll_cq(), ibv_req_notify_cq()) this thread is
 * in: the application sees what lands in it before it sleeps again.
 */
static __thread struct softhfi_cq *cq_in_verb;

int softhfi_cq_arm(struct softhfi_cq *cq, bool solicited_only)
{
	bool delegated;

	if (!sctxt_owned(cq->v->ctxt))
		return EIO;
	pthread_mutex_lock(&cq->lock);
	/* As rdmavt: an arm for any completion is not narrowed by a later
	 * solicited-only one. */
	if (cq->notify != SCQ_NEXT_COMP)
		cq->notify = solicited_only ? SCQ_SOLICITED : SCQ_NEXT_COMP;
	pthread_mutex_unlock(&cq->lock);
	if (!cq->v->engine)
		return 0;
	/*
	 * The caller is about to sleep: the peer wakes it (one link), or
	 * the engine takes the links back.
	 */
	cq_in_verb = cq;
	delegated = !solicited_only && cq->comp_fd >= 0 &&
		    sengine_delegate(cq->v->engine, cq, cq->comp_fd,
				     cq->user_handle);
	cq_in_verb = NULL;
	if (!delegated)
		sengine_poll_stop(cq->v->engine);
	return 0;
}

/* Needs v->cq_lock. */
static void cq_free_locked(struct softhfi_cq *cq)
{
	LIST_REMOVE(cq, link);
	cq->v->ncq--;
	if (cq->comp_fd >= 0)
		close(cq->comp_fd);
	pthread_mutex_destroy(&cq->lock);
	free(cq->ring);
	free(cq);
}

int softhfi_cq_destroy(struct softhfi_cq *cq)
{
	struct sverbs *v = cq->v;
	unsigned int users = atomic_load(&cq->users);

	if (!sctxt_owned(v->ctxt))
		return EIO;
	if (users) {
		sverbs_log(v, SV_LOG_ERR, "CQ still used by %u QPs or SRQs\n",
			   users);
		return EBUSY;
	}
	pthread_mutex_lock(&v->cq_lock);
	cq_free_locked(cq);
	pthread_mutex_unlock(&v->cq_lock);
	return 0;
}

void scq_destroy_all(struct sverbs *v)
{
	pthread_mutex_lock(&v->cq_lock);
	while (!LIST_EMPTY(&v->cqs))
		cq_free_locked(LIST_FIRST(&v->cqs));
	pthread_mutex_unlock(&v->cq_lock);
}

/*
 * One event per arm, as the kernel's: never blocks (the reader may be
 * slow or gone), never raises SIGPIPE (the channel is a socket). Needs
 * cq->lock.
 */
static void comp_event_locked(struct softhfi_cq *cq)
{
	struct ib_uverbs_comp_event_desc desc = {
		.cq_handle = cq->user_handle,
	};
	ssize_t n;

	if (cq->comp_fd < 0)
		return;
	n = send(cq->comp_fd, &desc, sizeof(desc), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != sizeof(desc))
		sverbs_log(cq->v, SV_LOG_WARN,
			   "completion event of CQ 0x%llx lost: %s\n",
			   (unsigned long long)cq->user_handle,
			   n < 0 ? strerror(errno) : "short write");
}

bool scq_push_given(struct softhfi_cq *cq, const struct ib_uverbs_wc *wc,
		    bool solicited, bool event_given)
{
	struct rvt_cq_wc *ring;
	uint32_t head, tail, next, cqe;
	bool overrun = false, taken_by_woken;

	pthread_mutex_lock(&cq->lock);
	if (cq->error) {
		pthread_mutex_unlock(&cq->lock);
		return false;
	}
	ring = cq->ring;
	cqe = cq->cqe;
	head = ring_load(&ring->head.val, memory_order_relaxed);
	/* Pairs with the poller's release of tail: the slot is free. */
	tail = ring_load(&ring->tail.val, memory_order_acquire);
	next = head >= cqe ? 0 : head + 1;
	if (head > cqe || next == tail) {
		cq->error = true;
		overrun = true;
	} else {
		ring->uqueue[head] = *wc;
		/* Pairs with the poller's acquire of head. */
		ring_store(&ring->head.val, next);
		/*
		 * Its event was given, and the application, woken by it, is
		 * taking it: the arm it made since is for the next one.
		 * Where the engine thread takes it, the application may have
		 * looked already: an event, though another was given.
		 */
		taken_by_woken = event_given && cq == cq_in_verb;
		if (!taken_by_woken &&
		    (cq->notify == SCQ_NEXT_COMP ||
		     (cq->notify == SCQ_SOLICITED && solicited))) {
			cq->notify = 0;
			/* Unless the peer took the arm, and gave it. */
			if (!cq->v->engine ||
			    sengine_take_cq_arm(cq->v->engine, cq))
				comp_event_locked(cq);
		}
	}
	pthread_mutex_unlock(&cq->lock);

	if (overrun) {
		sverbs_log(cq->v, SV_LOG_ERR,
			   "CQ 0x%llx overrun (cqe %u): it is in error\n",
			   (unsigned long long)cq->user_handle, cqe);
		sverbs_event(cq->v, SOFTHFI_EVENT_CQ_ERR, cq->user_handle);
	}
	return !overrun;
}

bool scq_push(struct softhfi_cq *cq, const struct ib_uverbs_wc *wc,
	      bool solicited)
{
	return scq_push_given(cq, wc, solicited, false);
}

void scq_get(struct softhfi_cq *cq)
{
	atomic_fetch_add(&cq->users, 1);
}

void scq_put(struct softhfi_cq *cq)
{
	atomic_fetch_sub(&cq->users, 1);
}

void softhfi_cq_progress(struct softhfi_cq *cq)
{
	struct sengine *e = cq->v->engine;

	if (e) {
		cq_in_verb = cq;
		sengine_progress(e, NULL);
		cq_in_verb = NULL;
	}
}
