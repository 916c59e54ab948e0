// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The soft HFI's QP state machine and MODIFY_QP's checks (softhfi/
 * qp_state.c) against the IB spec's table of transitions, typed here
 * again: each transition with exactly its required attributes passes,
 * without any one of them or with any attribute it does not allow it
 * fails, as does every transition the spec does not have; then the
 * values, CUR_STATE, modifies without a new state, and the masks
 * rdma-core's pyverbs (tests/test_qp.py) sends.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sverbs.h"

#define RC IB_UVERBS_QPT_RC
#define UC IB_UVERBS_QPT_UC
#define UD IB_UVERBS_QPT_UD

#define S SQP_ATTR_STATE
#define CUR SQP_ATTR_CUR_STATE
#define NOTIFY SQP_ATTR_EN_SQD_ASYNC_NOTIFY
#define ACCESS SQP_ATTR_ACCESS_FLAGS
#define PKEY SQP_ATTR_PKEY_INDEX
#define PORT SQP_ATTR_PORT
#define QKEY SQP_ATTR_QKEY
#define AV SQP_ATTR_AV
#define MTU SQP_ATTR_PATH_MTU
#define TIMEOUT SQP_ATTR_TIMEOUT
#define RETRY SQP_ATTR_RETRY_CNT
#define RNR_RETRY SQP_ATTR_RNR_RETRY
#define RQ_PSN SQP_ATTR_RQ_PSN
#define RD_ATOMIC SQP_ATTR_MAX_QP_RD_ATOMIC
#define ALT SQP_ATTR_ALT_PATH
#define RNR_TIMER SQP_ATTR_MIN_RNR_TIMER
#define SQ_PSN SQP_ATTR_SQ_PSN
#define DEST_RD_ATOMIC SQP_ATTR_MAX_DEST_RD_ATOMIC
#define MIG SQP_ATTR_PATH_MIG_STATE
#define DEST_QPN SQP_ATTR_DEST_QPN

/* The masks of an RC QP's bring-up, each transition's required set. */
#define RC_INIT (PKEY | PORT | ACCESS)
#define RC_RTR (AV | MTU | DEST_QPN | RQ_PSN | DEST_RD_ATOMIC | RNR_TIMER)
#define RC_RTS (TIMEOUT | RETRY | RNR_RETRY | SQ_PSN | RD_ATOMIC)

static const uint8_t types[] = { RC, UC, UD };

/* The soft HFI's device and port. */
static const struct sqp_limits lim = {
	.port_cnt = 1,
	.pkey_tbl_len = 16,
	.gid_tbl_len = 1,
	.max_rd_atom = 16,
	.max_dest_rd_atom = 16,
	.active_mtu = SQP_MTU_4096,
};

/* The spec's transitions (other than to RESET and ERR), by QP type. */
struct row {
	uint8_t type;
	enum sqp_state cur, next;
	uint32_t req, opt;
};

