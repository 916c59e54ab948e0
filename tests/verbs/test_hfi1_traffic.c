// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Traffic over the soft HFI, through the shared provider as an application
 * loads it: RC, UC and UD between hfi1_0 and hfi1_1 (two "hosts") and in
 * loopback on hfi1_0, every opcode, and the error cases an HCA has (bad
 * rkey, bad lkey, RNR, flush, a lost peer). Data is checked byte for byte.
 *
 * Run by tests/with_soft_hfi.sh, which brings up hfi1_0 and hfi1_1.
 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <infiniband/verbs.h>

#define BUF_SIZE (4 << 20)
#define CQE 256

struct side {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	char *buf;
	struct ibv_mr *mr;
	uint16_t lid;
};

struct pair {
	struct side a, b;
	enum ibv_qp_type type;
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

/* @ch: the completion channel of the side's CQ, or NULL. */
/* Work requests each queue of a new QP takes. */
static uint32_t qp_depth = 64;

static void side_init_ch(struct side *s, struct ibv_context *ctx,
			 enum ibv_qp_type type, struct ibv_comp_channel *ch)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = type,
		.cap = { .max_send_wr = qp_depth,
			 .max_recv_wr = qp_depth,
			 .max_send_sge = 4,
			 .max_recv_sge = 4,
			 .max_inline_data = 64 },
	};
	struct ibv_port_attr pa;

	s->ctx = ctx;
	assert_int_equal(ibv_query_port(ctx, 1, &pa), 0);
	s->lid = pa.lid;
	s->pd = ibv_alloc_pd(ctx);
	assert_non_null(s->pd);
	s->cq = ibv_create_cq(ctx, CQE, NULL, ch, 0);
	assert_non_null(s->cq);
	ia.send_cq = ia.recv_cq = s->cq;
	s->qp = ibv_create_qp(s->pd, &ia);
	assert_non_null(s->qp);
	s->buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(s->buf != MAP_FAILED);
	memset(s->buf, 0, BUF_SIZE);
	s->mr = ibv_reg_mr(s->pd, s->buf, BUF_SIZE,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC);
	assert_non_null(s->mr);
}

static void side_init(struct side *s, struct ibv_context *ctx,
		      enum ibv_qp_type type)
{
	side_init_ch(s, ctx, type, NULL);
}

static void side_fini(struct side *s, bool close_ctx)
{
	if (s->qp)
		assert_int_equal(ibv_destroy_qp(s->qp), 0);
	assert_int_equal(ibv_dereg_mr(s->mr), 0);
	assert_int_equal(ibv_destroy_cq(s->cq), 0);
	assert_int_equal(ibv_dealloc_pd(s->pd), 0);
	munmap(s->buf, BUF_SIZE);
	if (close_ctx)
		assert_int_equal(ibv_close_device(s->ctx), 0);
}

/* The RC answer timeout of the QPs to_rts() brings up: 4.096 us * 2^n. */
static uint8_t rc_timeout = 10;

/* @s's QP to RTS, connected to QP @dest_qpn at LID @dlid (RC, UC). */
static int to_rts_to(struct side *s, uint32_t dest_qpn, uint16_t dlid,
		     uint8_t rnr_retry, uint8_t retry_cnt)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
		.qkey = 0x11111111,
	};
	enum ibv_qp_type t = s->qp->qp_type;
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
	int ret;

	mask |= t == IBV_QPT_UD ? IBV_QP_QKEY : IBV_QP_ACCESS_FLAGS;
	if (t == IBV_QPT_UC)
		a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	ret = ibv_modify_qp(s->qp, &a, mask);
	if (ret)
		return ret;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	mask = IBV_QP_STATE;
	if (t != IBV_QPT_UD) {
		a.path_mtu = IBV_MTU_4096;
		a.dest_qp_num = dest_qpn;
		a.ah_attr.dlid = dlid;
		a.ah_attr.port_num = 1;
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN;
		if (t == IBV_QPT_RC) {
			a.max_dest_rd_atomic = 4;
			a.min_rnr_timer = 1;
			mask |= IBV_QP_MAX_DEST_RD_ATOMIC |
				IBV_QP_MIN_RNR_TIMER;
		}
	}
	ret = ibv_modify_qp(s->qp, &a, mask);
	if (ret)
		return ret;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (t == IBV_QPT_RC) {
		a.timeout = rc_timeout;
		a.retry_cnt = retry_cnt;
		a.rnr_retry = rnr_retry;
		a.max_rd_atomic = 4;
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	}
	return ibv_modify_qp(s->qp, &a, mask);
}

static int to_rts(struct side *s, const struct side *peer, uint8_t rnr_retry,
		  uint8_t retry_cnt)
{
	return to_rts_to(s, peer->qp->qp_num, peer->lid, rnr_retry, retry_cnt);
}

/* @two: hfi1_0 <-> hfi1_1; else both ends on hfi1_0 (loopback). */
static void pair_init(struct pair *p, enum ibv_qp_type type, bool two)
{
	struct ibv_context *c0 = open_dev("hfi1_0");
	struct ibv_context *c1 = two ? open_dev("hfi1_1") : c0;

	assert_non_null(c0);
	assert_non_null(c1);
	p->type = type;
	side_init(&p->a, c0, type);
	side_init(&p->b, c1, type);
	assert_int_equal(to_rts(&p->a, &p->b, 7, 7), 0);
	assert_int_equal(to_rts(&p->b, &p->a, 7, 7), 0);
}

static void pair_fini(struct pair *p)
{
	bool two = p->a.ctx != p->b.ctx;

	side_fini(&p->b, two);
	side_fini(&p->a, true);
}

/* The next completion on @cq within 5 s, @pause_us between empty polls. */
static void poll_paced(struct ibv_cq *cq, struct ibv_wc *wc,
		       unsigned int pause_us)
{
	time_t end = time(NULL) + 5;
	int n;

	do {
		n = ibv_poll_cq(cq, 1, wc);
		assert_true(n >= 0);
		if (n)
			return;
		if (pause_us)
			usleep(pause_us);
	} while (time(NULL) < end);
	fail_msg("no completion within 5 s");
}

static void poll_one(struct ibv_cq *cq, struct ibv_wc *wc)
{
	poll_paced(cq, wc, 100);
}

/* As a busy poller: no pause between empty polls. */
static void poll_busy(struct ibv_cq *cq, struct ibv_wc *wc)
{
	poll_paced(cq, wc, 0);
}

static void post_recv(struct side *s, uint64_t off, uint32_t len, uint64_t id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)s->buf + off,
		.length = len,
		.lkey = s->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = id, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	assert_int_equal(ibv_post_recv(s->qp, &wr, &bad), 0);
}

static int post_send(struct side *s, enum ibv_wr_opcode op, uint64_t off,
		     uint32_t len, uint64_t raddr, uint32_t rkey, uint64_t id,
		     int flags)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)s->buf + off,
		.length = len,
		.lkey = s->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = id,
		.sg_list = &sge,
		.num_sge = len ? 1 : 0,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED | flags,
		.imm_data = htonl(0x1234),
	};
	struct ibv_send_wr *bad;

	if (op == IBV_WR_ATOMIC_CMP_AND_SWP ||
	    op == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		wr.wr.atomic.remote_addr = raddr;
		wr.wr.atomic.rkey = rkey;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	return ibv_post_send(s->qp, &wr, &bad);
}

static void fill(char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)(i * 7 + seed);
}

