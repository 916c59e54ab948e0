/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * softhfi: the engine and the QPs it drives, shared by qp.c (the verbs on
 * QPs), engine.c (the thread and the links) and rc.c (the protocols:
 * hfi1's rc.c, uc.c and ud.c in one place, as the wire is one stream).
 *
 * Locks, in this order: e->lock (the QP table, the links; the engine
 * holds it while it works, the verbs while they change a QP) ->
 * qp->sq_lock (a spinlock: posting sends) -> a CQ's lock (cq.c).
 */
#ifndef SOFTHFI_ENGINE_H
#define SOFTHFI_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "sverbs.h"

/* Packets on a link: a header, then len bytes of payload. */
enum spkt_op {
	SP_SEND = 1,
	SP_WRITE,
	SP_READ_REQ,
	SP_READ_RESP,
	SP_CMP_SWAP,
	SP_FETCH_ADD,
	SP_ATOMIC_RESP,
	SP_ACK,
	SP_NAK,
	SP_UD_SEND,
};

enum spkt_flags {
	SPF_FIRST = 1 << 0, /* of a message */
	SPF_LAST = 1 << 1,
	SPF_IMM = 1 << 2,
	SPF_SOLICITED = 1 << 3,
	SPF_GRH = 1 << 4, /* UD: the sender's AH was global */
	/*
	 * An ACK read in the doorbell (slink_bell_ack()): it may pass READ
	 * and atomic responses still on the stream.
	 */
	SPF_BELL = 1 << 5,
	/* The peer's application was given the event of its completion. */
	SPF_EVENT_GIVEN = 1 << 6,
	/*
	 * The header is in the doorbell only, its payload on the lane: none
	 * of the packet is on the stream.
	 */
	SPF_LANE = 1 << 7,
};

/* NAK syndromes (IB spec 9.7.5.2.8, as the requester completes them). */
enum spkt_nak {
	SNAK_RNR = 1,
	SNAK_INV_REQ,
	SNAK_ACCESS,
	SNAK_OP,
};

struct spkt {
	uint8_t op; /* enum spkt_op */
	uint8_t flags; /* enum spkt_flags */
	uint16_t slid;
	uint32_t dqpn;
	uint32_t sqpn;
	uint32_t ssn; /* the message's number in the requester's queue */
	uint32_t len; /* payload bytes after this header */
	uint32_t imm; /* network order, as posted */
	uint32_t key; /* rkey; NAK: syndrome; UD: qkey */
	uint32_t total; /* the message's length; NAK RNR: the timer */
	uint64_t va; /* of this packet's first byte */
	uint64_t cmp; /* atomics; ATOMIC_RESP: the original value */
	uint64_t swap;
	uint8_t sgid[16]; /* UD with SPF_GRH */
	uint8_t dgid[16];
};

_Static_assert(sizeof(struct spkt) == SWIRE_BELL_HDR,
	       "a header fills a doorbell slot");

struct slink {
	int fd;
	uint8_t kind; /* enum swire_link_kind */
	bool dead; /* EOF or error: its QP fails, it is freed */
	bool want_out; /* waiting for room (EPOLLOUT) */
	bool armed; /* watched by the engine's epoll (EPOLLONESHOT) */
	uint32_t arm_events; /* for what, while armed */
	uint32_t pkt_max; /* payload per packet: a quarter of the buffer */
	uint32_t sndbuf;
	/* At least what the socket holds unsent: slink_room(). */
	uint64_t queued_bound;
	struct swire_bell *bell; /* shared with the peer */
	uint8_t side; /* ours in bell->side[] */
	uint64_t rcvd; /* packets taken: compared with the peer's count */
	/*
	 * Bytes of headers taken from the doorbell that are still on the
	 * stream: every read of the stream reads them first.
	 */
	uint32_t skip;
	struct hfi1_data_counters *ctr; /* the context's: sctr_add() */
	struct softhfi_qp *qp; /* SWIRE_LINK_QP: its QP, once matched */
	uint16_t rlid; /* the peer */
	uint32_t rqpn;
	/*
	 * The lane (slink_write()), or -1s. lane_in is watched beside the
	 * stream (lane_armed), its epoll data the link's address + 1.
	 */
	int lane_in, lane_out, lane_guard;
	bool rx_lane; /* the payload of the packet being taken is on lane_in */
	bool lane_armed;
	uint32_t lane_max; /* bytes lane_out may hold unread */
	uint64_t lane_bound; /* at least what lane_out holds unread */
	char endpoint[SWIRE_NAME_MAX]; /* SWIRE_LINK_UD, outgoing */
	int peer_chan; /* the peer's completion channel, or -1 */
	bool peer_chan_tried;
	/* Our application waits on its channel, woken by the peer. */
	bool delegated;
	LIST_ENTRY(slink) entry;
};

/* A send WQE in the send queue: the WR, its SGEs, its inline data. */
struct swqe {
	struct ib_uverbs_send_wr wr;
	uint64_t length; /* of the message */
	uint16_t dlid; /* UD: from the AH */
	bool grh;
	uint8_t dgid[16];
	bool inl; /* the data is in inline_data, not in the SGEs */
	uint8_t inl_at; /* enum swqe_inl_at */
	struct ib_uverbs_sge sg[]; /* max_send_sge, then the inline data */
};

/*
 * Where the inline data of a WQE posted with the engine's lock held is
 * (softhfi_post_send()): at the application's addresses in sg[] until
 * its post returns, then copied into the WQE or refused.
 */
enum swqe_inl_at {
	SWQE_INL_COPIED, /* in the WQE, or not inline */
	SWQE_INL_USER, /* at the addresses in sg[] */
	SWQE_INL_USER_SENT, /* there, and a sendmsg() read it whole */
	SWQE_INL_FAULT, /* there, and they fault: LOC_PROT_ERR */
};

/* A response the responder owes, queued until the link has room. */
struct sresp {
	uint8_t op; /* SP_ACK, SP_NAK, SP_READ_RESP, SP_ATOMIC_RESP */
	uint8_t nak;
	uint32_t ssn;
	uint64_t atomic_orig;
	/*
	 * An ACK of a duplicate, older than what the doorbell may say: on
	 * the stream only.
	 */
	bool again;
	/* READ: what is left to send */
	void *mr;
	uint64_t va;
	uint64_t left;
	uint64_t sent;
};

/* A shared receive queue (srq.c); its consumer is the engine. */
struct softhfi_srq {
	struct sverbs *v;
	uint32_t pdn;
	uint64_t user_handle;
	struct rvt_rwq *rq; /* size slots of rwqe_size bytes */
	uint32_t size, max_sge, rwqe_size;
	uint32_t limit; /* armed while nonzero: e->lock */
	unsigned int users; /* QPs attached: e->lock */
};

/* READ and atomic responses, an ACK between each two and a NAK (rc.c) */
#define SQP_MAX_RESP (2 * SOFTHFI_MAX_RD_ATOM + 2)

struct softhfi_qp {
	struct sverbs *v;
	uint8_t type;
	uint32_t qpn;
	uint32_t pdn;
	bool sq_sig_all;
	uint64_t user_handle;
	struct softhfi_cq *send_cq, *recv_cq;
	struct softhfi_srq *srq;
	LIST_ENTRY(softhfi_qp) entry; /* e->qps, e->lock */

	/* Attributes: e->lock. */
	uint8_t state;
	uint32_t qkey, dest_qpn, sq_psn, rq_psn;
	uint32_t access;
	uint16_t pkey_index;
	uint8_t port, path_mtu, timeout, retry_cnt, rnr_retry;
	uint8_t min_rnr_timer, max_rd_atomic, max_dest_rd_atomic;
	uint8_t sq_draining;
	struct ib_uverbs_qp_dest ah;

	/* The send queue: slots of slot_size bytes, free-running indices. */
	pthread_spinlock_t sq_lock; /* posters */
	char *sq;
	uint32_t sq_size, slot_size;
	uint32_t max_send_sge, max_inline;
	_Atomic uint32_t sq_head; /* posted: sq_lock; read by the engine */
	/* The engine's, under e->lock: */
	uint32_t sq_done; /* oldest not completed */
	uint32_t sq_next; /* next to send */
	uint64_t sq_off; /* bytes of sq_next's message sent */
	unsigned int rd_out; /* READs and atomics awaiting their response */
	uint64_t rsp_off; /* bytes of sq_done's READ response placed */
	unsigned int rnr_tries;
	uint64_t wait_until; /* ns: RNR backoff or a connect retry */
	unsigned int conn_tries;
	/* UC: the link to the peer was lost, and what it sends is lost. */
	bool peer_lost;
	/* ns: no answer by then, and the requester sends again (RC). */
	uint64_t ack_deadline;
	unsigned int retry_tries;

	/* The receive queue (NULL with an SRQ). */
	struct rvt_rwq *rq;
	uint32_t rq_size, rq_max_sge, rwqe_size;
	uint32_t max_recv_wr;
	/* The responder's, under e->lock: */
	uint32_t e_ssn; /* the message expected next */
	bool in_msg; /* a SEND or WRITE is under way */
	bool drop_msg; /* ... but is being discarded */
	uint32_t rcv_off; /* bytes of the current SEND placed */
	uint64_t rcv_wr_id;
	uint8_t rcv_nsge;
	struct rvt_wqe_sge *rcv_sg; /* rq_max_sge: the WQE being filled */
	struct sresp resp[SQP_MAX_RESP];
	unsigned int resp_head, resp_tail;

	struct slink *link;
	_Atomic bool kicked; /* work posted since the engine last looked */
};

struct sengine {
	struct sverbs *v;
	pthread_t thread;
	bool running;
	int epfd;
	int kick_fd; /* an eventfd */
	_Atomic bool sleeping;
	_Atomic uint64_t sleep_until; /* ns: when a sleeping engine wakes */
	_Atomic bool stop;
	/* The application's polling, which the engine then leaves alone. */
	_Atomic uint64_t last_poll;
	atomic_uint poll_streak;
	_Atomic uint64_t polling_until;
	struct swire wire;
	pthread_mutex_t lock;
	LIST_HEAD(, softhfi_qp) qps;
	LIST_HEAD(, slink) links;
	int byte_pipe[2]; /* small values into pinned pages (atomics, GRH) */
	char *scratch; /* what is discarded */
	size_t scratch_size;
};

/* engine.c */
int sengine_start(struct sverbs *v);
void sengine_stop(struct sverbs *v);
void sengine_kick(struct sengine *e);
/*
 * The engine's work, done now by a verb's thread if the engine is not at
 * it (a trylock): @qp's sends, or (NULL) every link with a packet waiting
 * and every QP. What a polling application gets its completions by,
 * without waiting for the engine thread to wake. True if it ran.
 */
bool sengine_progress(struct sengine *e, struct softhfi_qp *qp);
/*
 * After a verb's thread moved the engine's work under e->lock: wake the
 * engine thread if what it did needs it sooner, and unlock e->lock.
 */
void sengine_unlock_progressed(struct sengine *e);
/*
 * @cq was armed for any completion: where one link's receives complete
 * into it and the peer holds its channel, the peer gives the event and
 * the engine thread leaves the link to the application. True if it does.
 */
bool sengine_delegate(struct sengine *e, struct softhfi_cq *cq, int chan_fd,
		      uint64_t cq_handle);
/*
 * An event of @cq is due from its engine: false if the peer of a link
 * delegated to took the arm, and gave the event itself. e->lock.
 */
bool sengine_take_cq_arm(struct sengine *e, struct softhfi_cq *cq);
/* Give the peer's application its event, for an ACK left in the doorbell. */
void slink_give_bell_event(struct slink *l);
/* The application is about to sleep on a completion channel. */
void sengine_poll_stop(struct sengine *e);
/*
 * Take the engine's lock and move what the QPs posted, in the caller's
 * thread, as the engine's next pass would: for a verb that must see what
 * the adapter makes of work posted before it. The caller unlocks e->lock.
 */
void sengine_lock_posted(struct sengine *e);
uint64_t sengine_now(void);
struct softhfi_qp *sengine_find_qp(struct sengine *e, uint32_t qpn);
/* Room on @l for a packet of @payload bytes; else want_out is set. */
bool slink_room(struct sengine *e, struct slink *l, uint64_t payload);
/* slink_write(): a fault before any byte went out writes nothing. */
#define SLINK_WHOLE 1
int slink_write(struct slink *l, const struct spkt *h, const struct iovec *iov,
		int iovcnt, size_t len, unsigned int flags);
/*
 * The next packet's header, from the doorbell where it is there: the
 * payload follows on the lane (l->rx_lane), or on l->fd after l->skip
 * bytes.
 */
int slink_read_header(struct sengine *e, struct slink *l, struct spkt *h);
/* Read and discard @len bytes of payload (on the stream, l->skip first). */
void slink_drop(struct sengine *e, struct slink *l, size_t len);
void slink_kill(struct sengine *e, struct slink *l);
/*
 * RC: leave the ACK of @ssn in the doorbell for the peer. True if the
 * peer polls and reads it there: no ACK packet is needed.
 */
bool slink_bell_ack(struct slink *l, uint32_t ssn);
/*
 * The ACK the peer left in @l's doorbell, handled as if it came on the
 * stream; one already handled changes nothing. It was left before any
 * answer on the stream that is whole now. e->lock.
 */
void slink_take_bell_ack(struct sengine *e, struct slink *l);
/* The same on every link that brings @qp its answers. e->lock. */
void sengine_take_bell_acks(struct sengine *e, struct softhfi_qp *qp);
/* Handle the packets waiting on @l, a few at most; never waits. e->lock. */
void slink_readable(struct sengine *e, struct slink *l);
struct slink *sengine_qp_link(struct sengine *e, struct softhfi_qp *qp,
			      int *err);
struct slink *sengine_ud_link(struct sengine *e, uint16_t dlid, uint32_t dqpn,
			      int *err);

/* qp.c: the QPs left at stop, after the thread ended. */
void sqp_destroy_all(struct sengine *e);

/* srq.c: the engine takes receive WQEs; e->lock. */
bool ssrq_take_locked(struct softhfi_srq *srq, uint64_t *wr_id,
		      struct rvt_wqe_sge *sg, uint8_t *nsge);
bool ssrq_empty_locked(const struct softhfi_srq *srq);

/* rc.c */
void sqp_progress_locked(struct sengine *e, struct softhfi_qp *qp);
void sqp_recv_packet_locked(struct sengine *e, struct slink *l,
			    const struct spkt *h);
void sqp_link_lost_locked(struct sengine *e, struct softhfi_qp *qp);
void sqp_answer_locked(struct sengine *e, struct softhfi_qp *qp);
void sqp_flush_locked(struct sengine *e, struct softhfi_qp *qp);
void sqp_to_error_locked(struct sengine *e, struct softhfi_qp *qp);
uint32_t sqp_avail_locked(struct softhfi_qp *qp);
/*
 * The shortest answer timeout that a send posted on @qp now may arm, or
 * UINT64_MAX. e->lock.
 */
uint64_t sqp_timer_bound_ns(const struct softhfi_qp *qp);

/*
 * A data counter of the context (v->ctr, hfi1_stats_file.h) grows by @n.
 * Its only writer is whoever holds e->lock, the engine thread or a verb's
 * thread doing the engine's work: a relaxed load and store, no locked
 * read-modify-write. hfi1_mrstat(1) loads it relaxed from outside.
 */
static inline void sctr_add(_Atomic uint64_t *ctr, uint64_t n)
{
	atomic_store_explicit(
		ctr, atomic_load_explicit(ctr, memory_order_relaxed) + n,
		memory_order_relaxed);
}

static inline struct swqe *sq_slot(struct softhfi_qp *qp, uint32_t idx)
{
	return (struct swqe *)(qp->sq +
			       (size_t)(idx % qp->sq_size) * qp->slot_size);
}

static inline struct rvt_rwqe *rq_slot(struct softhfi_qp *qp, uint32_t idx)
{
	return (struct rvt_rwqe *)((char *)qp->rq->wq +
				   (size_t)idx * qp->rwqe_size);
}

#endif /* SOFTHFI_ENGINE_H */