static const struct row rows[] = {
	{ RC, SQP_RESET, SQP_INIT, RC_INIT, 0 },
	{ RC, SQP_INIT, SQP_INIT, 0, PKEY | PORT | ACCESS },
	{ RC, SQP_INIT, SQP_RTR, RC_RTR, ALT | ACCESS | PKEY },
	{ RC, SQP_RTR, SQP_RTS, RC_RTS, CUR | ALT | ACCESS | RNR_TIMER | MIG },
	{ RC, SQP_RTS, SQP_RTS, 0, CUR | ACCESS | ALT | MIG | RNR_TIMER },
	{ RC, SQP_RTS, SQP_SQD, 0, NOTIFY },
	{ RC, SQP_SQD, SQP_RTS, 0, CUR | ALT | ACCESS | RNR_TIMER | MIG },
	{ RC, SQP_SQD, SQP_SQD, 0,
	  PORT | AV | TIMEOUT | RETRY | RNR_RETRY | RD_ATOMIC | DEST_RD_ATOMIC |
		  ALT | ACCESS | PKEY | RNR_TIMER | MIG },

	{ UC, SQP_RESET, SQP_INIT, PKEY | PORT | ACCESS, 0 },
	{ UC, SQP_INIT, SQP_INIT, 0, PKEY | PORT | ACCESS },
	{ UC, SQP_INIT, SQP_RTR, AV | MTU | DEST_QPN | RQ_PSN,
	  ALT | ACCESS | PKEY },
	{ UC, SQP_RTR, SQP_RTS, SQ_PSN, CUR | ALT | ACCESS | MIG },
	{ UC, SQP_RTS, SQP_RTS, 0, CUR | ACCESS | ALT | MIG },
	{ UC, SQP_RTS, SQP_SQD, 0, NOTIFY },
	{ UC, SQP_SQD, SQP_RTS, 0, CUR | ALT | ACCESS | MIG },
	{ UC, SQP_SQD, SQP_SQD, 0, AV | ALT | ACCESS | PKEY | MIG },
	{ UC, SQP_SQE, SQP_RTS, 0, CUR | ACCESS },

	{ UD, SQP_RESET, SQP_INIT, PKEY | PORT | QKEY, 0 },
	{ UD, SQP_INIT, SQP_INIT, 0, PKEY | PORT | QKEY },
	{ UD, SQP_INIT, SQP_RTR, 0, PKEY | QKEY },
	{ UD, SQP_RTR, SQP_RTS, SQ_PSN, CUR | QKEY },
	{ UD, SQP_RTS, SQP_RTS, 0, CUR | QKEY },
	{ UD, SQP_RTS, SQP_SQD, 0, NOTIFY },
	{ UD, SQP_SQD, SQP_RTS, 0, CUR | QKEY },
	{ UD, SQP_SQD, SQP_SQD, 0, PKEY | QKEY },
	{ UD, SQP_SQE, SQP_RTS, 0, CUR | QKEY },
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static const struct row *find_row(uint8_t type, enum sqp_state cur,
				  enum sqp_state next)
{
	for (size_t i = 0; i < N_ROWS; i++)
		if (rows[i].type == type && rows[i].cur == cur &&
		    rows[i].next == next)
			return &rows[i];
	return NULL;
}

/* A command whose every value is valid; CUR_STATE says @cur. */
static void good_cmd(struct ib_uverbs_modify_qp *c, enum sqp_state cur,
		     enum sqp_state next, uint32_t mask)
{
	memset(c, 0, sizeof(*c));
	c->attr_mask = mask;
	c->qp_state = next;
	c->cur_qp_state = cur;
	c->qkey = 0x11111111;
	c->rq_psn = 0x123456;
	c->sq_psn = 0x654321;
	c->dest_qp_num = 0x42;
	c->qp_access_flags =
		IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |
		IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC;
	c->pkey_index = 0;
	c->path_mtu = SQP_MTU_4096;
	c->path_mig_state = SQP_MIG_MIGRATED;
	c->en_sqd_async_notify = 1;
	c->max_rd_atomic = 16;
	c->max_dest_rd_atomic = 16;
	c->min_rnr_timer = 12;
	c->port_num = 1;
	c->timeout = 14;
	c->retry_cnt = 7;
	c->rnr_retry = 7;
	c->dest.dlid = 2;
	c->dest.port_num = 1;
}

/* Check a command with good values; *why is reset before. */
static int check(uint8_t type, enum sqp_state cur, enum sqp_state next,
		 uint32_t mask, const char **why)
{
	struct ib_uverbs_modify_qp c;

	good_cmd(&c, cur, next, mask);
	*why = NULL;
	return sqp_check_modify(type, cur, &c, &lim, why);
}

#define assert_ok(type, cur, next, mask)                                    \
	do {                                                                \
		const char *why_;                                           \
		int ret_ = check(type, cur, next, mask, &why_);             \
		if (ret_)                                                   \
			fail_msg("type %u %s->%s mask %#x: %s", type,       \
				 sqp_state_name(cur), sqp_state_name(next), \
				 (unsigned int)(mask), why_ ? why_ : "?");  \
	} while (0)

#define assert_einval(type, cur, next, mask)                                 \
	do {                                                                 \
		const char *why_;                                            \
		int ret_ = check(type, cur, next, mask, &why_);              \
		if (ret_ != EINVAL)                                          \
			fail_msg("type %u %s->%s mask %#x: %d, not EINVAL",  \
				 type, sqp_state_name(cur),                  \
				 sqp_state_name(next), (unsigned int)(mask), \
				 ret_);                                      \
		assert_non_null(why_);                                       \
	} while (0)

static void test_rc_bring_up(void **state)
{
	static const uint32_t masks[] = { S | RC_INIT, S | RC_RTR, S | RC_RTS };
	static const enum sqp_state to[] = { SQP_INIT, SQP_RTR, SQP_RTS };
	enum sqp_state cur = SQP_RESET;
	struct ib_uverbs_modify_qp c;
	const char *why = NULL;

	(void)state;
	for (int i = 0; i < 3; i++) {
		good_cmd(&c, cur, to[i], masks[i]);
		assert_int_equal(sqp_check_modify(RC, cur, &c, &lim, &why), 0);
		cur = sqp_next_state(cur, &c);
		assert_int_equal(cur, to[i]);
	}
	assert_null(why);
}

/* Each transition passes with what it requires, and with all it allows. */
static void test_table_passes(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row *r = &rows[i];

		assert_ok(r->type, r->cur, r->next, S | r->req);
		/* ALT is refused, see test_alt_path. */
		assert_ok(r->type, r->cur, r->next,
			  S | r->req | (r->opt & ~ALT));
		/* Each optional one alone. */
		for (int b = 1; b <= 20; b++)
			if ((r->opt & ~ALT) & (1u << b))
				assert_ok(r->type, r->cur, r->next,
					  S | r->req | 1u << b);
	}
}