static void do_send(enum ibv_qp_type type, bool two)
{
	struct pair p;
	struct ibv_wc wc;

	pair_init(&p, type, two);
	fill(p.a.buf, 1 << 20, 3);
	post_recv(&p.b, 0, 1 << 20, 42);
	assert_int_equal(
		post_send(&p.a, IBV_WR_SEND_WITH_IMM, 0, 1 << 20, 0, 0, 7, 0),
		0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_SEND);
	assert_int_equal(wc.wr_id, 7);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RECV);
	assert_int_equal(wc.wr_id, 42);
	assert_int_equal(wc.byte_len, 1 << 20);
	assert_true(wc.wc_flags & IBV_WC_WITH_IMM);
	assert_int_equal(ntohl(wc.imm_data), 0x1234);
	assert_int_equal(wc.qp_num, p.b.qp->qp_num);
	assert_memory_equal(p.a.buf, p.b.buf, 1 << 20);

	/* Inline. */
	fill(p.a.buf, 48, 9);
	post_recv(&p.b, 4096, 64, 43);
	assert_int_equal(
		post_send(&p.a, IBV_WR_SEND, 0, 48, 0, 0, 8, IBV_SEND_INLINE),
		0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.byte_len, 48);
	assert_memory_equal(p.a.buf, p.b.buf + 4096, 48);
	pair_fini(&p);
}

static void test_rc_send(void **state)
{
	do_send(IBV_QPT_RC, true);
}

static void test_rc_send_loopback(void **state)
{
	do_send(IBV_QPT_RC, false);
}

/*
 * Blocking ends: each side sleeps on its completion channel between
 * completions, in a thread of its own, the way a peer gives it its events
 * (one CQ a QP, one link a CQ). A and B ping-pong inline SENDs; every
 * 25th round A also RDMA-writes B's memory and reads it back while B
 * sleeps, which completes nothing on B but must be answered.
 */
#define BLOCK_ROUNDS 300

struct blocker {
	struct side *me, *peer;
	struct ibv_comp_channel *ch;
	bool first;
	const char *error;
	uint32_t round;
	struct ibv_wc early_recv; /* taken while waiting for a READ */
	bool has_early_recv;
};

/* The next completion of opcode @want, sleeping on the channel. */
static const char *wait_wc_event(struct blocker *b, enum ibv_wc_opcode want,
				 struct ibv_wc *out)
{
	struct side *s = b->me;
	struct ibv_cq *cq;
	struct ibv_wc wc;
	bool armed = false;
	void *ctx;
	int n;

	if (want == IBV_WC_RECV && b->has_early_recv) {
		b->has_early_recv = false;
		*out = b->early_recv;
		return NULL;
	}
	for (;;) {
		n = ibv_poll_cq(s->cq, 1, &wc);
		if (n < 0)
			return "ibv_poll_cq";
		if (n) {
			if (wc.status != IBV_WC_SUCCESS)
				return ibv_wc_status_str(wc.status);
			if (wc.opcode == want) {
				*out = wc;
				return NULL;
			}
			if (wc.opcode == IBV_WC_RECV) {
				b->early_recv = wc;
				b->has_early_recv = true;
			}
			continue;
		}
		if (!armed) {
			if (ibv_req_notify_cq(s->cq, 0))
				return "ibv_req_notify_cq";
			armed = true;
			continue; /* look once more, armed */
		}
		if (ibv_get_cq_event(b->ch, &cq, &ctx))
			return "ibv_get_cq_event";
		ibv_ack_cq_events(cq, 1);
		armed = false;
	}
}

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;
	struct side *s = b->me;
	uint64_t got, i;
	struct ibv_wc wc;

	for (i = 0; i < 16; i++)
		post_recv(s, 64 * i, 64, i);
	for (b->round = 0; b->round < BLOCK_ROUNDS; b->round++) {
		uint64_t r = b->round;

		if (b->first) {
			memcpy(s->buf + 4096, &r, 8);
			if (post_send(s, IBV_WR_SEND, 4096, 8, 0, 0, r,
				      IBV_SEND_INLINE))
				return b->error = "ibv_post_send", NULL;
			if (r % 25 == 0) {
				fill(s->buf + 8192, 4096, r);
				memset(s->buf + 16384, 0, 4096);
				if (post_send(s, IBV_WR_RDMA_WRITE, 8192, 4096,
					      (uintptr_t)b->peer->buf + 8192,
					      b->peer->mr->rkey, r, 0) ||
				    post_send(s, IBV_WR_RDMA_READ, 16384, 4096,
					      (uintptr_t)b->peer->buf + 8192,
					      b->peer->mr->rkey, r, 0))
					return b->error = "ibv_post_send", NULL;
				b->error =
					wait_wc_event(b, IBV_WC_RDMA_READ, &wc);
				if (b->error)
					return NULL;
				if (memcmp(s->buf + 8192, s->buf + 16384, 4096))
					return b->error = "READ after WRITE",
					       NULL;
			}
		}
		b->error = wait_wc_event(b, IBV_WC_RECV, &wc);
		if (b->error)
			return NULL;
		memcpy(&got, s->buf + 64 * wc.wr_id, 8);
		if (got != r)
			return b->error = "a message out of turn", NULL;
		post_recv(s, 64 * wc.wr_id, 64, wc.wr_id);
		if (!b->first) {
			memcpy(s->buf + 4096, &r, 8);
			if (post_send(s, IBV_WR_SEND, 4096, 8, 0, 0, r,
				      IBV_SEND_INLINE))
				return b->error = "ibv_post_send", NULL;
		}
	}
	return NULL;
}

static void do_blocking(bool two)
{
	struct ibv_context *c0 = open_dev("hfi1_0");
	struct ibv_context *c1 = two ? open_dev("hfi1_1") : c0;
	struct ibv_comp_channel *ch0, *ch1;
	struct blocker b[2] = {};
	struct timespec end;
	pthread_t t[2];
	struct pair p;
	int i;

	assert_non_null(c0);
	assert_non_null(c1);
	ch0 = ibv_create_comp_channel(c0);
	ch1 = ibv_create_comp_channel(c1);
	assert_non_null(ch0);
	assert_non_null(ch1);
	p.type = IBV_QPT_RC;
	side_init_ch(&p.a, c0, IBV_QPT_RC, ch0);
	side_init_ch(&p.b, c1, IBV_QPT_RC, ch1);
	assert_int_equal(to_rts(&p.a, &p.b, 7, 7), 0);
	assert_int_equal(to_rts(&p.b, &p.a, 7, 7), 0);
	b[0] = (struct blocker){
		.me = &p.a, .peer = &p.b, .ch = ch0, .first = true
	};
	b[1] = (struct blocker){ .me = &p.b, .peer = &p.a, .ch = ch1 };
	for (i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&t[i], NULL, blocker_main, &b[i]), 0);
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 60;
	for (i = 0; i < 2; i++)
		if (pthread_timedjoin_np(t[i], NULL, &end))
			fail_msg("side %d stuck in round %u", i, b[i].round);
	for (i = 0; i < 2; i++)
		if (b[i].error)
			fail_msg("side %d, round %u: %s", i, b[i].round,
				 b[i].error);
	side_fini(&p.b, false);
	side_fini(&p.a, false);
	/* The channels before their contexts. */
	assert_int_equal(ibv_destroy_comp_channel(ch1), 0);
	assert_int_equal(ibv_destroy_comp_channel(ch0), 0);
	if (two)
		assert_int_equal(ibv_close_device(c1), 0);
	assert_int_equal(ibv_close_device(c0), 0);
}

static void test_rc_blocking(void **state)
{
	do_blocking(true);
}

