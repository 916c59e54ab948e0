// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the IB QP state machine and the checks MODIFY_QP makes before
 * anything changes, as the uverbs core and rdmavt make them in the kernel.
 * Pure functions of the command, the QP's type and state and the device's
 * limits, so that qp.c applies only commands that passed, and so that
 * they are tested alone.
 *
 * The transitions and the attributes each requires and allows are the
 * IB spec's (vol. 1, 10.3.1 and the Modify QP verb, 11.2.5.2). The soft
 * HFI does not do automatic path migration: an alternate path is refused
 * wherever the spec would allow one.
 */
#include <errno.h>
#include <stddef.h>

#include "sverbs.h"

/* The QP types a transition is defined for, as table indices. */
enum { QT_RC, QT_UC, QT_UD, QT_N };

#define QT_CONN ((1 << QT_RC) | (1 << QT_UC))
#define QT_ALL (QT_CONN | (1 << QT_UD))

/* Shorthands that keep the table below readable. */
#define A_CUR SQP_ATTR_CUR_STATE
#define A_NOTIFY SQP_ATTR_EN_SQD_ASYNC_NOTIFY
#define A_ACCESS SQP_ATTR_ACCESS_FLAGS
#define A_PKEY SQP_ATTR_PKEY_INDEX
#define A_PORT SQP_ATTR_PORT
#define A_QKEY SQP_ATTR_QKEY
#define A_AV SQP_ATTR_AV
#define A_MTU SQP_ATTR_PATH_MTU
#define A_TIMEOUT SQP_ATTR_TIMEOUT
#define A_RETRY SQP_ATTR_RETRY_CNT
#define A_RNR_RETRY SQP_ATTR_RNR_RETRY
#define A_RQ_PSN SQP_ATTR_RQ_PSN
#define A_RD_ATOMIC SQP_ATTR_MAX_QP_RD_ATOMIC
#define A_ALT SQP_ATTR_ALT_PATH
#define A_RNR_TIMER SQP_ATTR_MIN_RNR_TIMER
#define A_SQ_PSN SQP_ATTR_SQ_PSN
#define A_DEST_RD_ATOMIC SQP_ATTR_MAX_DEST_RD_ATOMIC
#define A_MIG SQP_ATTR_PATH_MIG_STATE
#define A_DEST_QPN SQP_ATTR_DEST_QPN

/* What the send side of an RC or UC QP may change once it runs. */
#define RUN_UC (A_CUR | A_ACCESS | A_ALT | A_MIG)
#define RUN_RC (RUN_UC | A_RNR_TIMER)
#define RUN_UD (A_CUR | A_QKEY)

struct sqp_trans {
	uint8_t types; /* QT_* bits: the QP types it exists for */
	uint32_t req[QT_N];
	uint32_t opt[QT_N];
};

/*
 * The transitions a consumer may ask for, other than to RESET and to ERR,
 * which any state may take with no attribute. SQE is entered only on a
 * send error, never by a modify; an RC QP never enters it (its send
 * errors move it to ERR).
 */