static void test_missing_required(void **state)
{
	const char *why;

	(void)state;
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row *r = &rows[i];

		for (int b = 0; b <= 20; b++) {
			if (!(r->req & (1u << b)))
				continue;
			assert_einval(r->type, r->cur, r->next,
				      S | (r->req & ~(1u << b)));
			check(r->type, r->cur, r->next,
			      S | (r->req & ~(1u << b)), &why);
			assert_string_equal(why,
					    "a required attribute is missing");
		}
	}
}

static void test_extra_bits(void **state)
{
	const char *why;

	(void)state;
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row *r = &rows[i];

		for (int b = 1; b <= 20; b++) {
			uint32_t bit = 1u << b;

			if ((r->req | r->opt) & bit)
				continue;
			assert_einval(r->type, r->cur, r->next,
				      S | r->req | bit);
			check(r->type, r->cur, r->next, S | r->req | bit, &why);
			assert_string_equal(
				why,
				"an attribute the transition does not allow");
		}
		/* Bits no verb defines (IBV_QP_RATE_LIMIT is 1 << 25). */
		assert_einval(r->type, r->cur, r->next, S | r->req | 1u << 21);
		assert_einval(r->type, r->cur, r->next, S | r->req | 1u << 25);
		assert_einval(r->type, r->cur, r->next, S | r->req | 1u << 31);
	}
}

/* Every pair of states the spec has no transition for, each QP type. */
static void test_no_such_transition(void **state)
{
	const char *why;
	int n = 0;

	(void)state;
	for (size_t t = 0; t < sizeof(types); t++)
		for (int cur = SQP_RESET; cur <= SQP_ERR; cur++)
			for (int next = SQP_RESET; next <= SQP_ERR; next++) {
				if (next == SQP_RESET || next == SQP_ERR ||
				    find_row(types[t], cur, next))
					continue;
				assert_einval(types[t], cur, next, S);
				check(types[t], cur, next, S, &why);
				assert_string_equal(why,
						    "no such state transition");
				assert_einval(types[t], cur, next,
					      S | RC_INIT | RC_RTR | RC_RTS);
				n++;
			}
	/* 49 pairs, 14 to RESET or ERR; RC has 8 others, UC and UD 9. */
	assert_int_equal(n, (35 - 8) + 2 * (35 - 9));
}

static void test_impossible(void **state)
{
	(void)state;
	assert_einval(RC, SQP_RESET, SQP_RTS, S | RC_RTS);
	assert_einval(RC, SQP_RESET, SQP_RTS, S | RC_INIT | RC_RTR | RC_RTS);
	assert_einval(RC, SQP_INIT, SQP_RTS, S | RC_RTS);
	assert_einval(RC, SQP_ERR, SQP_RTS, S | RC_RTS);
	assert_einval(RC, SQP_RESET, SQP_RTR, S | RC_RTR);
	assert_einval(RC, SQP_RTS, SQP_RTR, S | RC_RTR);
	assert_einval(RC, SQP_RTR, SQP_INIT, S);
	assert_einval(RC, SQP_ERR, SQP_INIT, S | RC_INIT);
	/* SQE is the QP's, on a send error; RC never has it. */
	assert_einval(UD, SQP_RTS, SQP_SQE, S);
	assert_einval(RC, SQP_SQE, SQP_RTS, S);
	assert_einval(UD, SQP_ERR, SQP_RTS, S | SQ_PSN);
	assert_einval(UD, SQP_RESET, SQP_RTS, S | SQ_PSN);
}