static void test_rc_blocking_loopback(void **state)
{
	do_blocking(false);
}

/*
 * Small payloads go on the link's lane, their headers in the doorbell
 * only; larger ones, and small ones when the doorbell's ring or the lane's
 * pipe is full, on the stream. Bursts of messages of sizes on both sides
 * of the lane's limit (4096), more than the ring holds, SENDs and RDMA
 * WRITEs with immediate: every one arrives whole, in order, where it was
 * sent.
 */
#define LANE_BURST 200
#define LANE_SLOT 16384

static void do_lane_mixed(enum ibv_qp_type type, bool two)
{
	static const uint32_t sizes[] = { 1, 8, 100, 4095, 4096, 4097, 12000 };
	struct ibv_wc wc;
	struct pair p;
	int round, i, got;

	/*
	 * A burst answered later than the timeout is sent again whole, and
	 * again: 67 ms, not 4, for slow runs (sanitizers, strace).
	 */
	rc_timeout = 14;
	qp_depth = LANE_BURST;
	pair_init(&p, type, two);
	qp_depth = 64;
	rc_timeout = 10;
	for (round = 0; round < 3; round++) {
		for (i = 0; i < LANE_BURST; i++) {
			uint32_t len = sizes[(i + round) % 7];
			uint64_t off = (uint64_t)i * LANE_SLOT;
			bool write = i % 5 == 4;

			fill(p.a.buf + off, len, i + round);
			post_recv(&p.b, off, LANE_SLOT, i);
			assert_int_equal(
				post_send(&p.a,
					  write ? IBV_WR_RDMA_WRITE_WITH_IMM :
						  IBV_WR_SEND,
					  off, len, (uintptr_t)p.b.buf + off,
					  p.b.mr->rkey, i, 0),
				0);
		}
		for (got = 0; got < LANE_BURST; got++) {
			uint32_t len = sizes[(got + round) % 7];
			uint64_t off = (uint64_t)got * LANE_SLOT;

			poll_one(p.b.cq, &wc);
			assert_int_equal(wc.status, IBV_WC_SUCCESS);
			assert_int_equal(wc.wr_id, got);
			assert_int_equal(wc.byte_len, len);
			assert_int_equal(wc.opcode,
					 got % 5 == 4 ?
						 IBV_WC_RECV_RDMA_WITH_IMM :
						 IBV_WC_RECV);
			assert_memory_equal(p.a.buf + off, p.b.buf + off, len);
		}
		for (got = 0; got < LANE_BURST; got++) {
			poll_one(p.a.cq, &wc);
			assert_int_equal(wc.status, IBV_WC_SUCCESS);
			assert_int_equal(wc.wr_id, got);
		}
	}
	pair_fini(&p);
}

static void test_rc_lane(void **state)
{
	do_lane_mixed(IBV_QPT_RC, true);
	do_lane_mixed(IBV_QPT_RC, false);
}

static void test_uc_lane(void **state)
{
	do_lane_mixed(IBV_QPT_UC, true);
	do_lane_mixed(IBV_QPT_UC, false);
}

/*
 * Bursts of RDMA WRITEs, then READs back, of 4 KiB to 1 MiB at offsets
 * that are not page-aligned, more than a link's socket buffer holds, with
 * the requester polling without a pause and with pauses between empty
 * polls: every byte lands where it should, and nowhere else.
 */
#define BULK_SPAN (3 << 20)

/*
 * @op (RDMA WRITE or READ) over [7, BULK_SPAN - 9) of @p's buffers, in
 * messages of the sizes below from the @shift'th on, and every one
 * completed in order.
 */
static void bulk_burst(struct pair *p, enum ibv_wr_opcode op,
		       unsigned int shift,
		       void (*poll)(struct ibv_cq *, struct ibv_wc *))
{
	static const uint32_t sizes[] = { 4097, 65537, 262147, 1048583 };
	uint64_t off, end = BULK_SPAN - 9;
	struct ibv_wc wc;
	int i, n;

	for (n = 0, off = 7; off < end; n++) {
		uint32_t len = sizes[(n + shift) % 4];

		if (len > end - off)
			len = end - off;
		assert_int_equal(post_send(&p->a, op, off, len,
					   (uintptr_t)p->b.buf + off,
					   p->b.mr->rkey, n, 0),
				 0);
		off += len;
	}
	for (i = 0; i < n; i++) {
		poll(p->a.cq, &wc);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		assert_int_equal(wc.wr_id, i);
	}
}

static void do_rc_bulk(bool two, bool busy)
{
	void (*poll)(struct ibv_cq *, struct ibv_wc *) =
		busy ? poll_busy : poll_one;
	char *want = malloc(BULK_SPAN);
	struct pair p;
	int round;

	assert_non_null(want);
	rc_timeout = 14; /* 67 ms: a slow run is not sent again whole */
	pair_init(&p, IBV_QPT_RC, two);
	rc_timeout = 10;
	for (round = 0; round < 2; round++) {
		fill(p.a.buf, BULK_SPAN, round);
		memcpy(want, p.a.buf, BULK_SPAN);
		memset(p.b.buf, 0, BUF_SIZE);
		/* From byte 7 to 9 short of the span: the rest stays 0. */
		memset(want, 0, 7);
		memset(want + BULK_SPAN - 9, 0, 9);
		bulk_burst(&p, IBV_WR_RDMA_WRITE, round, poll);
		assert_memory_equal(p.b.buf, want, BULK_SPAN);
		assert_true(!memcmp(p.b.buf + BULK_SPAN,
				    p.b.buf + BULK_SPAN + 1,
				    BUF_SIZE - BULK_SPAN - 1) &&
			    !p.b.buf[BULK_SPAN]);
		/* And back, from the responder's MR. */
		memset(p.a.buf, 0, BUF_SIZE);
		bulk_burst(&p, IBV_WR_RDMA_READ, round + 1, poll);
		assert_memory_equal(p.a.buf, want, BULK_SPAN);
	}
	pair_fini(&p);
	free(want);
}

static void test_rc_bulk_bursts(void **state)
{
	do_rc_bulk(true, true);
	do_rc_bulk(true, false);
	do_rc_bulk(false, true);
	do_rc_bulk(false, false);
}

/*
 * UC completes a send as it leaves, and the application may write its
 * buffer at once: what left must have been copied. A burst of sends from
 * one buffer, refilled as each completes: every one arrives as it was
 * sent.
 */
#define UC_REUSE_LEN 12000

static void test_uc_send_buffer_reuse(void **state)
{
	char *want = malloc(UC_REUSE_LEN);
	struct ibv_wc wc;
	struct pair p;
	int i;

	assert_non_null(want);
	pair_init(&p, IBV_QPT_UC, true);
	for (i = 0; i < 64; i++)
		post_recv(&p.b, (uint64_t)(i + 1) * LANE_SLOT, LANE_SLOT, i);
	for (i = 0; i < 64; i++) {
		fill(p.a.buf, UC_REUSE_LEN, i);
		assert_int_equal(post_send(&p.a, IBV_WR_SEND, 0, UC_REUSE_LEN,
					   0, 0, i, 0),
				 0);
		poll_busy(p.a.cq, &wc);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
	}
	fill(p.a.buf, UC_REUSE_LEN, 64);
	for (i = 0; i < 64; i++) {
		poll_one(p.b.cq, &wc);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		assert_int_equal(wc.wr_id, i);
		fill(want, UC_REUSE_LEN, i);
		assert_memory_equal(p.b.buf + (uint64_t)(i + 1) * LANE_SLOT,
				    want, UC_REUSE_LEN);
	}
	pair_fini(&p);
	free(want);
}

