// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * CQs of the soft HFI through libibverbs: ibv_create_cq and
 * ibv_create_cq_ex with their bad input, resize, destroy; completions
 * (injected into the CQ's soft HFI ring with scq_push(), as the engine
 * will) read by ibv_poll_cq and the extended poll API; a completion event
 * through ibv_req_notify_cq, ibv_get_cq_event and ibv_ack_cq_events; an
 * overrun's async event; destroy refused while a QP uses the CQ; a forked
 * child refused.
 *
 * Run by tests/with_soft_hfi.sh, which brings up hfi1_0 and hfi1_1. The
 * provider is linked into the program (hfi1_static), which also gives it
 * the CQ's soft HFI handle.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <infiniband/verbs.h>

#include "cq.h"
#include "sverbs.h"

struct fixture {
	struct ibv_context *ctx;
};

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	assert_non_null(list);
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	return ctx;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->ctx = open_dev("hfi1_0");
	if (!f->ctx)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (ibv_close_device(f->ctx))
		return -1;
	free(f);
	return 0;
}

static struct softhfi_cq *soft_cq(struct ibv_cq *cq)
{
	return to_hfi1_cq(cq)->be.handle;
}

/* A receive with immediate data, as the engine will complete one. */
static bool push(struct ibv_cq *cq, uint64_t wr_id, bool solicited)
{
	struct ib_uverbs_wc wc = {
		.wr_id = wr_id,
		.status = IBV_WC_SUCCESS,
		.opcode = IBV_WC_RECV,
		.byte_len = 64 + (uint32_t)wr_id,
		.ex.imm_data = htobe32(0x1000 + (uint32_t)wr_id),
		.qp_num = 17,
		.src_qp = 33,
		.wc_flags = 2, /* the kernel's IB_WC_WITH_IMM */
		.slid = 2,
		.sl = 3,
		.dlid_path_bits = 1,
	};

	return scq_push(soft_cq(cq), &wc, solicited);
}

static void check_wc(const struct ibv_wc *wc, uint64_t wr_id)
{
	assert_int_equal(wc->wr_id, wr_id);
	assert_int_equal(wc->status, IBV_WC_SUCCESS);
	assert_int_equal(wc->opcode, IBV_WC_RECV);
	assert_int_equal(wc->byte_len, 64 + wr_id);
	assert_int_equal(be32toh(wc->imm_data), 0x1000 + wr_id);
	assert_int_equal(wc->qp_num, 17);
	assert_int_equal(wc->src_qp, 33);
	assert_int_equal(wc->wc_flags, IBV_WC_WITH_IMM);
	assert_int_equal(wc->slid, 2);
	assert_int_equal(wc->sl, 3);
	assert_int_equal(wc->dlid_path_bits, 1);
}