static const struct sqp_trans sqp_trans[SQP_ERR + 1][SQP_ERR + 1] = {
	[SQP_RESET][SQP_INIT] = {
		.types = QT_ALL,
		.req = {
			[QT_RC] = A_PKEY | A_PORT | A_ACCESS,
			[QT_UC] = A_PKEY | A_PORT | A_ACCESS,
			[QT_UD] = A_PKEY | A_PORT | A_QKEY,
		},
	},
	[SQP_INIT][SQP_INIT] = {
		.types = QT_ALL,
		.opt = {
			[QT_RC] = A_PKEY | A_PORT | A_ACCESS,
			[QT_UC] = A_PKEY | A_PORT | A_ACCESS,
			[QT_UD] = A_PKEY | A_PORT | A_QKEY,
		},
	},
	[SQP_INIT][SQP_RTR] = {
		.types = QT_ALL,
		.req = {
			[QT_RC] = A_AV | A_MTU | A_DEST_QPN | A_RQ_PSN |
				  A_DEST_RD_ATOMIC | A_RNR_TIMER,
			[QT_UC] = A_AV | A_MTU | A_DEST_QPN | A_RQ_PSN,
		},
		.opt = {
			[QT_RC] = A_ALT | A_ACCESS | A_PKEY,
			[QT_UC] = A_ALT | A_ACCESS | A_PKEY,
			[QT_UD] = A_PKEY | A_QKEY,
		},
	},
	[SQP_RTR][SQP_RTS] = {
		.types = QT_ALL,
		.req = {
			[QT_RC] = A_TIMEOUT | A_RETRY | A_RNR_RETRY | A_SQ_PSN |
				  A_RD_ATOMIC,
			[QT_UC] = A_SQ_PSN,
			[QT_UD] = A_SQ_PSN,
		},
		.opt = { [QT_RC] = RUN_RC, [QT_UC] = RUN_UC, [QT_UD] = RUN_UD },
	},
	[SQP_RTS][SQP_RTS] = {
		.types = QT_ALL,
		.opt = { [QT_RC] = RUN_RC, [QT_UC] = RUN_UC, [QT_UD] = RUN_UD },
	},
	[SQP_RTS][SQP_SQD] = {
		.types = QT_ALL,
		.opt = { [QT_RC] = A_NOTIFY, [QT_UC] = A_NOTIFY,
			 [QT_UD] = A_NOTIFY },
	},
	[SQP_SQD][SQP_RTS] = {
		.types = QT_ALL,
		.opt = { [QT_RC] = RUN_RC, [QT_UC] = RUN_UC, [QT_UD] = RUN_UD },
	},
	/* A drained send queue is where the path may be changed. */
	[SQP_SQD][SQP_SQD] = {
		.types = QT_ALL,
		.opt = {
			[QT_RC] = A_PORT | A_AV | A_TIMEOUT | A_RETRY |
				  A_RNR_RETRY | A_RD_ATOMIC | A_DEST_RD_ATOMIC |
				  A_ALT | A_ACCESS | A_PKEY | A_RNR_TIMER |
				  A_MIG,
			[QT_UC] = A_AV | A_ALT | A_ACCESS | A_PKEY | A_MIG,
			[QT_UD] = A_PKEY | A_QKEY,
		},
	},
	[SQP_SQE][SQP_RTS] = {
		.types = (1 << QT_UC) | (1 << QT_UD),
		.opt = { [QT_UC] = A_CUR | A_ACCESS, [QT_UD] = RUN_UD },
	},
};

static const char *const sqp_names[SQP_ERR + 1] = {
	[SQP_RESET] = "RESET", [SQP_INIT] = "INIT", [SQP_RTR] = "RTR",
	[SQP_RTS] = "RTS",     [SQP_SQD] = "SQD",   [SQP_SQE] = "SQE",
	[SQP_ERR] = "ERR",
};

const char *sqp_state_name(enum sqp_state state)
{
	if ((unsigned int)state > SQP_ERR)
		return "?";
	return sqp_names[state];
}

enum sqp_state sqp_next_state(enum sqp_state cur,
			      const struct ib_uverbs_modify_qp *cmd)
{
	/* No new state: the attributes change within the current one. */
	if (!(cmd->attr_mask & SQP_ATTR_STATE))
		return cur;
	return (enum sqp_state)cmd->qp_state;
}

uint32_t sqp_mtu_bytes(uint8_t mtu)
{
	if (mtu < SQP_MTU_256 || mtu > SQP_MTU_4096)
		return 0;
	return 128u << mtu;
}

static int qt_index(uint8_t qp_type)
{
	switch (qp_type) {
	case IB_UVERBS_QPT_RC:
		return QT_RC;
	case IB_UVERBS_QPT_UC:
		return QT_UC;
	case IB_UVERBS_QPT_UD:
		return QT_UD;
	default:
		return -1;
	}
}

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return EINVAL;
}

static bool port_ok(uint8_t port, const struct sqp_limits *lim)
{
	return port >= 1 && port <= lim->port_cnt;
}

/* The primary path of a connected QP. */
static int check_av(const struct ib_uverbs_qp_dest *d,
		    const struct sqp_limits *lim, const char **why)
{
	/* 0 is the QP's own port, as libibverbs leaves it unset. */
	if (d->port_num && !port_ok(d->port_num, lim))
		return fail(why, "AV port out of range");
	if (d->is_global && d->sgid_index >= lim->gid_tbl_len)
		return fail(why, "AV SGID index out of range");
	if (!d->is_global && !d->dlid)
		return fail(why, "AV DLID 0 without a GRH");
	/* A connection has one peer: no multicast or permissive LID. */
	if (d->dlid >= 0xc000)
		return fail(why, "AV DLID multicast");
	/* OPA service levels are 5 bits. */
	if (d->sl > 31)
		return fail(why, "AV SL over 31");
	return 0;
}