/*
 * A responder that stops (its process stopped) while a burst of RDMA
 * WRITEs, READs and atomics fills the link: the requester's answer
 * timeout goes back to the oldest, which it cannot send again while the
 * link is full, so the answers to the first copies find nothing in flight
 * and are dropped. Once the responder runs again it takes the first
 * copies, then the second: IB's responder answers a duplicate again (an
 * ACK, the READ again, an atomic's saved result) and does nothing twice.
 * Every WRITE, READ and atomic completes with the data it should, none
 * with RETRY_EXC_ERR, and each atomic was done once.
 */
#define STOP_BURST 48
#define STOP_LEN (240 * 1024) /* 16 of them below the atomics' page */
#define STOP_ATOMICS (BUF_SIZE - 4096)
#define STOP_READ (32 * 1024)

static pid_t stop_child;

struct stop_peer {
	uint32_t qpn, rkey;
	uint16_t lid;
	uint64_t addr;
};

/* The responder, in a child process: no cmocka there, an exit status. */
static int stopped_responder(int in, int out)
{
	struct ibv_context *ctx = open_dev("hfi1_1");
	struct stop_peer me, peer;
	struct side s = {};
	char done;

	if (!ctx)
		return 2;
	side_init(&s, ctx, IBV_QPT_RC);
	me = (struct stop_peer){ .qpn = s.qp->qp_num,
				 .rkey = s.mr->rkey,
				 .lid = s.lid,
				 .addr = (uintptr_t)s.buf };
	if (write(out, &me, sizeof(me)) != sizeof(me) ||
	    read(in, &peer, sizeof(peer)) != sizeof(peer))
		return 3;
	if (to_rts_to(&s, peer.qpn, peer.lid, 7, 7))
		return 4;
	if (write(out, "r", 1) != 1 || read(in, &done, 1) != 1)
		return 5;
	side_fini(&s, true);
	return 0;
}

static void test_rc_responder_stopped(void **state)
{
	int to_child[2], to_parent[2], status, i, writes, round;
	struct stop_peer me, peer;
	char *want, ready;
	struct ibv_wc wc;
	struct side a;
	pid_t pid;

	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(to_child[1]);
		close(to_parent[0]);
		_exit(stopped_responder(to_child[0], to_parent[1]));
	}
	stop_child = pid;
	close(to_child[0]);
	close(to_parent[1]);
	side_init(&a, open_dev("hfi1_0"), IBV_QPT_RC);
	me = (struct stop_peer){ .qpn = a.qp->qp_num, .lid = a.lid };
	assert_int_equal(read(to_parent[0], &peer, sizeof(peer)), sizeof(peer));
	assert_int_equal(write(to_child[1], &me, sizeof(me)), sizeof(me));
	/* 4 ms, 7 retries: the stop below costs three of them. */
	assert_int_equal(to_rts_to(&a, peer.qpn, peer.lid, 7, 7), 0);
	assert_int_equal(read(to_parent[0], &ready, 1), 1);

	want = malloc(16 * STOP_LEN);
	assert_non_null(want);
	fill(a.buf, 16 * STOP_LEN, 77);
	memcpy(want, a.buf, 16 * STOP_LEN);
	/* Each stop goes back in its own way: three of them. */
	for (round = 0; round < 3; round++) {
		memset(a.buf + 16 * STOP_LEN, 0, BUF_SIZE - 16 * STOP_LEN);
		assert_int_equal(kill(pid, SIGSTOP), 0);
		assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
		assert_true(WIFSTOPPED(status));
		for (i = 0, writes = 0; i < STOP_BURST; i++) {
			uint64_t off = (uint64_t)(writes % 16) * STOP_LEN;
			struct ibv_sge sge = { .lkey = a.mr->lkey };
			struct ibv_send_wr wr = { .wr_id = i,
						  .sg_list = &sge,
						  .num_sge = 1,
						  .send_flags =
							  IBV_SEND_SIGNALED },
					   *bad;

			if (i % 8 == 3) {
				/* The counter in the responder's last page. */
				wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
				wr.wr.atomic.remote_addr =
					peer.addr + BUF_SIZE - 8;
				wr.wr.atomic.rkey = peer.rkey;
				wr.wr.atomic.compare_add = 1;
				sge.addr = (uintptr_t)a.buf + STOP_ATOMICS +
					   i / 8 * 8;
				sge.length = 8;
			} else if (i % 8 == 6) {
				/* What WRITE 0 wrote, into a page of its own. */
				wr.opcode = IBV_WR_RDMA_READ;
				wr.wr.rdma.remote_addr = peer.addr;
				wr.wr.rdma.rkey = peer.rkey;
				sge.addr = (uintptr_t)a.buf + 16 * STOP_LEN +
					   i / 8 * STOP_READ;
				sge.length = STOP_READ;
			} else {
				wr.opcode = IBV_WR_RDMA_WRITE;
				wr.wr.rdma.remote_addr = peer.addr + off;
				wr.wr.rdma.rkey = peer.rkey;
				sge.addr = (uintptr_t)a.buf + off;
				sge.length = STOP_LEN;
				writes++;
			}
			assert_int_equal(ibv_post_send(a.qp, &wr, &bad), 0);
		}
		usleep(12000);
		assert_int_equal(kill(pid, SIGCONT), 0);
		for (i = 0; i < STOP_BURST; i++) {
			poll_one(a.cq, &wc);
			if (wc.status != IBV_WC_SUCCESS)
				fail_msg("WR %d: %s", i,
					 ibv_wc_status_str(wc.status));
			assert_int_equal(wc.wr_id, i);
		}
		for (i = 0; i < STOP_BURST / 8; i++) {
			uint64_t orig;

			memcpy(&orig, a.buf + STOP_ATOMICS + i * 8, 8);
			assert_int_equal(orig, round * (STOP_BURST / 8) + i);
			assert_memory_equal(a.buf + 16 * STOP_LEN +
						    i * STOP_READ,
					    want, STOP_READ);
		}
	}
	memset(a.buf, 0, BUF_SIZE);
	assert_int_equal(post_send(&a, IBV_WR_RDMA_READ, 0, BUF_SIZE, peer.addr,
				   peer.rkey, STOP_BURST, 0),
			 0);
	poll_one(a.cq, &wc);
	if (wc.status != IBV_WC_SUCCESS)
		fail_msg("READ back: %s", ibv_wc_status_str(wc.status));
	assert_memory_equal(a.buf, want, 16 * STOP_LEN);
	assert_int_equal(*(uint64_t *)(a.buf + BUF_SIZE - 8),
			 3 * (STOP_BURST / 8));
	free(want);

	assert_int_equal(write(to_child[1], "d", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	stop_child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	side_fini(&a, true);
	close(to_child[1]);
	close(to_parent[0]);
}

/* A failed test_rc_responder_stopped leaves no child behind. */
static int kill_stop_child(void **state)
{
	if (stop_child > 0) {
		kill(stop_child, SIGKILL);
		waitpid(stop_child, NULL, 0);
		stop_child = 0;
	}
	return 0;
}

/*
 * The peer's QP is gone, and with it the read end of the lane it read:
 * small sends that still go there must not raise SIGPIPE, which would
 * kill the application. UC, whose sends complete as they leave: each
 * completes, whatever became of it, and the process lives on.
 */
static void test_uc_lane_peer_gone(void **state)
{
	struct ibv_wc wc;
	struct pair p;
	int i;

	pair_init(&p, IBV_QPT_UC, true);
	post_recv(&p.b, 0, 64, 1);
	assert_int_equal(post_send(&p.a, IBV_WR_SEND, 0, 8, 0, 0, 1, 0), 0);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(ibv_destroy_qp(p.b.qp), 0);
	p.b.qp = NULL;
	for (i = 0; i < 64; i++) {
		assert_int_equal(
			post_send(&p.a, IBV_WR_SEND, 0, 8, 0, 0, 2 + i, 0), 0);
		poll_one(p.a.cq, &wc);
		assert_int_equal(wc.wr_id, 2 + i);
	}
	pair_fini(&p);
}

static void test_uc_send(void **state)
{
	do_send(IBV_QPT_UC, true);
}

static void do_write(enum ibv_qp_type type)
{
	struct pair p;
	struct ibv_wc wc;

	pair_init(&p, type, true);
	fill(p.a.buf, BUF_SIZE, 5);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE, 0, 3 << 20,
				   (uintptr_t)p.b.buf + 4096, p.b.mr->rkey, 1,
				   0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RDMA_WRITE);
	if (type == IBV_QPT_UC)
		usleep(200000); /* no ACK: the data may still be landing */
	assert_memory_equal(p.a.buf, p.b.buf + 4096, 3 << 20);

	/* Zero length, no SGE, rkey 0: completes without a key check. */
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE, 0, 0, 0, 0, 2, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);

	/* With immediate: a receive completes at the target. */
	post_recv(&p.b, 0, 0, 77);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE_WITH_IMM, 0, 4096,
				   (uintptr_t)p.b.buf, p.b.mr->rkey, 3, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RECV_RDMA_WITH_IMM);
	assert_int_equal(wc.wr_id, 77);
	assert_int_equal(wc.byte_len, 4096);
	pair_fini(&p);
}