/* Any state may move to RESET or ERR, with no other attribute. */
static void test_to_reset_and_err(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(types); t++)
		for (int cur = SQP_RESET; cur <= SQP_ERR; cur++) {
			assert_ok(types[t], cur, SQP_RESET, S);
			assert_ok(types[t], cur, SQP_ERR, S);
			assert_einval(types[t], cur, SQP_RESET, S | PORT);
			assert_einval(types[t], cur, SQP_ERR, S | QKEY);
			assert_einval(types[t], cur, SQP_ERR, S | CUR);
			assert_einval(types[t], cur, SQP_RESET, S | ACCESS);
		}
}

static void test_ud_masks(void **state)
{
	(void)state;
	assert_ok(UD, SQP_RESET, SQP_INIT, S | PKEY | PORT | QKEY);
	assert_einval(UD, SQP_RESET, SQP_INIT, S | PKEY | PORT);
	assert_einval(UD, SQP_RESET, SQP_INIT, S | RC_INIT);
	assert_einval(UD, SQP_RESET, SQP_INIT, S | PKEY | PORT | QKEY | ACCESS);
	assert_ok(UD, SQP_INIT, SQP_RTR, S);
	assert_ok(UD, SQP_INIT, SQP_RTR, S | QKEY);
	assert_einval(UD, SQP_INIT, SQP_RTR, S | AV);
	assert_einval(UD, SQP_INIT, SQP_RTR, S | DEST_QPN);
	assert_einval(UD, SQP_INIT, SQP_RTR, S | MTU);
	assert_einval(UD, SQP_INIT, SQP_RTR, S | RQ_PSN);
	assert_einval(UD, SQP_INIT, SQP_RTR, S | RC_RTR);
	assert_ok(UD, SQP_RTR, SQP_RTS, S | SQ_PSN);
	assert_einval(UD, SQP_RTR, SQP_RTS, S);
	assert_einval(UD, SQP_RTR, SQP_RTS, S | RC_RTS);
	assert_einval(UD, SQP_RTR, SQP_RTS, S | SQ_PSN | TIMEOUT);
	assert_einval(UD, SQP_RTS, SQP_RTS, ACCESS);
	assert_ok(UD, SQP_RTS, SQP_RTS, QKEY);
}

static void test_uc_masks(void **state)
{
	const uint32_t rtr = AV | MTU | DEST_QPN | RQ_PSN;

	(void)state;
	assert_ok(UC, SQP_RESET, SQP_INIT, S | PKEY | PORT | ACCESS);
	assert_einval(UC, SQP_RESET, SQP_INIT, S | PKEY | PORT | QKEY);
	assert_ok(UC, SQP_INIT, SQP_RTR, S | rtr);
	/* No RDMA reads or atomics, no ACKs: no RNR timer either. */
	assert_einval(UC, SQP_INIT, SQP_RTR, S | rtr | DEST_RD_ATOMIC);
	assert_einval(UC, SQP_INIT, SQP_RTR, S | rtr | RNR_TIMER);
	assert_einval(UC, SQP_INIT, SQP_RTR, S | RC_RTR);
	assert_ok(UC, SQP_RTR, SQP_RTS, S | SQ_PSN);
	assert_einval(UC, SQP_RTR, SQP_RTS, S | SQ_PSN | TIMEOUT);
	assert_einval(UC, SQP_RTR, SQP_RTS, S | SQ_PSN | RETRY);
	assert_einval(UC, SQP_RTR, SQP_RTS, S | SQ_PSN | RNR_RETRY);
	assert_einval(UC, SQP_RTR, SQP_RTS, S | SQ_PSN | RD_ATOMIC);
	assert_einval(UC, SQP_RTR, SQP_RTS, S | RC_RTS);
	assert_einval(UC, SQP_RTS, SQP_RTS, RNR_TIMER);
	assert_ok(UC, SQP_SQE, SQP_RTS, S | ACCESS);
}