static void test_create_destroy(void **state)
{
	struct fixture *f = *state;
	struct ibv_cq *cq;
	int i;

	for (i = 0; i < 100; i++) {
		cq = ibv_create_cq(f->ctx, 1 + i * 100, NULL, NULL, 0);
		assert_non_null(cq);
		assert_true(cq->cqe >= 1 + i * 100);
		assert_ptr_equal(cq->context, f->ctx);
		assert_int_equal(ibv_destroy_cq(cq), 0);
	}
	cq = ibv_create_cq(f->ctx, HFI1_MAX_CQE, NULL, NULL, 0);
	assert_non_null(cq);
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct ibv_context *other = open_dev("hfi1_1");
	struct ibv_comp_channel *ch;

	assert_non_null(other);
	errno = 0;
	assert_null(ibv_create_cq(f->ctx, 0, NULL, NULL, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(ibv_create_cq(f->ctx, -1, NULL, NULL, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(ibv_create_cq(f->ctx, HFI1_MAX_CQE + 1, NULL, NULL, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(ibv_create_cq(f->ctx, 4, NULL, NULL, 1));
	assert_int_equal(errno, EINVAL);
	assert_null(ibv_create_cq(f->ctx, 4, NULL, NULL, -1));
	assert_int_equal(errno, EINVAL);
	/* Another context's channel. */
	ch = ibv_create_comp_channel(other);
	assert_non_null(ch);
	assert_null(ibv_create_cq(f->ctx, 4, NULL, ch, 0));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	assert_int_equal(ibv_close_device(other), 0);
}

static void test_create_cq_ex(void **state)
{
	struct fixture *f = *state;
	struct ibv_cq_init_attr_ex attr = {
		.cqe = 16,
		.wc_flags = IBV_WC_STANDARD_FLAGS,
	};
	struct ibv_comp_channel *ch;
	struct ibv_cq_ex *cq;
	int cookie;

	cq = ibv_create_cq_ex(f->ctx, &attr);
	assert_non_null(cq);
	assert_true(cq->cqe >= 16);
	assert_ptr_equal(cq->context, f->ctx);
	assert_int_equal(ibv_destroy_cq(ibv_cq_ex_to_cq(cq)), 0);

	/* The channel is referenced once, and free again after. */
	ch = ibv_create_comp_channel(f->ctx);
	assert_non_null(ch);
	attr.channel = ch;
	attr.cq_context = &cookie;
	cq = ibv_create_cq_ex(f->ctx, &attr);
	assert_non_null(cq);
	assert_ptr_equal(cq->channel, ch);
	assert_ptr_equal(cq->cq_context, &cookie);
	assert_int_equal(ibv_destroy_comp_channel(ch), EBUSY);
	assert_int_equal(ibv_destroy_cq(ibv_cq_ex_to_cq(cq)), 0);
	assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	attr.channel = NULL;

	attr.comp_mask = IBV_CQ_INIT_ATTR_MASK_FLAGS;
	attr.flags = IBV_CREATE_CQ_ATTR_SINGLE_THREADED;
	cq = ibv_create_cq_ex(f->ctx, &attr);
	assert_non_null(cq);
	assert_int_equal(ibv_destroy_cq(ibv_cq_ex_to_cq(cq)), 0);

	errno = 0;
	attr.flags = IBV_CREATE_CQ_ATTR_IGNORE_OVERRUN;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EOPNOTSUPP);
	attr.flags = 1 << 7;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EINVAL);
	attr.flags = 0;
	attr.wc_flags |= IBV_WC_EX_WITH_COMPLETION_TIMESTAMP;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EOPNOTSUPP);
	attr.wc_flags = IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EOPNOTSUPP);
	/* libibverbs' answer to flags it does not know. */
	attr.wc_flags = 1ULL << 40;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EOPNOTSUPP);
	attr.wc_flags = 0;
	attr.comp_mask = 1 << 5;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EINVAL);
	attr.comp_mask = 0;
	attr.cqe = 0;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EINVAL);
	attr.cqe = 4;
	attr.comp_vector = 1;
	assert_null(ibv_create_cq_ex(f->ctx, &attr));
	assert_int_equal(errno, EINVAL);
}