static void test_rc_write(void **state)
{
	do_write(IBV_QPT_RC);
}

static void test_uc_write(void **state)
{
	do_write(IBV_QPT_UC);
}

/*
 * A WRITE of 64 MiB, into memory registered just before, with an answer
 * timeout shorter than the whole message takes: the timeout runs from
 * the last packet sent, so a long message is not sent again, and an ACK
 * that comes while a message is being sent again completes it.
 */
static void do_write_long(uint8_t timeout)
{
	const size_t len = 64 << 20;
	struct ibv_mr *smr, *dmr;
	struct ibv_sge sge;
	struct ibv_send_wr wr = {
		.wr_id = 8,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct pair p;
	struct ibv_wc wc;
	char *src, *dst;

	rc_timeout = timeout;
	pair_init(&p, IBV_QPT_RC, true);
	rc_timeout = 10;
	src = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(src != MAP_FAILED);
	assert_true(dst != MAP_FAILED);
	fill(src, len, 23);
	smr = ibv_reg_mr(p.a.pd, src, len, IBV_ACCESS_LOCAL_WRITE);
	dmr = ibv_reg_mr(p.b.pd, dst, len,
			 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	assert_non_null(smr);
	assert_non_null(dmr);
	sge.addr = (uintptr_t)src;
	sge.length = len;
	sge.lkey = smr->lkey;
	wr.wr.rdma.remote_addr = (uintptr_t)dst;
	wr.wr.rdma.rkey = dmr->rkey;
	assert_int_equal(ibv_post_send(p.a.qp, &wr, &bad), 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.wr_id, 8);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_memory_equal(src, dst, len);
	assert_int_equal(ibv_dereg_mr(smr), 0);
	assert_int_equal(ibv_dereg_mr(dmr), 0);
	munmap(src, len);
	munmap(dst, len);
	pair_fini(&p);
}

static void test_rc_write_long(void **state)
{
	/* 67 ms: about what the first placement into new pages takes. */
	do_write_long(14);
	/* 4.2 ms: less than any 64 MiB message takes. */
	do_write_long(10);
}

static void test_rc_read_atomic(void **state)
{
	struct pair p;
	struct ibv_wc wc;
	uint64_t v = 40;

	pair_init(&p, IBV_QPT_RC, true);
	fill(p.b.buf, 1 << 20, 11);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_READ, 8192, 1 << 20,
				   (uintptr_t)p.b.buf, p.b.mr->rkey, 1, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RDMA_READ);
	assert_int_equal(wc.byte_len, 1 << 20);
	assert_memory_equal(p.a.buf + 8192, p.b.buf, 1 << 20);

	memcpy(p.b.buf + 64, &v, 8);
	assert_int_equal(post_send(&p.a, IBV_WR_ATOMIC_FETCH_AND_ADD, 0, 8,
				   (uintptr_t)p.b.buf + 64, p.b.mr->rkey, 2, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_FETCH_ADD);
	memcpy(&v, p.a.buf, 8);
	assert_int_equal(v, 40);
	memcpy(&v, p.b.buf + 64, 8);
	assert_int_equal(v, 40); /* compare_add was 0 */
	pair_fini(&p);
}

/*
 * A busy-polling requester gets its ACKs in the link's doorbell, while
 * READ responses come on the stream: WRITEs acked after a READ whose
 * response is still on its way must wait for it, and nothing may be
 * dropped or failed for being out of order. Rounds of WRITEs around a
 * READ, every completion checked in order.
 */
static void test_rc_polled_acks_around_reads(void **state)
{
	enum { ROUNDS = 300, PER = 9, READ_AT = 4 };
	struct ibv_wc wc[PER];
	struct pair p;
	int r, i, got, n;
	time_t end;

	pair_init(&p, IBV_QPT_RC, true);
	fill(p.b.buf + (2 << 20), 4096, 5);
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < PER; i++) {
			bool rd = i == READ_AT;

			assert_int_equal(
				post_send(&p.a,
					  rd ? IBV_WR_RDMA_READ :
					       IBV_WR_RDMA_WRITE,
					  rd ? 65536 : (uint64_t)i * 64,
					  rd ? 4096 : 64,
					  (uintptr_t)p.b.buf +
						  (rd ? 2 << 20 : i * 64),
					  p.b.mr->rkey, (uint64_t)r * PER + i,
					  0),
				0);
		}
		/* Busy: the engine then leaves the answers to this poller. */
		end = time(NULL) + 10;
		for (got = 0; got < PER;) {
			n = ibv_poll_cq(p.a.cq, PER - got, wc + got);
			assert_true(n >= 0);
			got += n;
			assert_true(time(NULL) < end);
		}
		for (i = 0; i < PER; i++) {
			assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
			assert_int_equal(wc[i].wr_id, (uint64_t)r * PER + i);
		}
		assert_memory_equal(p.a.buf + 65536, p.b.buf + (2 << 20), 4096);
		memset(p.a.buf + 65536, 0, 4096);
	}
	pair_fini(&p);
}

static void test_rc_bad_rkey(void **state)
{
	struct ibv_async_event ev;
	struct pair p;
	struct ibv_wc wc;
	struct pollfd pfd;

	pair_init(&p, IBV_QPT_RC, true);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE, 0, 4096,
				   (uintptr_t)p.b.buf, p.b.mr->rkey + 256, 1,
				   0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_REM_ACCESS_ERR);
	pfd.fd = p.b.ctx->async_fd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(ibv_get_async_event(p.b.ctx, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_QP_ACCESS_ERR);
	assert_ptr_equal(ev.element.qp, p.b.qp);
	ibv_ack_async_event(&ev);
	pair_fini(&p);
}

/*
 * A bad rkey on a WRITE longer than the link holds: the NAK comes back
 * while the rest of the message is still being sent, and must fail the
 * WRITE with REM_ACCESS_ERR at once (not RETRY_EXC_ERR after timeouts);
 * nothing lands. 16 MiB: four SGEs over the 4 MiB buffer.
 */