/* The masks pyverbs' QP.to_init/to_rtr/to_rts send (tests/test_qp.py). */
static void test_pyverbs(void **state)
{
	static const struct {
		uint8_t type;
		uint32_t init, rtr, rts;
	} py[] = {
		{ RC, RC_INIT, RC_RTR, RC_RTS },
		{ UC, PKEY | PORT | ACCESS, AV | MTU | DEST_QPN | RQ_PSN,
		  SQ_PSN },
		{ UD, PKEY | PORT | QKEY, 0, SQ_PSN },
	};
	struct ib_uverbs_modify_qp c;
	const char *why;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_ok(py[i].type, SQP_RESET, SQP_INIT, S | py[i].init);
		assert_ok(py[i].type, SQP_INIT, SQP_RTR, S | py[i].rtr);
		assert_ok(py[i].type, SQP_RTR, SQP_RTS, S | py[i].rts);
		assert_ok(py[i].type, SQP_RTS, SQP_RESET, S);
	}

	/* test_modify_ud_qp with QPAttr()'s defaults: only what it sets. */
	memset(&c, 0, sizeof(c));
	c.port_num = 1;
	c.path_mtu = SQP_MTU_1024;
	c.cur_qp_state = SQP_RESET;
	c.qkey = 0x123;
	c.qp_state = SQP_INIT;
	c.attr_mask = S | PKEY | PORT | QKEY;
	assert_int_equal(sqp_check_modify(UD, SQP_RESET, &c, &lim, &why), 0);
	c.qp_state = SQP_RTR;
	c.attr_mask = S;
	assert_int_equal(sqp_check_modify(UD, SQP_INIT, &c, &lim, &why), 0);
	c.qp_state = SQP_RTS;
	c.sq_psn = 0x45;
	c.attr_mask = S | SQ_PSN;
	assert_int_equal(sqp_check_modify(UD, SQP_RTR, &c, &lim, &why), 0);
	c.qp_state = SQP_RESET;
	c.attr_mask = S;
	assert_int_equal(sqp_check_modify(UD, SQP_RTS, &c, &lim, &why), 0);
}

static void test_cur_state(void **state)
{
	struct ib_uverbs_modify_qp c;
	const char *why;

	(void)state;
	assert_ok(RC, SQP_RTR, SQP_RTS, S | CUR | RC_RTS);
	assert_ok(UD, SQP_SQE, SQP_RTS, S | CUR);
	assert_ok(UC, SQP_SQD, SQP_RTS, S | CUR);
	assert_ok(RC, SQP_RTS, SQP_RTS, CUR);

	good_cmd(&c, SQP_INIT, SQP_RTS, S | CUR | RC_RTS);
	assert_int_equal(sqp_check_modify(RC, SQP_RTR, &c, &lim, &why), EINVAL);
	assert_string_equal(why, "current state mismatch");
	good_cmd(&c, SQP_RTS, SQP_RTS, S | CUR | QKEY);
	assert_int_equal(sqp_check_modify(UD, SQP_SQE, &c, &lim, &why), EINVAL);
	good_cmd(&c, 9, SQP_RTS, CUR);
	assert_int_equal(sqp_check_modify(RC, SQP_RTS, &c, &lim, &why), EINVAL);

	/* Right, but where the spec has no CUR_STATE. */
	assert_einval(RC, SQP_RESET, SQP_INIT, S | CUR | RC_INIT);
	assert_einval(RC, SQP_INIT, SQP_RTR, S | CUR | RC_RTR);
	assert_einval(RC, SQP_RTS, SQP_SQD, S | CUR);
	assert_einval(UD, SQP_SQD, SQP_SQD, CUR);
}

/* No STATE: a modify within the current state, where the spec has one. */
static void test_no_new_state(void **state)
{
	(void)state;
	assert_ok(RC, SQP_RESET, SQP_RESET, 0);
	assert_einval(RC, SQP_RESET, SQP_RESET, PORT);
	assert_ok(RC, SQP_INIT, SQP_INIT, PKEY);
	assert_ok(UD, SQP_INIT, SQP_INIT, QKEY | PORT);
	assert_einval(RC, SQP_RTR, SQP_RTR, 0);
	assert_einval(RC, SQP_RTR, SQP_RTR, MIG);
	assert_ok(RC, SQP_RTS, SQP_RTS, 0);
	assert_ok(RC, SQP_RTS, SQP_RTS, ACCESS | RNR_TIMER | MIG);
	assert_einval(RC, SQP_RTS, SQP_RTS, TIMEOUT);
	assert_ok(RC, SQP_SQD, SQP_SQD, AV | TIMEOUT | PORT);
	assert_einval(UD, SQP_SQE, SQP_SQE, 0);
	assert_ok(UD, SQP_ERR, SQP_ERR, 0);
	assert_einval(UD, SQP_ERR, SQP_ERR, QKEY);
}

