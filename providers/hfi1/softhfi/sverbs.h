/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * softhfi: the verbs server's insides (softhfi_verbs.h is its face), shared
 * by its files, which are named after rdmavt's and the hfi1 driver's:
 * - verbs.c: a context's verbs server, its start and stop, events, logs;
 * - cq.c: completion queues, their rings, arming and channel events;
 * - qp.c: queue pairs, posting; qp_state.c: the QP state machine and the
 *   checks of MODIFY_QP, pure functions of the command and the state;
 * - ah.c: address handles;
 * - engine.c: the engine thread, the adapter: it sends what is posted,
 *   receives, places, acks and completes; rc.c, uc.c, ud.c its protocols;
 * - wire.c: the link, an AF_UNIX stream between two engines, and the
 *   node-local directory of (LID, QPN) endpoints.
 */
#ifndef SOFTHFI_SVERBS_H
#define SOFTHFI_SVERBS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <rdma/ib_user_ioctl_verbs.h> /* IB_UVERBS_QPT_*, _ACCESS_* */

#include "hfi1_stats_file.h" /* struct hfi1_data_counters */
#include "softhfi_verbs.h"

struct softhfi_ctxt;
struct sengine;

/* A context's verbs server: to_sctxt(drv)->verbs. */
struct sverbs {
	struct softhfi_ctxt *ctxt;
	struct hfi1_drv *drv;
	struct softhfi_verbs_ops ops;
	char *fabric_dir;
	uint16_t lid;
	uint8_t gid[16];
	struct sengine *engine;
	/* The port's, or own_ctr: written under the engine's lock. */
	struct hfi1_data_counters *ctr;
	struct hfi1_data_counters own_ctr;

	/* cq.c: the CQs alive, which stop destroys; a leaf lock. */
	pthread_mutex_t cq_lock;
	LIST_HEAD(, softhfi_cq) cqs;
	unsigned int ncq;
	pthread_mutex_t ah_lock; /* the AH table */
	struct sah *ahs;
	uint32_t ah_cap;
};

/* An address handle (ah.c). */
struct sah {
	bool used;
	bool grh;
	uint16_t dlid;
	uint32_t pdn;
	uint8_t dgid[16];
};

/* The verbs server of a soft context; NULL before softhfi_verbs_start(). */
struct sverbs *sverbs_of(struct hfi1_drv *drv);