static void test_rc_bad_rkey_long(void **state)
{
	struct ibv_sge sge[4];
	struct ibv_send_wr wr = {
		.wr_id = 6,
		.sg_list = sge,
		.num_sge = 4,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct timespec t0, t1;
	struct pair p;
	struct ibv_wc wc;
	char *zero;
	int i;

	pair_init(&p, IBV_QPT_RC, true);
	fill(p.a.buf, BUF_SIZE, 17);
	for (i = 0; i < 4; i++) {
		sge[i].addr = (uintptr_t)p.a.buf;
		sge[i].length = BUF_SIZE;
		sge[i].lkey = p.a.mr->lkey;
	}
	wr.wr.rdma.remote_addr = (uintptr_t)p.b.buf;
	wr.wr.rdma.rkey = p.b.mr->rkey + 256;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ibv_post_send(p.a.qp, &wr, &bad), 0);
	poll_one(p.a.cq, &wc);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(wc.wr_id, 6);
	assert_int_equal(wc.status, IBV_WC_REM_ACCESS_ERR);
	/* Not after timeouts: 4.096 us * 2^10 * 8 tries is 33 ms. */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec -
			    t0.tv_nsec <
		    1000000000L);
	zero = calloc(1, BUF_SIZE);
	assert_non_null(zero);
	assert_memory_equal(p.b.buf, zero, BUF_SIZE);
	free(zero);
	pair_fini(&p);
}

static void test_rc_bad_lkey(void **state)
{
	struct pair p;
	struct ibv_wc wc;
	struct ibv_sge sge = { .addr = 0, .length = 16, .lkey = 0xdead00 };
	struct ibv_send_wr wr = {
		.wr_id = 5,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	pair_init(&p, IBV_QPT_RC, true);
	sge.addr = (uintptr_t)p.a.buf;
	assert_int_equal(ibv_post_send(p.a.qp, &wr, &bad), 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.wr_id, 5);
	assert_int_equal(wc.status, IBV_WC_LOC_PROT_ERR);
	pair_fini(&p);
}

static void test_rc_rnr(void **state)
{
	struct pair p;
	struct ibv_wc wc;

	pair_init(&p, IBV_QPT_RC, true);
	/*
	 * rnr_retry 7: for ever, so a late receive still gets it, however
	 * late: RNR NAKs answer the SEND, so the answer timeouts (timeout
	 * 10, retry_cnt 7: 33 ms) never fail it.
	 */
	assert_int_equal(post_send(&p.a, IBV_WR_SEND, 0, 100, 0, 0, 1, 0), 0);
	usleep(150000);
	post_recv(&p.b, 0, 4096, 9);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.wr_id, 9);
	pair_fini(&p);

	/* rnr_retry 0: the first RNR NAK fails it. */
	{
		struct ibv_context *c0 = open_dev("hfi1_0");
		struct ibv_context *c1 = open_dev("hfi1_1");

		side_init(&p.a, c0, IBV_QPT_RC);
		side_init(&p.b, c1, IBV_QPT_RC);
		assert_int_equal(to_rts(&p.a, &p.b, 0, 7), 0);
		assert_int_equal(to_rts(&p.b, &p.a, 0, 7), 0);
		assert_int_equal(
			post_send(&p.a, IBV_WR_SEND, 0, 100, 0, 0, 1, 0), 0);
		poll_one(p.a.cq, &wc);
		assert_int_equal(wc.status, IBV_WC_RNR_RETRY_EXC_ERR);
		pair_fini(&p);
	}
}

/*
 * RNR on a SEND longer than the link holds: the RNR NAK comes back while
 * the rest is still being sent. With rnr_retry 0 it fails the SEND with
 * RNR_RETRY_EXC_ERR; with 7, the SEND starts again after the RNR timer
 * and lands whole once a receive is posted. 16 MiB: four SGEs over the
 * 4 MiB buffer on both sides.
 */
static void send_long(struct side *s, uint64_t id)
{
	struct ibv_sge sge[4];
	struct ibv_send_wr wr = {
		.wr_id = id,
		.sg_list = sge,
		.num_sge = 4,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	int i;

	for (i = 0; i < 4; i++) {
		sge[i].addr = (uintptr_t)s->buf;
		sge[i].length = BUF_SIZE;
		sge[i].lkey = s->mr->lkey;
	}
	assert_int_equal(ibv_post_send(s->qp, &wr, &bad), 0);
}

static void test_rc_rnr_long(void **state)
{
	struct ibv_context *c0, *c1;
	struct ibv_recv_wr rwr = { .wr_id = 9, .num_sge = 4 }, *rbad;
	struct ibv_sge sge[4];
	struct pair p;
	struct ibv_wc wc;
	int i;

	c0 = open_dev("hfi1_0");
	c1 = open_dev("hfi1_1");
	assert_non_null(c0);
	assert_non_null(c1);
	side_init(&p.a, c0, IBV_QPT_RC);
	side_init(&p.b, c1, IBV_QPT_RC);
	assert_int_equal(to_rts(&p.a, &p.b, 0, 7), 0);
	assert_int_equal(to_rts(&p.b, &p.a, 0, 7), 0);
	send_long(&p.a, 1);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.wr_id, 1);
	assert_int_equal(wc.status, IBV_WC_RNR_RETRY_EXC_ERR);
	pair_fini(&p);

	pair_init(&p, IBV_QPT_RC, true);
	fill(p.a.buf, BUF_SIZE, 19);
	send_long(&p.a, 2);
	usleep(20000);
	for (i = 0; i < 4; i++) {
		sge[i].addr = (uintptr_t)p.b.buf;
		sge[i].length = BUF_SIZE;
		sge[i].lkey = p.b.mr->lkey;
	}
	rwr.sg_list = sge;
	assert_int_equal(ibv_post_recv(p.b.qp, &rwr, &rbad), 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.wr_id, 2);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.wr_id, 9);
	assert_int_equal(wc.byte_len, 4 * BUF_SIZE);
	assert_memory_equal(p.a.buf, p.b.buf, BUF_SIZE);
	pair_fini(&p);
}

static void test_flush(void **state)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
	struct pair p;
	struct ibv_wc wc;

	pair_init(&p, IBV_QPT_RC, true);
	post_recv(&p.b, 0, 64, 1);
	post_recv(&p.b, 64, 64, 2);
	assert_int_equal(ibv_modify_qp(p.b.qp, &a, IBV_QP_STATE), 0);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(wc.wr_id, 1);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(wc.wr_id, 2);
	pair_fini(&p);
}

static void test_peer_lost(void **state)
{
	struct pair p;
	struct ibv_wc wc;

	pair_init(&p, IBV_QPT_RC, true);
	/* The peer's QP goes away with a send in flight towards it. */
	assert_int_equal(ibv_destroy_qp(p.b.qp), 0);
	p.b.qp = NULL;
	assert_int_equal(post_send(&p.a, IBV_WR_SEND, 0, 100, 0, 0, 1, 0), 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_RETRY_EXC_ERR);
	pair_fini(&p);
}