static void test_sqd_notify(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(types); t++) {
		assert_ok(types[t], SQP_RTS, SQP_SQD, S | NOTIFY);
		assert_ok(types[t], SQP_RTS, SQP_SQD, S);
		assert_einval(types[t], SQP_RTS, SQP_RTS, S | NOTIFY);
		assert_einval(types[t], SQP_SQD, SQP_SQD, NOTIFY);
		assert_einval(types[t], SQP_SQD, SQP_RTS, S | NOTIFY);
	}
}

static void test_alt_path(void **state)
{
	struct ib_uverbs_modify_qp c;
	const char *why;

	(void)state;
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row *r = &rows[i];

		if (!(r->opt & ALT))
			continue;
		check(r->type, r->cur, r->next, S | r->req | ALT, &why);
		assert_string_equal(why, "alternate path not supported");
	}
	/* Arming migration needs an alternate path too. */
	good_cmd(&c, SQP_RTS, SQP_RTS, MIG);
	c.path_mig_state = SQP_MIG_REARM;
	assert_int_equal(sqp_check_modify(RC, SQP_RTS, &c, &lim, &why), EINVAL);
	assert_string_equal(why, "alternate path not supported");
}

enum field {
	F_PORT,
	F_PKEY,
	F_ACCESS,
	F_MTU,
	F_TIMEOUT,
	F_RETRY,
	F_RNR_RETRY,
	F_RNR_TIMER,
	F_RD_ATOMIC,
	F_DEST_RD_ATOMIC,
	F_DEST_QPN,
	F_MIG,
	F_AV_DLID,
	F_AV_GLOBAL_DLID0, /* is_global, DLID 0, SGID index = value */
	F_AV_PORT,
	F_AV_SL,
	F_QKEY,
	F_SQ_PSN,
	F_RQ_PSN,
	F_QP_STATE,
};

static void set_field(struct ib_uverbs_modify_qp *c, enum field f, uint32_t v)
{
	switch (f) {
	case F_PORT:
		c->port_num = v;
		break;
	case F_PKEY:
		c->pkey_index = v;
		break;
	case F_ACCESS:
		c->qp_access_flags = v;
		break;
	case F_MTU:
		c->path_mtu = v;
		break;
	case F_TIMEOUT:
		c->timeout = v;
		break;
	case F_RETRY:
		c->retry_cnt = v;
		break;
	case F_RNR_RETRY:
		c->rnr_retry = v;
		break;
	case F_RNR_TIMER:
		c->min_rnr_timer = v;
		break;
	case F_RD_ATOMIC:
		c->max_rd_atomic = v;
		break;
	case F_DEST_RD_ATOMIC:
		c->max_dest_rd_atomic = v;
		break;
	case F_DEST_QPN:
		c->dest_qp_num = v;
		break;
	case F_MIG:
		c->path_mig_state = v;
		break;
	case F_AV_DLID:
		c->dest.dlid = v;
		break;
	case F_AV_GLOBAL_DLID0:
		c->dest.is_global = 1;
		c->dest.dlid = 0;
		c->dest.sgid_index = v;
		break;
	case F_AV_PORT:
		c->dest.port_num = v;
		break;
	case F_AV_SL:
		c->dest.sl = v;
		break;
	case F_QKEY:
		c->qkey = v;
		break;
	case F_SQ_PSN:
		c->sq_psn = v;
		break;
	case F_RQ_PSN:
		c->rq_psn = v;
		break;
	case F_QP_STATE:
		c->qp_state = v;
		break;
	}
}