static void test_poll(void **state)
{
	struct fixture *f = *state;
	struct ibv_wc wc[4];
	struct ibv_cq *cq;
	int i, n;

	cq = ibv_create_cq(f->ctx, 8, NULL, NULL, 0);
	assert_non_null(cq);
	assert_int_equal(ibv_poll_cq(cq, 4, wc), 0);
	for (i = 0; i < 6; i++)
		assert_true(push(cq, i, false));
	n = ibv_poll_cq(cq, 4, wc);
	assert_int_equal(n, 4);
	for (i = 0; i < 4; i++)
		check_wc(&wc[i], i);
	assert_int_equal(ibv_poll_cq(cq, 4, wc), 2);
	check_wc(&wc[0], 4);
	check_wc(&wc[1], 5);
	assert_int_equal(ibv_poll_cq(cq, 4, wc), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

static void test_poll_ex(void **state)
{
	struct fixture *f = *state;
	struct ibv_cq_init_attr_ex attr = {
		.cqe = 8,
		.wc_flags = IBV_WC_STANDARD_FLAGS,
	};
	struct ibv_poll_cq_attr pattr = {};
	struct ibv_cq_ex *cq;
	uint64_t i = 0;
	int ret;

	cq = ibv_create_cq_ex(f->ctx, &attr);
	assert_non_null(cq);
	assert_int_equal(ibv_start_poll(cq, &pattr), ENOENT);
	for (i = 0; i < 3; i++)
		assert_true(push(ibv_cq_ex_to_cq(cq), i, false));
	i = 0;
	for (ret = ibv_start_poll(cq, &pattr); !ret; ret = ibv_next_poll(cq)) {
		assert_int_equal(cq->wr_id, i);
		assert_int_equal(cq->status, IBV_WC_SUCCESS);
		assert_int_equal(ibv_wc_read_opcode(cq), IBV_WC_RECV);
		assert_int_equal(ibv_wc_read_vendor_err(cq), 0);
		assert_int_equal(ibv_wc_read_byte_len(cq), 64 + i);
		assert_int_equal(be32toh(ibv_wc_read_imm_data(cq)), 0x1000 + i);
		assert_int_equal(ibv_wc_read_qp_num(cq), 17);
		assert_int_equal(ibv_wc_read_src_qp(cq), 33);
		assert_int_equal(ibv_wc_read_wc_flags(cq), IBV_WC_WITH_IMM);
		assert_int_equal(ibv_wc_read_slid(cq), 2);
		assert_int_equal(ibv_wc_read_sl(cq), 3);
		assert_int_equal(ibv_wc_read_dlid_path_bits(cq), 1);
		i++;
	}
	assert_int_equal(ret, ENOENT);
	/* Asked again after ENOENT: still nothing, and nothing consumed. */
	assert_int_equal(ibv_next_poll(cq), ENOENT);
	assert_true(push(ibv_cq_ex_to_cq(cq), 3, false));
	assert_int_equal(ibv_next_poll(cq), 0);
	assert_int_equal(cq->wr_id, 3);
	i++;
	assert_int_equal(ibv_next_poll(cq), ENOENT);
	ibv_end_poll(cq);
	assert_int_equal(i, 4);
	/* All were consumed, and the ring is reused after. */
	assert_int_equal(ibv_start_poll(cq, &pattr), ENOENT);
	assert_true(push(ibv_cq_ex_to_cq(cq), 7, false));
	assert_int_equal(ibv_start_poll(cq, &pattr), 0);
	assert_int_equal(cq->wr_id, 7);
	ibv_end_poll(cq);
	assert_int_equal(ibv_start_poll(cq, &pattr), ENOENT);
	pattr.comp_mask = 1;
	assert_int_equal(ibv_start_poll(cq, &pattr), EINVAL);
	assert_int_equal(ibv_destroy_cq(ibv_cq_ex_to_cq(cq)), 0);
}

static void test_resize(void **state)
{
	struct fixture *f = *state;
	struct ibv_wc wc[8];
	struct ibv_cq *cq;
	int i;

	cq = ibv_create_cq(f->ctx, 4, NULL, NULL, 0);
	assert_non_null(cq);
	for (i = 0; i < 3; i++)
		assert_true(push(cq, i, false));
	assert_int_equal(ibv_resize_cq(cq, 2), EINVAL);
	assert_int_equal(ibv_resize_cq(cq, 0), EINVAL);
	assert_int_equal(ibv_resize_cq(cq, HFI1_MAX_CQE + 1), EINVAL);
	assert_int_equal(ibv_resize_cq(cq, 100), 0);
	assert_true(cq->cqe >= 100);
	for (i = 3; i < 8; i++)
		assert_true(push(cq, i, false));
	assert_int_equal(ibv_poll_cq(cq, 8, wc), 8);
	for (i = 0; i < 8; i++)
		check_wc(&wc[i], i);
	assert_int_equal(ibv_resize_cq(cq, 3), 0);
	assert_int_equal(cq->cqe, 3);
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

static bool readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 2000) == 1;
}

static void test_notify(void **state)
{
	struct fixture *f = *state;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq, *ev_cq;
	struct ibv_wc wc;
	void *ev_ctx;
	int cookie;

	ch = ibv_create_comp_channel(f->ctx);
	assert_non_null(ch);
	cq = ibv_create_cq(f->ctx, 16, &cookie, ch, 0);
	assert_non_null(cq);

	/* Not armed: nothing on the channel. */
	assert_true(push(cq, 1, false));
	assert_false(
		poll(&(struct pollfd){ .fd = ch->fd, .events = POLLIN }, 1, 0));
	assert_int_equal(ibv_req_notify_cq(cq, 0), 0);
	assert_true(push(cq, 2, false));
	assert_true(readable(ch->fd));
	assert_int_equal(ibv_get_cq_event(ch, &ev_cq, &ev_ctx), 0);
	assert_ptr_equal(ev_cq, cq);
	assert_ptr_equal(ev_ctx, &cookie);
	ibv_ack_cq_events(cq, 1);
	assert_int_equal(ibv_poll_cq(cq, 1, &wc), 1);
	assert_int_equal(wc.wr_id, 1);
	assert_int_equal(ibv_poll_cq(cq, 1, &wc), 1);
	assert_int_equal(wc.wr_id, 2);

	/* Solicited only. */
	assert_int_equal(ibv_req_notify_cq(cq, 1), 0);
	assert_true(push(cq, 3, false));
	assert_false(
		poll(&(struct pollfd){ .fd = ch->fd, .events = POLLIN }, 1, 0));
	assert_true(push(cq, 4, true));
	assert_true(readable(ch->fd));
	assert_int_equal(ibv_get_cq_event(ch, &ev_cq, &ev_ctx), 0);
	assert_ptr_equal(ev_cq, cq);
	ibv_ack_cq_events(cq, 1);

	/* The channel cannot go while a CQ uses it. */
	assert_int_equal(ibv_destroy_comp_channel(ch), EBUSY);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	assert_int_equal(ibv_destroy_comp_channel(ch), 0);
}

/* A channel the application closed before its CQ: events are lost. */
static void test_channel_gone(void **state)
{
	struct fixture *f = *state;
	struct ibv_comp_channel *ch, *ch2;
	struct ibv_cq *cq, *cq2, *ev_cq;
	void *ev_ctx;

	ch = ibv_create_comp_channel(f->ctx);
	assert_non_null(ch);
	cq = ibv_create_cq(f->ctx, 16, NULL, ch, 0);
	assert_non_null(cq);
	/* Behind libibverbs' back, as a crashing thread might. */
	close(ch->fd);
	ch2 = ibv_create_comp_channel(f->ctx);
	assert_non_null(ch2);
	cq2 = ibv_create_cq(f->ctx, 16, NULL, ch2, 0);
	assert_non_null(cq2);
	assert_int_equal(ibv_req_notify_cq(cq, 0), 0);
	assert_true(push(cq, 1, false)); /* no SIGPIPE */
	assert_int_equal(ibv_req_notify_cq(cq2, 0), 0);
	assert_true(push(cq2, 1, false));
	assert_true(readable(ch2->fd));
	assert_int_equal(ibv_get_cq_event(ch2, &ev_cq, &ev_ctx), 0);
	assert_ptr_equal(ev_cq, cq2);
	ibv_ack_cq_events(cq2, 1);
	assert_int_equal(ibv_destroy_cq(cq2), 0);
	assert_int_equal(ibv_destroy_comp_channel(ch2), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	/* Its fd is closed already: libibverbs' close fails, harmlessly. */
	ibv_destroy_comp_channel(ch);
}

static void test_overrun(void **state)
{
	struct fixture *f = *state;
	struct ibv_async_event ev;
	struct ibv_cq *cq;
	int i;

	cq = ibv_create_cq(f->ctx, 2, NULL, NULL, 0);
	assert_non_null(cq);
	for (i = 0; i < cq->cqe; i++)
		assert_true(push(cq, i, false));
	assert_false(push(cq, 99, false));
	assert_false(push(cq, 100, false));
	assert_true(readable(f->ctx->async_fd));
	assert_int_equal(ibv_get_async_event(f->ctx, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_CQ_ERR);
	assert_ptr_equal(ev.element.cq, cq);
	ibv_ack_async_event(&ev);
	/* Once. */
	assert_false(poll(
		&(struct pollfd){ .fd = f->ctx->async_fd, .events = POLLIN }, 1,
		100));
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

static void test_destroy_busy(void **state)
{
	struct fixture *f = *state;
	struct ibv_cq *cq;

	cq = ibv_create_cq(f->ctx, 2, NULL, NULL, 0);
	assert_non_null(cq);
	scq_get(soft_cq(cq));
	assert_int_equal(ibv_destroy_cq(cq), EBUSY);
	scq_put(soft_cq(cq));
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

/* A forked child can do nothing with its parent's CQs: EIO. */
static void test_fork(void **state)
{
	struct fixture *f = *state;
	struct ibv_wc wc;
	struct ibv_cq *cq;
	int status;
	pid_t pid;

	cq = ibv_create_cq(f->ctx, 4, NULL, NULL, 0);
	assert_non_null(cq);
	assert_true(push(cq, 1, false));
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		bool ok = !ibv_create_cq(f->ctx, 4, NULL, NULL, 0) &&
			  errno == EIO && ibv_poll_cq(cq, 1, &wc) < 0 &&
			  ibv_req_notify_cq(cq, 0) == EIO &&
			  ibv_resize_cq(cq, 8) == EIO &&
			  ibv_destroy_cq(cq) == EIO;

		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent's CQ is whole. */
	assert_int_equal(ibv_poll_cq(cq, 1, &wc), 1);
	assert_int_equal(wc.wr_id, 1);
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_destroy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_cq_ex, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_ex, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_gone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_busy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