static void test_ud(void **state)
{
	struct ibv_ah_attr aa = { .port_num = 1 };
	struct ibv_send_wr wr = {}, *bad;
	struct ibv_sge sge;
	struct ibv_ah *ah;
	struct pair p;
	struct ibv_wc wc;

	pair_init(&p, IBV_QPT_UD, true);
	aa.dlid = p.b.lid;
	ah = ibv_create_ah(p.a.pd, &aa);
	assert_non_null(ah);
	fill(p.a.buf, 1024, 13);
	post_recv(&p.b, 0, 1024 + 40, 3);
	sge.addr = (uintptr_t)p.a.buf;
	sge.length = 1024;
	sge.lkey = p.a.mr->lkey;
	wr.wr_id = 4;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = p.b.qp->qp_num;
	wr.wr.ud.remote_qkey = 0x11111111;
	assert_int_equal(ibv_post_send(p.a.qp, &wr, &bad), 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	poll_one(p.b.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.byte_len, 1024 + 40);
	assert_int_equal(wc.src_qp, p.a.qp->qp_num);
	assert_int_equal(wc.slid, p.a.lid);
	assert_memory_equal(p.a.buf, p.b.buf + 40, 1024);
	assert_int_equal(ibv_destroy_ah(ah), 0);
	pair_fini(&p);
}

/*
 * The stale translation: hfi1_1 registers a buffer and hfi1_0 writes it;
 * the buffer goes away and new memory comes back at the same address,
 * registered anew. The old rkey must fail, and the new one must land its
 * data in the new memory (never the old pinned pages, never anywhere the
 * old key allowed).
 */
enum remap {
	REMAP_MMAP_FIXED,
	REMAP_FREE_MALLOC,
	REMAP_DONTNEED,
	REMAP_MREMAP
};

static void do_stale(enum remap how)
{
	const size_t len = 1 << 20;
	struct ibv_mr *old_mr, *new_mr;
	struct pair p;
	struct ibv_wc wc;
	char *t, *t2;

	pair_init(&p, IBV_QPT_RC, true);
	if (how == REMAP_FREE_MALLOC) {
		t = malloc(len);
		assert_non_null(t);
	} else {
		t = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(t != MAP_FAILED);
	}
	memset(t, 0, len);
	old_mr = ibv_reg_mr(p.b.pd, t, len,
			    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	assert_non_null(old_mr);
	fill(p.a.buf, len, 1);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE, 0, len,
				   (uintptr_t)t, old_mr->rkey, 1, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_memory_equal(t, p.a.buf, len);

	switch (how) {
	case REMAP_MMAP_FIXED:
		assert_int_equal(munmap(t, len), 0);
		t2 = mmap(t, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case REMAP_FREE_MALLOC:
		free(t);
		t2 = malloc(len);
		break;
	case REMAP_DONTNEED:
		assert_int_equal(madvise(t, len, MADV_DONTNEED), 0);
		t2 = t;
		break;
	default: {
		/* Move the pages away, and map new ones where they were. */
		char *away = mmap(NULL, len, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		assert_true(away != MAP_FAILED);
		assert_true(mremap(t, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   away) == away);
		t2 = mmap(t, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		munmap(away, len);
	}
	}
	assert_non_null(t2);
	assert_true(t2 != MAP_FAILED);
	if (how == REMAP_FREE_MALLOC && t2 != t) {
		/* The allocator chose another address: nothing to race. */
		free(t2);
		ibv_dereg_mr(old_mr);
		pair_fini(&p);
		return;
	}
	memset(t2, 0, len);
	new_mr = ibv_reg_mr(p.b.pd, t2, len,
			    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	assert_non_null(new_mr);

	/* The old key is stale: refused, and nothing lands. */
	fill(p.a.buf, len, 2);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE, 0, len,
				   (uintptr_t)t2, old_mr->rkey, 2, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_REM_ACCESS_ERR);
	{
		char *zero = calloc(1, len);

		assert_memory_equal(t2, zero, len);
		free(zero);
	}
	/* The error took both QPs down: a new pair for the new key. */
	ibv_dereg_mr(old_mr);
	{
		struct side a = p.a, b = p.b;
		struct ibv_qp_init_attr ia = {
			.qp_type = IBV_QPT_RC,
			.send_cq = a.cq,
			.recv_cq = a.cq,
			.cap = { .max_send_wr = 8,
				 .max_recv_wr = 8,
				 .max_send_sge = 1,
				 .max_recv_sge = 1 },
		};

		assert_int_equal(ibv_destroy_qp(p.a.qp), 0);
		assert_int_equal(ibv_destroy_qp(p.b.qp), 0);
		p.a.qp = ibv_create_qp(a.pd, &ia);
		ia.send_cq = ia.recv_cq = b.cq;
		p.b.qp = ibv_create_qp(b.pd, &ia);
		assert_non_null(p.a.qp);
		assert_non_null(p.b.qp);
		assert_int_equal(to_rts(&p.a, &p.b, 7, 7), 0);
		assert_int_equal(to_rts(&p.b, &p.a, 7, 7), 0);
	}
	fill(p.a.buf, len, 3);
	assert_int_equal(post_send(&p.a, IBV_WR_RDMA_WRITE, 0, len,
				   (uintptr_t)t2, new_mr->rkey, 3, 0),
			 0);
	poll_one(p.a.cq, &wc);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_memory_equal(t2, p.a.buf, len);
	assert_int_equal(ibv_dereg_mr(new_mr), 0);
	if (how == REMAP_FREE_MALLOC)
		free(t2);
	else
		munmap(t2, len);
	pair_fini(&p);
}

static void test_stale_mmap_fixed(void **state)
{
	do_stale(REMAP_MMAP_FIXED);
}

static void test_stale_free_malloc(void **state)
{
	do_stale(REMAP_FREE_MALLOC);
}

static void test_stale_dontneed(void **state)
{
	do_stale(REMAP_DONTNEED);
}

static void test_stale_mremap(void **state)
{
	do_stale(REMAP_MREMAP);
}

/*
 * An SRQ behind two RC QPs on hfi1_1: each message takes the next receive
 * from it and completes with its QP's number; the limit event fires once
 * fewer than the limit are left; a QP that goes to ERR raises
 * LAST_WQE_REACHED.
 */
static void test_srq(void **state)
{
	struct ibv_srq_init_attr sa = {
		.attr = { .max_wr = 16, .max_sge = 1 },
	};
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };
	struct ibv_async_event ev;
	struct ibv_srq_attr q;
	struct pollfd pfd;
	struct side a[2], b[2];
	struct ibv_srq *srq;
	struct ibv_context *c0 = open_dev("hfi1_0"), *c1 = open_dev("hfi1_1");
	struct ibv_wc wc;
	int i, seen[2] = {};

	assert_non_null(c0);
	assert_non_null(c1);
	for (i = 0; i < 2; i++) {
		side_init(&a[i], c0, IBV_QPT_RC);
		side_init(&b[i], c1, IBV_QPT_RC);
	}
	/* b[1]'s PD and CQ serve both; b[0]'s QP is made again on them. */
	srq = ibv_create_srq(b[1].pd, &sa);
	assert_non_null(srq);
	for (i = 0; i < 2; i++) {
		struct ibv_qp_init_attr ia = {
			.qp_type = IBV_QPT_RC,
			.send_cq = b[1].cq,
			.recv_cq = b[1].cq,
			.srq = srq,
			.cap = { .max_send_wr = 8, .max_send_sge = 1 },
		};

		assert_int_equal(ibv_destroy_qp(b[i].qp), 0);
		b[i].qp = ibv_create_qp(b[1].pd, &ia);
		assert_non_null(b[i].qp);
		assert_int_equal(to_rts(&a[i], &b[i], 7, 7), 0);
		assert_int_equal(to_rts(&b[i], &a[i], 7, 7), 0);
	}
	for (i = 0; i < 4; i++) {
		struct ibv_sge sge = {
			.addr = (uintptr_t)b[1].buf + i * 4096,
			.length = 4096,
			.lkey = b[1].mr->lkey,
		};
		struct ibv_recv_wr wr = { .wr_id = 100 + i,
					  .sg_list = &sge,
					  .num_sge = 1 },
				   *bad;

		assert_int_equal(ibv_post_srq_recv(srq, &wr, &bad), 0);
	}
	q.srq_limit = 3;
	assert_int_equal(ibv_modify_srq(srq, &q, IBV_SRQ_LIMIT), 0);
	assert_int_equal(ibv_query_srq(srq, &q), 0);
	assert_int_equal(q.srq_limit, 3);
	assert_true(q.max_wr >= 16);

	for (i = 0; i < 2; i++) {
		fill(a[i].buf, 100, i);
		assert_int_equal(
			post_send(&a[i], IBV_WR_SEND, 0, 100, 0, 0, i, 0), 0);
		poll_one(a[i].cq, &wc);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
	}
	for (i = 0; i < 2; i++) {
		poll_one(b[1].cq, &wc);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		assert_int_equal(wc.opcode, IBV_WC_RECV);
		assert_int_equal(wc.byte_len, 100);
		assert_int_equal(wc.wr_id, 100 + i);
		seen[wc.qp_num == b[1].qp->qp_num] = 1;
	}
	assert_true(seen[0] && seen[1]);

	pfd.fd = c1->async_fd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(ibv_get_async_event(c1, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_SRQ_LIMIT_REACHED);
	assert_ptr_equal(ev.element.srq, srq);
	ibv_ack_async_event(&ev);

	assert_int_equal(ibv_modify_qp(b[0].qp, &qa, IBV_QP_STATE), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(ibv_get_async_event(c1, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_QP_LAST_WQE_REACHED);
	assert_ptr_equal(ev.element.qp, b[0].qp);
	ibv_ack_async_event(&ev);

	assert_int_equal(ibv_destroy_srq(srq), EBUSY);
	for (i = 0; i < 2; i++) {
		assert_int_equal(ibv_destroy_qp(b[i].qp), 0);
		b[i].qp = NULL;
	}
	assert_int_equal(ibv_destroy_srq(srq), 0);
	for (i = 0; i < 2; i++) {
		side_fini(&a[i], false);
		side_fini(&b[i], false);
	}
	assert_int_equal(ibv_close_device(c0), 0);
	assert_int_equal(ibv_close_device(c1), 0);
}

/* An RC QP on @srq, moved to ERR: IBV_EVENT_QP_LAST_WQE_REACHED is queued. */
static struct ibv_qp *qp_with_last_wqe_event(struct ibv_pd *pd,
					     struct ibv_cq *cq,
					     struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.send_cq = cq,
		.recv_cq = cq,
		.srq = srq,
		.cap = { .max_send_wr = 8, .max_send_sge = 1 },
	};
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };
	struct pollfd pfd = { .fd = pd->context->async_fd, .events = POLLIN };
	struct ibv_qp *qp = ibv_create_qp(pd, &ia);

	assert_non_null(qp);
	assert_int_equal(ibv_modify_qp(qp, &qa, IBV_QP_STATE), 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	return qp;
}

struct destroy_arg {
	struct ibv_qp *qp;
	int ret;
	atomic_bool done;
};

static void *destroy_thread(void *arg)
{
	struct destroy_arg *d = arg;

	d->ret = ibv_destroy_qp(d->qp);
	atomic_store(&d->done, true);
	return NULL;
}

/*
 * As the kernel's uverbs: destroying a QP takes its events the application
 * has not read out of the async queue (they would name freed memory), and
 * waits until those it has read are acked.
 */
static void test_async_event_of_destroyed_qp(void **state)
{
	struct ibv_srq_init_attr sa = {
		.attr = { .max_wr = 16, .max_sge = 1 },
	};
	struct ibv_context *c = open_dev("hfi1_0");
	struct destroy_arg d = { .ret = -1 };
	struct ibv_qp *unread, *kept, *read_unacked;
	struct ibv_async_event ev;
	struct pollfd pfd;
	struct ibv_srq *srq;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	pthread_t t;

	assert_non_null(c);
	pd = ibv_alloc_pd(c);
	assert_non_null(pd);
	cq = ibv_create_cq(c, CQE, NULL, NULL, 0);
	assert_non_null(cq);
	srq = ibv_create_srq(pd, &sa);
	assert_non_null(srq);
	pfd.fd = c->async_fd;
	pfd.events = POLLIN;

	/* Unread: gone with its QP, and the other QP's event stays. */
	unread = qp_with_last_wqe_event(pd, cq, srq);
	kept = qp_with_last_wqe_event(pd, cq, srq);
	assert_int_equal(ibv_destroy_qp(unread), 0);
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(ibv_get_async_event(c, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_QP_LAST_WQE_REACHED);
	assert_ptr_equal(ev.element.qp, kept);
	ibv_ack_async_event(&ev);
	assert_int_equal(poll(&pfd, 1, 200), 0);
	assert_int_equal(ibv_destroy_qp(kept), 0);

	/* Read but not acked: the destroy waits for the ack. */
	read_unacked = qp_with_last_wqe_event(pd, cq, srq);
	assert_int_equal(ibv_get_async_event(c, &ev), 0);
	assert_ptr_equal(ev.element.qp, read_unacked);
	d.qp = read_unacked;
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, &d), 0);
	usleep(200000);
	assert_false(atomic_load(&d.done));
	ibv_ack_async_event(&ev);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(d.ret, 0);

	assert_int_equal(ibv_destroy_srq(srq), 0);
	assert_int_equal(ibv_destroy_cq(cq), 0);
	assert_int_equal(ibv_dealloc_pd(pd), 0);
	assert_int_equal(ibv_close_device(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rc_send),
		cmocka_unit_test(test_rc_send_loopback),
		cmocka_unit_test(test_rc_blocking),
		cmocka_unit_test(test_rc_blocking_loopback),
		cmocka_unit_test(test_uc_send),
		cmocka_unit_test(test_rc_lane),
		cmocka_unit_test(test_rc_bulk_bursts),
		cmocka_unit_test(test_uc_send_buffer_reuse),
		cmocka_unit_test_teardown(test_rc_responder_stopped,
					  kill_stop_child),
		cmocka_unit_test(test_uc_lane),
		cmocka_unit_test(test_uc_lane_peer_gone),
		cmocka_unit_test(test_rc_write),
		cmocka_unit_test(test_uc_write),
		cmocka_unit_test(test_rc_write_long),
		cmocka_unit_test(test_rc_read_atomic),
		cmocka_unit_test(test_rc_polled_acks_around_reads),
		cmocka_unit_test(test_rc_bad_rkey),
		cmocka_unit_test(test_rc_bad_rkey_long),
		cmocka_unit_test(test_rc_bad_lkey),
		cmocka_unit_test(test_rc_rnr),
		cmocka_unit_test(test_rc_rnr_long),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_peer_lost),
		cmocka_unit_test(test_ud),
		cmocka_unit_test(test_srq),
		cmocka_unit_test(test_async_event_of_destroyed_qp),
		cmocka_unit_test(test_stale_mmap_fixed),
		cmocka_unit_test(test_stale_free_malloc),
		cmocka_unit_test(test_stale_dontneed),
		cmocka_unit_test(test_stale_mremap),
	};

	/*
	 * A fixed threshold: free() of a big block unmaps it and the next
	 * malloc() maps one again, at the same address (glibc would
	 * otherwise raise the threshold and serve it from the heap).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