static void test_values(void **state)
{
	static const struct {
		uint8_t type;
		enum sqp_state cur, next;
		uint32_t mask;
		enum field f;
		uint32_t v;
		bool ok;
	} cases[] = {
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_PORT, 1, true },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_PORT, 0, false },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_PORT, 2, false },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_PKEY, 15, true },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_PKEY, 16, false },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_ACCESS, 0, true },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_ACCESS, 0x10, false },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_ACCESS, 0x20, false },
		{ RC, SQP_RESET, SQP_INIT, S | RC_INIT, F_ACCESS, 1u << 31,
		  false },
		{ UD, SQP_RESET, SQP_INIT, S | PKEY | PORT | QKEY, F_PORT, 3,
		  false },
		{ UD, SQP_RESET, SQP_INIT, S | PKEY | PORT | QKEY, F_QKEY,
		  0xffffffff, true },
		{ UD, SQP_RESET, SQP_INIT, S | PKEY | PORT | QKEY, F_QKEY, 0,
		  true },
		{ UD, SQP_INIT, SQP_RTR, S | PKEY, F_PKEY, 16, false },
		/* Values of attributes not in the mask are not looked at. */
		{ UD, SQP_INIT, SQP_RTR, S, F_PKEY, 0xffff, true },
		{ UD, SQP_INIT, SQP_RTR, S, F_MTU, 0, true },

		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_MTU, SQP_MTU_256, true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_MTU, 0, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_MTU, 6, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_MTU, 7, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_DEST_QPN, 0xffffff,
		  true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_DEST_QPN, 0x1000000,
		  false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_DEST_RD_ATOMIC, 0,
		  true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_DEST_RD_ATOMIC, 17,
		  false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_RNR_TIMER, 31, true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_RNR_TIMER, 32, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_RQ_PSN, 0xffffffff,
		  true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_DLID, 0, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_DLID, 0xbfff, true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_DLID, 0xc000, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_DLID, 0xffff, false },
		{ UC, SQP_INIT, SQP_RTR, S | AV | MTU | DEST_QPN | RQ_PSN,
		  F_AV_DLID, 0, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_GLOBAL_DLID0, 0,
		  true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_GLOBAL_DLID0, 1,
		  false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_PORT, 0, true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_PORT, 2, false },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_SL, 31, true },
		{ RC, SQP_INIT, SQP_RTR, S | RC_RTR, F_AV_SL, 32, false },

		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_TIMEOUT, 0, true },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_TIMEOUT, 31, true },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_TIMEOUT, 32, false },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_RETRY, 8, false },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_RNR_RETRY, 8, false },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_RD_ATOMIC, 0, true },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_RD_ATOMIC, 17, false },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS, F_SQ_PSN, 0xffffffff,
		  true },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS | MIG, F_MIG,
		  SQP_MIG_MIGRATED, true },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS | MIG, F_MIG, SQP_MIG_ARMED,
		  false },
		{ RC, SQP_RTR, SQP_RTS, S | RC_RTS | MIG, F_MIG, 3, false },
		{ RC, SQP_RTS, SQP_RTS, RNR_TIMER, F_RNR_TIMER, 32, false },
		{ RC, SQP_SQD, SQP_SQD, PORT, F_PORT, 2, false },
		{ UC, SQP_SQD, SQP_SQD, AV, F_AV_DLID, 0, false },

		/* States no QP has. */
		{ RC, SQP_RTS, SQP_ERR, S, F_QP_STATE, 7, false },
		{ RC, SQP_RTS, SQP_ERR, S, F_QP_STATE, 255, false },
		/* Without STATE, qp_state is not looked at. */
		{ RC, SQP_RTS, SQP_RTS, 0, F_QP_STATE, 255, true },
	};
	struct ib_uverbs_modify_qp c;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret;

		good_cmd(&c, cases[i].cur, cases[i].next, cases[i].mask);
		set_field(&c, cases[i].f, cases[i].v);
		why = NULL;
		ret = sqp_check_modify(cases[i].type, cases[i].cur, &c, &lim,
				       &why);
		if (ret != (cases[i].ok ? 0 : EINVAL))
			fail_msg("case %zu (field %d = %#x): %d, %s", i,
				 cases[i].f, cases[i].v, ret, why ? why : "-");
		if (!cases[i].ok)
			assert_non_null(why);
	}
}