/* verbs.c */
void sverbs_event(struct sverbs *v, uint32_t type, uint64_t element);
void sverbs_log(struct sverbs *v, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define SV_LOG_ERR 3 /* VERBS_LOG_ERR */
#define SV_LOG_WARN 4 /* VERBS_LOG_WARN */
#define SV_LOG_DEBUG 7 /* VERBS_LOG_DEBUG */

/*
 * The IB spec's numbers that the uverbs uapi headers leave to each side
 * (libibverbs and the kernel use the same): completion
 * statuses and flags, send flags, async events. (QP states and
 * MODIFY_QP's mask: qp_state.c's section.)
 */
enum {
	SWC_SUCCESS = 0,
	SWC_LOC_LEN_ERR = 1,
	SWC_LOC_QP_OP_ERR = 2,
	SWC_LOC_PROT_ERR = 4,
	SWC_WR_FLUSH_ERR = 5,
	SWC_LOC_ACCESS_ERR = 8,
	SWC_REM_INV_REQ_ERR = 9,
	SWC_REM_ACCESS_ERR = 10,
	SWC_REM_OP_ERR = 11,
	SWC_RETRY_EXC_ERR = 12,
	SWC_RNR_RETRY_EXC_ERR = 13,
	SWC_GENERAL_ERR = 21,
};

/* Receive completions' opcodes (IB_WC_RECV and on; the uapi stops at TSO). */
enum {
	SWC_RECV = 1 << 7,
	SWC_RECV_RDMA_WITH_IMM,
};

enum {
	SWC_FLAG_GRH = 1 << 0,
	SWC_FLAG_WITH_IMM = 1 << 1,
};

enum {
	SSEND_FENCE = 1 << 0,
	SSEND_SIGNALED = 1 << 1,
	SSEND_SOLICITED = 1 << 2,
	SSEND_INLINE = 1 << 3,
};

enum {
	SEV_CQ_ERR = 0,
	SEV_QP_FATAL = 1,
	SEV_QP_REQ_ERR = 2,
	SEV_QP_ACCESS_ERR = 3,
	SEV_COMM_EST = 4,
	SEV_SQ_DRAINED = 5,
	SEV_SRQ_LIMIT_REACHED = 15,
	SEV_QP_LAST_WQE_REACHED = 16,
};

/* --- wire.c --- */

#define SWIRE_NAME_MAX 96
#define SWIRE_MAGIC 0x31494648 /* "HFI1" */
#define SWIRE_QPN_MAX 0xffffff

enum swire_link_kind {
	SWIRE_LINK_QP = 1, /* one connected QP pair, both ways */
	SWIRE_LINK_UD = 2, /* UD sends from one context to another */
};

/* The first bytes on a new link, from the side that connected. */
struct swire_hello {
	uint32_t magic;
	uint8_t kind; /* enum swire_link_kind */
	uint8_t reserved;
	uint16_t slid;
	uint32_t sqpn; /* SWIRE_LINK_QP: the two QPs */
	uint32_t dqpn;
};

/* Headers a side keeps in its doorbell: the last this many it wrote. */
#define SWIRE_BELL_RING 64
/* Room for one header (struct spkt, engine.h) in a ring slot. */
#define SWIRE_BELL_HDR 88

/*
 * A link's doorbell: shared memory that the side which connects makes and
 * passes with its hello, sealed so that neither side can shrink it under
 * the other. Each side counts the whole packets it has written, so that
 * a polling peer learns that a packet waits without a system call, and
 * keeps a copy of their headers: the peer reads a header there and not
 * from the stream (whose bytes it then skips in its next read). A slot
 * holds packet n's header while its seq is n + 1; the writer sets seq to
 * 0 while it rewrites the slot (a seqlock).
 */
struct swire_bell_slot {
	_Atomic uint64_t seq;
	unsigned char hdr[SWIRE_BELL_HDR];
};

struct swire_bell {
	struct {
		_Atomic uint64_t sent; /* written by this side only */
		/*
		 * RC: the last message this side acked, 1 << 32 | its ssn
		 * (0: none). Cumulative, as IB's ACKs: the peer's requester
		 * reads it while it polls.
		 */
		_Atomic uint64_t ack;
		/*
		 * The peer's packets this side has taken: the peer leaves a
		 * header in the ring alone (its payload on the lane) only
		 * while its slot cannot be reused before it is taken.
		 */
		_Atomic uint64_t taken;
		/*
		 * This side's application polls, and reads the peer's ack
		 * here: an ACK to it need not go on the stream too.
		 */
		_Atomic uint32_t polling;
		char pad[36];
		/*
		 * Completion events given by the peer (engine.c,
		 * sengine_delegate()), in a line of their own that every
		 * packet's writer reads and no packet writes. chan_given:
		 * this side's application has a completion channel for the
		 * CQ of its link's QP, and chan_* name it; chan_taken: this
		 * side holds the peer's channel; ev_armed: this side's
		 * application waits on its channel, and whoever gives it the
		 * event takes it (exchanged to 0).
		 */
		_Atomic uint32_t chan_given;
		_Atomic uint32_t chan_taken;
		_Atomic uint32_t ev_armed;
		int32_t chan_pid, chan_fd;
		uint64_t chan_cq_handle;
		char pad_chan[32];
		struct swire_bell_slot ring[SWIRE_BELL_RING];
	} side[2]; /* [0]: the side that connected */
};

/* A context's endpoint on the fabric. */
struct swire {
	uint16_t lid;
	int listen_fd;
	uint32_t next_qpn;
	char lid_dir[4096]; /* <fabric>/<lid> */
	char name[SWIRE_NAME_MAX]; /* the abstract socket's name */
};

int swire_open(struct swire *w, const char *fabric_dir, uint16_t lid);
void swire_close(struct swire *w);
/* Take a free QPN on this LID; 0 or an errno. */
int swire_qpn_alloc(struct swire *w, uint32_t *qpn);
void swire_qpn_free(struct swire *w, uint32_t qpn);
/* The endpoint that serves (@dlid, @dqpn): 0 or ENOENT. */
int swire_lookup(struct swire *w, uint16_t dlid, uint32_t dqpn, char *name,
		 size_t len);
/*
 * A link as the wire made it: its stream, its doorbell, and its lane, a
 * pipe each way (-1s where there is none) for small payloads whose
 * headers go in the doorbell alone (slink_write()). Each side also holds
 * the read end of the pipe it writes (lane_guard), so that a write never
 * finds the pipe without a reader: no SIGPIPE for the application when
 * the peer dies, whose stream says so.
 */
struct swire_conn {
	int fd;
	struct swire_bell *bell;
	int lane_in, lane_out, lane_guard;
};

/*
 * A new link to @endpoint, @hello and its doorbell sent, and with @lane a
 * lane if the pipes can be had: 0 or an errno.
 */
int swire_connect(struct swire *w, const char *endpoint,
		  const struct swire_hello *hello, bool lane,
		  struct swire_conn *c);
/* The next link on the listener, its hello and doorbell: 0 or an errno. */
int swire_accept(struct swire *w, struct swire_hello *hello,
		 struct swire_conn *c);
/* Close what swire_connect() or swire_accept() gave. */
void swire_conn_close(struct swire_conn *c);
void swire_bell_unmap(struct swire_bell *bell);
/* The link's send buffer, as the kernel sized it. */
int swire_link_sndbuf(int fd);

/* ah.c: the destination of UD sends through AH @handle: 0 or EINVAL. */
int softhfi_ah_resolve(struct sverbs *v, uint32_t pdn, uint32_t handle,
		       uint16_t *dlid, bool *grh, uint8_t *dgid);

/* cq.c, for the engine and the QPs */
/*
 * Add @wc to @cq and raise its channel event if it is armed for it
 * (@solicited: the completion of a receive of a solicited message). On
 * overrun the completion is lost, the CQ is in error from then on and
 * IB_EVENT_CQ_ERR goes to the application, once: false. e->lock, if the
 * context has links.
 */
bool scq_push(struct softhfi_cq *cq, const struct ib_uverbs_wc *wc,
	      bool solicited);
/* The same, of a message whose sender gave its event (sengine_delegate()). */
bool scq_push_given(struct softhfi_cq *cq, const struct ib_uverbs_wc *wc,
		    bool solicited, bool event_given);
/* A QP or SRQ starts or stops using @cq (destroy refuses while used). */
void scq_get(struct softhfi_cq *cq);
void scq_put(struct softhfi_cq *cq);
/* At stop: every CQ still there goes, its channel's fd with it. */
void scq_destroy_all(struct sverbs *v);

/* qp_state.c: the QP state machine and MODIFY_QP's checks */

/* QP states: the uverbs ABI's qp_state values (the kernel's IB_QPS_*). */
enum sqp_state {
	SQP_RESET,
	SQP_INIT,
	SQP_RTR,
	SQP_RTS,
	SQP_SQD,
	SQP_SQE,
	SQP_ERR,
};

/*
 * ib_uverbs_modify_qp.attr_mask bits: the kernel's IB_QP_* and ibverbs'
 * IBV_QP_*, which the uapi headers do not define.
 */
enum {
	SQP_ATTR_STATE = 1 << 0,
	SQP_ATTR_CUR_STATE = 1 << 1,
	SQP_ATTR_EN_SQD_ASYNC_NOTIFY = 1 << 2,
	SQP_ATTR_ACCESS_FLAGS = 1 << 3,
	SQP_ATTR_PKEY_INDEX = 1 << 4,
	SQP_ATTR_PORT = 1 << 5,
	SQP_ATTR_QKEY = 1 << 6,
	SQP_ATTR_AV = 1 << 7,
	SQP_ATTR_PATH_MTU = 1 << 8,
	SQP_ATTR_TIMEOUT = 1 << 9,
	SQP_ATTR_RETRY_CNT = 1 << 10,
	SQP_ATTR_RNR_RETRY = 1 << 11,
	SQP_ATTR_RQ_PSN = 1 << 12,
	SQP_ATTR_MAX_QP_RD_ATOMIC = 1 << 13,
	SQP_ATTR_ALT_PATH = 1 << 14,
	SQP_ATTR_MIN_RNR_TIMER = 1 << 15,
	SQP_ATTR_SQ_PSN = 1 << 16,
	SQP_ATTR_MAX_DEST_RD_ATOMIC = 1 << 17,
	SQP_ATTR_PATH_MIG_STATE = 1 << 18,
	SQP_ATTR_CAP = 1 << 19,
	SQP_ATTR_DEST_QPN = 1 << 20,
	SQP_ATTR_ALL = (1 << 21) - 1,
};

/* path_mtu values (the kernel's enum ib_mtu, ibverbs' IBV_MTU_*). */
enum {
	SQP_MTU_256 = 1,
	SQP_MTU_512,
	SQP_MTU_1024,
	SQP_MTU_2048,
	SQP_MTU_4096,
};

/* path_mig_state values (enum ib_mig_state). */
enum {
	SQP_MIG_MIGRATED,
	SQP_MIG_REARM,
	SQP_MIG_ARMED,
};

/* PSNs and QPNs are 24 bits on the wire. */
#define SQP_PSN_MASK 0xffffffu
#define SQP_QPN_MASK 0xffffffu

/* What MODIFY_QP's values are checked against: the device's and port's. */
struct sqp_limits {
	uint8_t port_cnt; /* ports are 1..port_cnt */
	uint16_t pkey_tbl_len;
	uint8_t gid_tbl_len;
	uint8_t max_rd_atom; /* bound of max_rd_atomic (initiator depth) */
	uint8_t max_dest_rd_atom; /* bound of max_dest_rd_atomic */
	uint8_t active_mtu; /* SQP_MTU_*: the bound of path_mtu */
};

/*
 * Check MODIFY_QP @cmd on a QP of @qp_type (IB_UVERBS_QPT_RC, _UC or _UD)
 * now in state @cur: the transition must exist, with each attribute it
 * requires and none it does not allow (no SQP_ATTR_STATE: a modify within
 * @cur), and every value given must be valid. 0, or EINVAL with *@why set
 * to a short static reason for the log. PSNs are not checked: the QP
 * keeps their low 24 bits (SQP_PSN_MASK).
 */
int sqp_check_modify(uint8_t qp_type, enum sqp_state cur,
		     const struct ib_uverbs_modify_qp *cmd,
		     const struct sqp_limits *lim, const char **why);
/* The state @cmd moves a QP in @cur to (checked by sqp_check_modify()). */
enum sqp_state sqp_next_state(enum sqp_state cur,
			      const struct ib_uverbs_modify_qp *cmd);
/* "RESET", "INIT", ... "ERR", for logs; "?" for another value. */
const char *sqp_state_name(enum sqp_state state);
/* The bytes of an SQP_MTU_* value; 0 for another value. */
uint32_t sqp_mtu_bytes(uint8_t mtu);

#endif /* SOFTHFI_SVERBS_H */