/* The values of the attributes @mask gives, which the table allowed. */
static int check_values(uint32_t mask, const struct ib_uverbs_modify_qp *c,
			const struct sqp_limits *lim, const char **why)
{
	const uint32_t access =
		IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |
		IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC;
	int err;

	if ((mask & SQP_ATTR_PORT) && !port_ok(c->port_num, lim))
		return fail(why, "port out of range");
	if ((mask & SQP_ATTR_PKEY_INDEX) && c->pkey_index >= lim->pkey_tbl_len)
		return fail(why, "P_Key index out of range");
	if (mask & SQP_ATTR_AV) {
		err = check_av(&c->dest, lim, why);
		if (err)
			return err;
	}
	if (mask & SQP_ATTR_PATH_MTU) {
		if (!sqp_mtu_bytes(c->path_mtu))
			return fail(why, "bad path MTU");
		if (c->path_mtu > lim->active_mtu)
			return fail(why, "path MTU above the active MTU");
	}
	/* The 5-bit and 3-bit fields of the spec's encodings. */
	if ((mask & SQP_ATTR_TIMEOUT) && c->timeout > 31)
		return fail(why, "local ACK timeout over 31");
	if ((mask & SQP_ATTR_RETRY_CNT) && c->retry_cnt > 7)
		return fail(why, "retry count over 7");
	if ((mask & SQP_ATTR_RNR_RETRY) && c->rnr_retry > 7)
		return fail(why, "RNR retry count over 7");
	if ((mask & SQP_ATTR_MIN_RNR_TIMER) && c->min_rnr_timer > 31)
		return fail(why, "RNR timer over 31");
	if ((mask & SQP_ATTR_MAX_QP_RD_ATOMIC) &&
	    c->max_rd_atomic > lim->max_rd_atom)
		return fail(why, "max_rd_atomic over the device's");
	if ((mask & SQP_ATTR_MAX_DEST_RD_ATOMIC) &&
	    c->max_dest_rd_atomic > lim->max_dest_rd_atom)
		return fail(why, "max_dest_rd_atomic over the device's");
	if ((mask & SQP_ATTR_ACCESS_FLAGS) && (c->qp_access_flags & ~access))
		return fail(why, "unsupported access flags");
	if (mask & SQP_ATTR_PATH_MIG_STATE) {
		/* Rearming or arming means an alternate path to migrate to. */
		if (c->path_mig_state == SQP_MIG_REARM ||
		    c->path_mig_state == SQP_MIG_ARMED)
			return fail(why, "alternate path not supported");
		if (c->path_mig_state != SQP_MIG_MIGRATED)
			return fail(why, "bad path migration state");
	}
	if ((mask & SQP_ATTR_DEST_QPN) && c->dest_qp_num > SQP_QPN_MASK)
		return fail(why, "destination QPN over 24 bits");
	return 0;
}

int sqp_check_modify(uint8_t qp_type, enum sqp_state cur,
		     const struct ib_uverbs_modify_qp *cmd,
		     const struct sqp_limits *lim, const char **why)
{
	uint32_t mask = cmd->attr_mask, req = 0, opt = 0;
	int qt = qt_index(qp_type);
	enum sqp_state next;

	if (qt < 0)
		return fail(why, "QP type not RC, UC or UD");
	if ((unsigned int)cur > SQP_ERR)
		return fail(why, "bad current state");
	if (mask & ~SQP_ATTR_ALL)
		return fail(why, "unknown attribute mask bits");
	if ((mask & SQP_ATTR_STATE) && cmd->qp_state > SQP_ERR)
		return fail(why, "bad new state");
	/* The consumer's idea of the state must be the QP's. */
	if ((mask & SQP_ATTR_CUR_STATE) && cmd->cur_qp_state != cur)
		return fail(why, "current state mismatch");

	next = sqp_next_state(cur, cmd);
	if (next != SQP_RESET && next != SQP_ERR) {
		const struct sqp_trans *t = &sqp_trans[cur][next];

		if (!(t->types & (1 << qt)))
			return fail(why, "no such state transition");
		req = t->req[qt];
		opt = t->opt[qt];
	}
	if ((mask & req) != req)
		return fail(why, "a required attribute is missing");
	if (mask & ~(req | opt | SQP_ATTR_STATE))
		return fail(why, "an attribute the transition does not allow");
	if (mask & SQP_ATTR_ALT_PATH)
		return fail(why, "alternate path not supported");
	return check_values(mask, cmd, lim, why);
}