/* path_mtu is bounded by the port's active MTU. */
static void test_active_mtu(void **state)
{
	struct sqp_limits l = lim;
	struct ib_uverbs_modify_qp c;
	const char *why;

	(void)state;
	l.active_mtu = SQP_MTU_2048;
	good_cmd(&c, SQP_INIT, SQP_RTR, S | RC_RTR);
	c.path_mtu = SQP_MTU_2048;
	assert_int_equal(sqp_check_modify(RC, SQP_INIT, &c, &l, &why), 0);
	c.path_mtu = SQP_MTU_4096;
	assert_int_equal(sqp_check_modify(RC, SQP_INIT, &c, &l, &why), EINVAL);
	assert_string_equal(why, "path MTU above the active MTU");

	/* The device's bounds of the RDMA read and atomic depths. */
	l = lim;
	l.max_rd_atom = 4;
	l.max_dest_rd_atom = 2;
	good_cmd(&c, SQP_RTR, SQP_RTS, S | RC_RTS);
	c.max_rd_atomic = 4;
	assert_int_equal(sqp_check_modify(RC, SQP_RTR, &c, &l, &why), 0);
	c.max_rd_atomic = 5;
	assert_int_equal(sqp_check_modify(RC, SQP_RTR, &c, &l, &why), EINVAL);
	good_cmd(&c, SQP_INIT, SQP_RTR, S | RC_RTR);
	c.max_dest_rd_atomic = 3;
	assert_int_equal(sqp_check_modify(RC, SQP_INIT, &c, &l, &why), EINVAL);
}

static void test_bad_type_and_state(void **state)
{
	struct ib_uverbs_modify_qp c;
	const char *why;

	(void)state;
	good_cmd(&c, SQP_RESET, SQP_INIT, S | RC_INIT);
	assert_int_equal(sqp_check_modify(IB_UVERBS_QPT_RAW_PACKET, SQP_RESET,
					  &c, &lim, &why),
			 EINVAL);
	assert_int_equal(sqp_check_modify(0, SQP_RESET, &c, &lim, &why),
			 EINVAL);
	assert_int_equal(sqp_check_modify(RC, 7, &c, &lim, &why), EINVAL);
	/* why may be NULL. */
	assert_int_equal(sqp_check_modify(UD, SQP_RESET, &c, &lim, NULL),
			 EINVAL);
	assert_int_equal(sqp_check_modify(RC, SQP_RESET, &c, &lim, NULL), 0);
}

static void test_helpers(void **state)
{
	struct ib_uverbs_modify_qp c = { 0 };

	(void)state;
	assert_string_equal(sqp_state_name(SQP_RESET), "RESET");
	assert_string_equal(sqp_state_name(SQP_INIT), "INIT");
	assert_string_equal(sqp_state_name(SQP_RTR), "RTR");
	assert_string_equal(sqp_state_name(SQP_RTS), "RTS");
	assert_string_equal(sqp_state_name(SQP_SQD), "SQD");
	assert_string_equal(sqp_state_name(SQP_SQE), "SQE");
	assert_string_equal(sqp_state_name(SQP_ERR), "ERR");
	assert_string_equal(sqp_state_name(7), "?");
	assert_string_equal(sqp_state_name((enum sqp_state) - 1), "?");

	c.qp_state = SQP_ERR;
	assert_int_equal(sqp_next_state(SQP_RTS, &c), SQP_RTS);
	c.attr_mask = S;
	assert_int_equal(sqp_next_state(SQP_RTS, &c), SQP_ERR);

	assert_int_equal(sqp_mtu_bytes(SQP_MTU_256), 256);
	assert_int_equal(sqp_mtu_bytes(SQP_MTU_1024), 1024);
	assert_int_equal(sqp_mtu_bytes(SQP_MTU_4096), 4096);
	assert_int_equal(sqp_mtu_bytes(0), 0);
	assert_int_equal(sqp_mtu_bytes(6), 0);

	/* The mask bits are ibverbs' IBV_QP_* values. */
	assert_int_equal(SQP_ATTR_QKEY, 64);
	assert_int_equal(SQP_ATTR_ALT_PATH, 16384);
	assert_int_equal(SQP_ATTR_DEST_QPN, 1048576);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rc_bring_up),
		cmocka_unit_test(test_table_passes),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_extra_bits),
		cmocka_unit_test(test_no_such_transition),
		cmocka_unit_test(test_impossible),
		cmocka_unit_test(test_to_reset_and_err),
		cmocka_unit_test(test_ud_masks),
		cmocka_unit_test(test_uc_masks),
		cmocka_unit_test(test_pyverbs),
		cmocka_unit_test(test_cur_state),
		cmocka_unit_test(test_no_new_state),
		cmocka_unit_test(test_sqd_notify),
		cmocka_unit_test(test_alt_path),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_active_mtu),
		cmocka_unit_test(test_bad_type_and_state),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
