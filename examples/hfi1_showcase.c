// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_showcase: the README's main job. Two processes, a writer on one hfi1
 * device and a receiver on another (two "hosts"), connected by an RC QP
 * whose numbers they exchange over a socketpair. For each message size, in
 * rounds, the receiver registers a buffer (ibv_reg_mr, which libhfi1's MR
 * cache serves), the writer RDMA-WRITEs a pattern unique to the size and
 * the round into it, and the receiver checks every byte and deregisters
 * (the cache keeps the entry: the next round's registration is a hit).
 *
 * Every --free-every rounds the receiver frees the buffer while it is
 * still registered (munmap), waits for libhfi1's HFI1DV_EVENT_MR_INVALIDATED
 * on the async event queue and reads the MR's identity with
 * hfi1dv_get_mr_event(), maps new memory at the same address, registers it
 * (a miss: the old entry is gone) and asks the writer for a write with the
 * OLD rkey there. That write must be refused (REM_ACCESS_ERR) and the new
 * memory must be untouched; both QPs are then brought back from ERR.
 *
 * The receiver prints a table per size: the cache's hits, misses and
 * invalidations (hfi1dv_query_mr_cache(), deltas), the events delivered,
 * the stale writes refused, the median registration times, the bandwidth
 * and the integrity verdict; then a verdict line. It exits 1 if any byte
 * was wrong, any stale write landed or was not refused, or an event was
 * missing.
 *
 *   hfi1_showcase [-d hfi1_0] [-D hfi1_1] [--sizes 4K,...,4M] [--rounds 64]
 *                 [--free-every 4] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <infiniband/verbs.h>
#include <infiniband/hfi1dv.h>

#define MAX_SIZES 16
#define MAX_SIZE (256ul << 20)
#define DEF_ROUNDS 64
#define DEF_FREE_EVERY 4
/* How long either side waits for the other, a completion or an event. */
#define WAIT_MS 10000
/* The receiver's new memory, before the stale write: must stay so. */
#define CANARY 0x5a

static const size_t default_sizes[] = { 4 << 10,   16 << 10, 64 << 10,
					256 << 10, 1 << 20,  4 << 20 };

struct opts {
	const char *wdev; /* the writer's device */
	const char *rdev; /* the receiver's */
	size_t sizes[MAX_SIZES];
	int nsizes;
	int rounds;
	int free_every;
	bool json;
};

/* --- the exchange between the two processes --- */

enum msg_type {
	MSG_HELLO = 1, /* lid, qpn, pid */
	MSG_WRITE, /* write [addr, addr + size) with rkey */
	MSG_DONE, /* the write's status and time */
	MSG_RESET, /* the receiver's QP is in RESET: reconnect */
	MSG_READY, /* the writer's QP is in RTS again */
	MSG_BYE,
};

#define MSGF_STALE 1 /* MSG_WRITE with the old rkey */

struct msg {
	uint32_t type;
	uint32_t status; /* MSG_DONE: enum ibv_wc_status */
	uint32_t lid;
	uint32_t qpn;
	uint32_t pid;
	uint32_t rkey;
	uint32_t round;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
	uint64_t ns; /* MSG_DONE: post to completion */
};

static const char *who = "hfi1_showcase";

static int msg_send(int fd, const struct msg *m)
{
	const char *p = (const char *)m;
	size_t left = sizeof(*m);

	while (left) {
		ssize_t n = send(fd, p, left, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A peer that went away said why. */
			if (n == 0 || (errno != EPIPE && errno != ECONNRESET))
				fprintf(stderr, "%s: send: %s\n", who,
					n ? strerror(errno) : "closed");
			return -1;
		}
		p += n;
		left -= n;
	}
	return 0;
}

/* The next message, of @type unless 0; -1 on EOF or WAIT_MS of silence. */
static int msg_recv(int fd, struct msg *m, uint32_t type)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char *p = (char *)m;
	size_t left = sizeof(*m);

	while (left) {
		ssize_t n;
		int r = poll(&pfd, 1, WAIT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr,
				"%s: the other process said nothing "
				"for %d s\n",
				who, WAIT_MS / 1000);
			return -1;
		}
		n = recv(fd, p, left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* the other side says why */
		p += n;
		left -= n;
	}
	if (type && m->type != type) {
		fprintf(stderr, "%s: message %u where %u was due\n", who,
			m->type, type);
		return -1;
	}
	return 0;
}

/* --- what both ends share --- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * The pattern of (size, round): 64-bit words of an xorshift sequence whose
 * seed differs for every size, round and for the stale writes, so that
 * neither a previous round's data nor a stale write passes for this one.
 */
static uint64_t pattern_seed(uint64_t size, uint32_t round, bool stale)
{
	uint64_t x = size * 0x9e3779b97f4a7c15ull ^
		     ((uint64_t)round << 32 | (stale ? 0xdeadu : 0x600du));

	return x ? x : 1;
}

static void pattern_fill(uint64_t *p, size_t words, uint64_t x)
{
	size_t i;

	for (i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

/* The words of @p that differ from the pattern. */
static size_t pattern_check(const uint64_t *p, size_t words, uint64_t x)
{
	size_t i, bad = 0;

	for (i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bad += p[i] != x;
	}
	return bad;
}

struct end {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint16_t lid;
	uint16_t peer_lid;
	uint32_t peer_qpn;
};

static int end_open(struct end *e, const char *name)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4,
			 .max_recv_wr = 1,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_device **list;
	struct ibv_port_attr port;
	int i, n;

	e->name = name;
	list = ibv_get_device_list(&n);
	if (!list) {
		fprintf(stderr, "%s: ibv_get_device_list: %s\n", who,
			strerror(errno));
		return -1;
	}
	for (i = 0; i < n && !e->ctx; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			e->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!e->ctx) {
		fprintf(stderr,
			"%s: cannot open %s (is the soft HFI up? "
			"hfi1-soft up --name %s)\n",
			who, name, name);
		return -1;
	}
	if (ibv_query_port(e->ctx, 1, &port)) {
		fprintf(stderr, "%s: ibv_query_port(%s): %s\n", who, name,
			strerror(errno));
		return -1;
	}
	e->lid = port.lid;
	e->pd = ibv_alloc_pd(e->ctx);
	e->cq = ibv_create_cq(e->ctx, 16, NULL, NULL, 0);
	if (!e->pd || !e->cq) {
		fprintf(stderr, "%s: PD or CQ on %s: %s\n", who, name,
			strerror(errno));
		return -1;
	}
	ia.send_cq = ia.recv_cq = e->cq;
	e->qp = ibv_create_qp(e->pd, &ia);
	if (!e->qp) {
		fprintf(stderr, "%s: ibv_create_qp(%s): %s\n", who, name,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Acknowledge whatever async events are queued; how many there were. */
static int drain_async(struct ibv_context *ctx)
{
	struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };
	struct ibv_async_event ev;
	int n = 0;

	while (poll(&pfd, 1, 0) == 1 && !ibv_get_async_event(ctx, &ev)) {
		ibv_ack_async_event(&ev);
		n++;
	}
	return n;
}

static void end_close(struct end *e)
{
	if (e->ctx)
		drain_async(e->ctx);
	if (e->qp)
		ibv_destroy_qp(e->qp);
	if (e->cq)
		ibv_destroy_cq(e->cq);
	if (e->pd)
		ibv_dealloc_pd(e->pd);
	if (e->ctx)
		ibv_close_device(e->ctx);
}

static int qp_modify(struct end *e, struct ibv_qp_attr *a, int mask,
		     const char *to)
{
	int ret = ibv_modify_qp(e->qp, a, mask);

	if (ret)
		fprintf(stderr, "%s: %s QP to %s: %s\n", who, e->name, to,
			strerror(ret));
	return ret;
}

static int qp_reset(struct end *e)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	return qp_modify(e, &a, IBV_QP_STATE, "RESET");
}

/* RESET -> INIT -> RTR -> RTS, connected to the peer. */
static int qp_connect(struct end *e)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	if (qp_modify(e, &a,
		      IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			      IBV_QP_ACCESS_FLAGS,
		      "INIT"))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = e->peer_qpn;
	a.ah_attr.dlid = e->peer_lid;
	a.ah_attr.port_num = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	if (qp_modify(e, &a,
		      IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
		      "RTR"))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	return qp_modify(e, &a,
			 IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				 IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
				 IBV_QP_MAX_QP_RD_ATOMIC,
			 "RTS") ?
		       -1 :
		       0;
}

/* --- the writer --- */

/* One RDMA WRITE of @m: its status and time into @done. */
static int writer_write(struct end *e, struct ibv_mr *mr, uint64_t *src,
			const struct msg *m, struct msg *done)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)src,
		.length = m->size,
		.lkey = mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = m->round,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_wc wc;
	uint64_t t0, t1;
	int n, ret;

	pattern_fill(src, m->size / 8,
		     pattern_seed(m->size, m->round, m->flags & MSGF_STALE));
	wr.wr.rdma.remote_addr = m->addr;
	wr.wr.rdma.rkey = m->rkey;
	t0 = now_ns();
	ret = ibv_post_send(e->qp, &wr, &bad);
	if (ret) {
		fprintf(stderr, "%s: ibv_post_send: %s\n", who, strerror(ret));
		return -1;
	}
	do {
		n = ibv_poll_cq(e->cq, 1, &wc);
		t1 = now_ns();
	} while (!n && t1 - t0 < WAIT_MS * 1000000ull);
	if (n != 1) {
		fprintf(stderr, "%s: no completion of the RDMA WRITE\n", who);
		return -1;
	}
	memset(done, 0, sizeof(*done));
	done->type = MSG_DONE;
	done->status = wc.status;
	done->round = m->round;
	done->ns = t1 - t0;
	return 0;
}

static int writer(const struct opts *o, int fd)
{
	struct end e = {};
	struct ibv_mr *mr = NULL;
	struct msg m = {}, hello;
	uint64_t *src = MAP_FAILED;
	size_t max = 0;
	int i, ret = 1;

	who = "hfi1_showcase (writer)";
	for (i = 0; i < o->nsizes; i++)
		if (o->sizes[i] > max)
			max = o->sizes[i];
	if (end_open(&e, o->wdev))
		goto out;
	src = mmap(NULL, max, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED) {
		perror("hfi1_showcase (writer): mmap");
		goto out;
	}
	memset(src, 0, max);
	mr = ibv_reg_mr(e.pd, src, max, IBV_ACCESS_LOCAL_WRITE);
	if (!mr) {
		fprintf(stderr, "%s: ibv_reg_mr(%zu bytes): %s\n", who, max,
			strerror(errno));
		goto out;
	}
	hello = (struct msg){ .type = MSG_HELLO,
			      .lid = e.lid,
			      .qpn = e.qp->qp_num,
			      .pid = getpid() };
	if (msg_send(fd, &hello) || msg_recv(fd, &m, MSG_HELLO))
		goto out;
	e.peer_lid = m.lid;
	e.peer_qpn = m.qpn;
	/* The receiver's QP is in RESET: ours connects first. */
	if (qp_connect(&e))
		goto out;
	m = (struct msg){ .type = MSG_READY };
	if (msg_send(fd, &m))
		goto out;
	for (;;) {
		struct msg done;

		if (msg_recv(fd, &m, 0))
			goto out;
		switch (m.type) {
		case MSG_WRITE:
			if (m.size > max || m.size % 8) {
				fprintf(stderr, "%s: bad size %" PRIu64 "\n",
					who, m.size);
				goto out;
			}
			if (writer_write(&e, mr, src, &m, &done) ||
			    msg_send(fd, &done))
				goto out;
			break;
		case MSG_RESET:
			/* After an error: both QPs come back from ERR. */
			drain_async(e.ctx);
			if (qp_reset(&e) || qp_connect(&e))
				goto out;
			m = (struct msg){ .type = MSG_READY };
			if (msg_send(fd, &m))
				goto out;
			break;
		case MSG_BYE:
			ret = 0;
			goto out;
		default:
			fprintf(stderr, "%s: message %u?\n", who, m.type);
			goto out;
		}
	}
out:
	if (mr)
		ibv_dereg_mr(mr);
	if (src != MAP_FAILED)
		munmap(src, max);
	end_close(&e);
	return ret;
}

/* --- the receiver --- */

struct row {
	size_t size;
	int rounds;
	int writes; /* that completed successfully */
	int write_errors;
	int corrupt; /* writes completed with a byte wrong */
	int frees; /* buffers freed while registered */
	int reused; /* ... and new memory mapped at the same address */
	int events; /* HFI1DV_EVENT_MR_INVALIDATED for the freed MR */
	int stale; /* stale writes asked for */
	int stale_refused; /* REM_ACCESS_ERR, nothing landed */
	int stale_landed; /* a byte of the new memory changed */
	int qp_events; /* IBV_EVENT_QP_ACCESS_ERR on the receiver's QP */
	struct hfi1dv_mr_cache_stats delta;
	uint64_t write_ns; /* the successful writes' */
	uint64_t *hit_ns, *miss_ns;
	int nhit, nmiss;
	double hit_med_us, miss_med_us; /* < 0: none */
	char *buf; /* the last buffer, unmapped at the end */
	size_t len;
};

struct receiver {
	const struct opts *o;
	struct end e;
	int fd;
	pid_t writer_pid;
	uint16_t writer_lid;
	uint32_t writer_qpn;
	bool failed; /* an error that stopped the run */
};

static int cache_stats(struct receiver *r, struct hfi1dv_mr_cache_stats *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	ret = hfi1dv_query_mr_cache(r->e.ctx, st, sizeof(*st));
	if (ret)
		fprintf(stderr, "%s: hfi1dv_query_mr_cache: %s\n", who,
			strerror(ret));
	return ret;
}

/* ibv_reg_mr, timed, sorted into a hit or a miss by the cache's counters. */
static struct ibv_mr *reg_timed(struct receiver *r, struct row *row, void *buf)
{
	struct hfi1dv_mr_cache_stats before, after;
	struct ibv_mr *mr;
	uint64_t t0, t;

	if (cache_stats(r, &before))
		return NULL;
	t0 = now_ns();
	mr = ibv_reg_mr(r->e.pd, buf, row->size,
			IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	t = now_ns() - t0;
	if (!mr) {
		fprintf(stderr, "%s: ibv_reg_mr(%zu bytes at %p): %s\n", who,
			row->size, buf, strerror(errno));
		return NULL;
	}
	if (cache_stats(r, &after)) {
		ibv_dereg_mr(mr);
		return NULL;
	}
	if (after.misses != before.misses)
		row->miss_ns[row->nmiss++] = t;
	else
		row->hit_ns[row->nhit++] = t;
	return mr;
}

/* Ask for one write; its completion into @done. */
static int ask_write(struct receiver *r, const struct row *row, uint64_t addr,
		     uint32_t rkey, uint32_t round, bool stale,
		     struct msg *done)
{
	struct msg m = {
		.type = MSG_WRITE,
		.rkey = rkey,
		.round = round,
		.flags = stale ? MSGF_STALE : 0,
		.addr = addr,
		.size = row->size,
	};

	if (msg_send(r->fd, &m) || msg_recv(r->fd, done, MSG_DONE))
		return -1;
	return 0;
}

/* Both QPs back from ERR: ours to RESET, the writer's to RTS, then ours. */
static int reconnect(struct receiver *r)
{
	struct msg m = { .type = MSG_RESET };

	if (qp_reset(&r->e) || msg_send(r->fd, &m) ||
	    msg_recv(r->fd, &m, MSG_READY) || qp_connect(&r->e))
		return -1;
	return 0;
}

/*
 * Wait for the async events that the free and the stale write owe: the
 * MR's invalidation (HFI1DV_EVENT_MR_INVALIDATED naming @mr) when @mr is
 * set, else the QP's IBV_EVENT_QP_ACCESS_ERR. Other events are counted
 * where they belong and acknowledged. 1 if it came, 0 if not in time.
 */
static int wait_event(struct receiver *r, struct row *row,
		      const struct ibv_mr *mr, uint64_t addr)
{
	struct pollfd pfd = { .fd = r->e.ctx->async_fd, .events = POLLIN };
	uint64_t end = now_ns() + WAIT_MS * 1000000ull;

	for (;;) {
		struct hfi1dv_mr_event info = {};
		struct ibv_async_event ev;
		uint64_t now = now_ns();
		bool ours = false;
		int ret;

		if (now >= end)
			return 0;
		ret = poll(&pfd, 1, (int)((end - now) / 1000000) + 1);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return 0;
		if (ibv_get_async_event(r->e.ctx, &ev))
			continue;
		if (ev.event_type ==
		    (enum ibv_event_type)HFI1DV_EVENT_MR_INVALIDATED) {
			ret = hfi1dv_get_mr_event(r->e.ctx, &ev, &info,
						  sizeof(info));
			ours = mr && !ret && info.rkey == mr->rkey &&
			       info.lkey == mr->lkey && info.addr == addr &&
			       info.length == row->size &&
			       info.reason == HFI1DV_MR_INVAL_UNMAPPED;
			if (ret)
				fprintf(stderr, "%s: hfi1dv_get_mr_event: %s\n",
					who, strerror(ret));
		} else if (ev.event_type == IBV_EVENT_QP_ACCESS_ERR &&
			   ev.element.qp == r->e.qp) {
			row->qp_events++;
			ours = !mr;
		}
		ibv_ack_async_event(&ev);
		if (ours)
			return 1;
	}
}

/*
 * The buffer at *bufp goes away while @mr is registered over it, and new
 * memory comes at the same address; a write with @mr's rkey must not
 * reach it. *bufp: the new memory; its MR is registered, counted and
 * deregistered (the next round's registration hits). @mr is deregistered
 * whatever happens.
 */
static int free_round(struct receiver *r, struct row *row, char **bufp,
		      size_t len, struct ibv_mr *mr, uint32_t round)
{
	uint64_t addr = (uintptr_t)*bufp;
	struct ibv_mr *new_mr;
	struct msg done;
	size_t i, bad;
	char *buf;

	row->frees++;
	if (munmap(*bufp, len)) {
		perror("hfi1_showcase: munmap");
		goto fail;
	}
	*bufp = NULL;
	row->events += wait_event(r, row, mr, addr);
	/*
	 * The same address again, as an allocator would hand it out: only
	 * where nothing else took it meanwhile (NOREPLACE), else anywhere.
	 */
	buf = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (buf == MAP_FAILED)
		buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("hfi1_showcase: mmap");
		goto fail;
	}
	*bufp = buf;
	row->reused += (uintptr_t)buf == addr;
	memset(buf, CANARY, len);
	new_mr = reg_timed(r, row, buf);
	if (!new_mr)
		goto fail;

	/* The old rkey, into the new memory: refused, and nothing lands. */
	row->stale++;
	if (ask_write(r, row, addr, mr->rkey, round, true, &done)) {
		ibv_dereg_mr(new_mr);
		goto fail;
	}
	for (bad = 0, i = 0; i < row->size; i++)
		bad += (unsigned char)buf[i] != CANARY;
	if (bad)
		row->stale_landed++;
	else if (done.status == IBV_WC_REM_ACCESS_ERR)
		row->stale_refused++;
	if (done.status != IBV_WC_SUCCESS)
		wait_event(r, row, NULL, 0); /* our QP's ACCESS_ERR */
	if (ibv_dereg_mr(mr) | ibv_dereg_mr(new_mr)) {
		perror("hfi1_showcase: ibv_dereg_mr");
		return -1;
	}
	/* The refusal took both QPs to ERR (a write that landed did not). */
	return done.status == IBV_WC_SUCCESS ? 0 : reconnect(r);
fail:
	ibv_dereg_mr(mr);
	return -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_us(uint64_t *ns, int n)
{
	if (!n)
		return -1;
	qsort(ns, n, sizeof(*ns), cmp_u64);
	return (n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2) / 1e3;
}

static void stats_delta(struct hfi1dv_mr_cache_stats *d,
			const struct hfi1dv_mr_cache_stats *a,
			const struct hfi1dv_mr_cache_stats *b)
{
	d->hits = b->hits - a->hits;
	d->misses = b->misses - a->misses;
	d->evictions = b->evictions - a->evictions;
	d->invalidations = b->invalidations - a->invalidations;
	d->invalidated_in_use = b->invalidated_in_use - a->invalidated_in_use;
	d->failures = b->failures - a->failures;
}

static int run_size(struct receiver *r, struct row *row)
{
	const struct opts *o = r->o;
	struct hfi1dv_mr_cache_stats before, after;
	size_t len = (row->size + 4095) & ~4095ul;
	struct ibv_mr *mr = NULL;
	char *buf;
	int round, ret = -1;

	row->hit_ns = calloc(2 * o->rounds, sizeof(uint64_t));
	row->miss_ns = calloc(2 * o->rounds, sizeof(uint64_t));
	if (!row->hit_ns || !row->miss_ns)
		return -1;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("hfi1_showcase: mmap");
		buf = NULL;
		goto out;
	}
	if (cache_stats(r, &before))
		goto out;
	for (round = 0; round < o->rounds; round++) {
		struct msg done;

		mr = reg_timed(r, row, buf);
		if (!mr || ask_write(r, row, (uintptr_t)buf, mr->rkey, round,
				     false, &done))
			goto out;
		row->rounds++;
		if (done.status != IBV_WC_SUCCESS) {
			fprintf(stderr,
				"%s: the RDMA WRITE of round %d: %s after "
				"%.1f ms\n",
				who, round, ibv_wc_status_str(done.status),
				done.ns / 1e6);
			row->write_errors++;
			wait_event(r, row, NULL, 0);
			if (reconnect(r))
				goto out;
		} else {
			row->writes++;
			row->write_ns += done.ns;
		}
		/* Every byte: the pattern of this size and round. */
		if (done.status == IBV_WC_SUCCESS &&
		    pattern_check((const uint64_t *)buf, row->size / 8,
				  pattern_seed(row->size, round, false)))
			row->corrupt++;
		if ((round + 1) % o->free_every == 0) {
			struct ibv_mr *old = mr;

			mr = NULL;
			if (free_round(r, row, &buf, len, old, round))
				goto out;
		} else {
			int err = ibv_dereg_mr(mr);

			mr = NULL;
			if (err) {
				perror("hfi1_showcase: ibv_dereg_mr");
				goto out;
			}
		}
	}
	if (cache_stats(r, &after))
		goto out;
	stats_delta(&row->delta, &before, &after);
	ret = 0;
out:
	if (mr)
		ibv_dereg_mr(mr);
	/*
	 * The last buffer stays until the run ends: unmapped now, its idle
	 * entry's invalidation would land in the next size's counters.
	 */
	row->buf = buf;
	row->len = len;
	row->hit_med_us = median_us(row->hit_ns, row->nhit);
	row->miss_med_us = median_us(row->miss_ns, row->nmiss);
	free(row->hit_ns);
	free(row->miss_ns);
	row->hit_ns = row->miss_ns = NULL;
	return ret;
}

static bool row_ok(const struct row *row)
{
	return !row->corrupt && !row->write_errors && !row->stale_landed &&
	       row->stale_refused == row->stale && row->events == row->frees;
}

static const char *row_integrity(const struct row *row)
{
	if (row->corrupt)
		return "CORRUPT";
	if (row->stale_landed)
		return "STALE LANDED";
	if (row->write_errors)
		return "WRITE FAILED";
	return "OK";
}

static double row_mbps(const struct row *row)
{
	return row->write_ns ?
		       (double)row->size * row->writes * 1e3 / row->write_ns :
		       0;
}

static void size_str(char *s, size_t n, size_t size)
{
	if (size >= (1 << 20) && !(size % (1 << 20)))
		snprintf(s, n, "%zu MiB", size >> 20);
	else if (size >= 1024 && !(size % 1024))
		snprintf(s, n, "%zu KiB", size >> 10);
	else
		snprintf(s, n, "%zu B", size);
}

static void us_str(char *s, size_t n, double us)
{
	if (us < 0)
		snprintf(s, n, "-");
	else if (us < 10)
		snprintf(s, n, "%.2f us", us);
	else if (us < 1000)
		snprintf(s, n, "%.1f us", us);
	else
		snprintf(s, n, "%.2f ms", us / 1e3);
}

struct totals {
	int writes, corrupt, write_errors, frees, events, stale, refused,
		landed, reused;
	uint64_t hits, misses, invalidations;
};

static void sum(struct totals *t, const struct row *rows, int n)
{
	int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < n; i++) {
		t->writes += rows[i].rounds;
		t->corrupt += rows[i].corrupt;
		t->write_errors += rows[i].write_errors;
		t->frees += rows[i].frees;
		t->events += rows[i].events;
		t->stale += rows[i].stale;
		t->refused += rows[i].stale_refused;
		t->landed += rows[i].stale_landed;
		t->reused += rows[i].reused;
		t->hits += rows[i].delta.hits;
		t->misses += rows[i].delta.misses;
		t->invalidations += rows[i].delta.invalidations;
	}
}

static void print_table(const struct receiver *r, const struct row *rows, int n,
			bool pass, double secs)
{
	const struct opts *o = r->o;
	struct totals t;
	int i;

	sum(&t, rows, n);
	printf("hfi1_showcase: writer pid %d on %s (LID %u, QP 0x%x) -> "
	       "receiver pid %d on %s (LID %u, QP 0x%x)\n",
	       (int)r->writer_pid, o->wdev, r->writer_lid, r->writer_qpn,
	       (int)getpid(), o->rdev, r->e.lid, r->e.qp->qp_num);
	printf("Each round the receiver registers its buffer, the writer "
	       "RDMA-WRITEs a pattern\nunique to the size and round into it, "
	       "the receiver checks every byte and\nderegisters. Every %d "
	       "rounds it frees the buffer while registered, waits for\nthe "
	       "invalidation event, maps new memory at the same address and "
	       "asks for a\nwrite there with the old rkey.\n\n",
	       o->free_every);
	printf("%9s %6s %5s %6s %5s %6s %7s %9s %9s %8s  %s\n", "size",
	       "rounds", "hits", "misses", "inval", "events", "stale",
	       "reg hit", "reg miss", "MB/s", "integrity");
	printf("%9s %6s %5s %6s %5s %6s %7s %9s %9s\n", "", "", "", "", "", "",
	       "refused", "(median)", "(median)");
	for (i = 0; i < n; i++) {
		const struct row *w = &rows[i];
		char sz[32], hit[16], miss[16], stale[32];

		size_str(sz, sizeof(sz), w->size);
		us_str(hit, sizeof(hit), w->hit_med_us);
		us_str(miss, sizeof(miss), w->miss_med_us);
		snprintf(stale, sizeof(stale), "%d/%d", w->stale_refused,
			 w->stale);
		printf("%9s %6d %5" PRIu64 " %6" PRIu64 " %5" PRIu64
		       " %6d %7s %9s %9s %8.0f  %s\n",
		       sz, w->rounds, w->delta.hits, w->delta.misses,
		       w->delta.invalidations, w->events, stale, hit, miss,
		       row_mbps(w), row_integrity(w));
	}
	printf("\nhits, misses, inval: the receiver's MR cache "
	       "(hfi1dv_query_mr_cache); events:\nHFI1DV_EVENT_MR_INVALIDATED "
	       "for the freed MR (hfi1dv_get_mr_event); stale\nrefused: old-rkey "
	       "writes that failed with REM_ACCESS_ERR and left the new\n"
	       "memory untouched; MB/s: RDMA WRITE, post to completion.\n\n");
	/* One line: what a script or a glance looks for. */
	printf("verdict: %s: %d/%d writes intact", pass ? "PASS" : "FAIL",
	       t.writes - t.write_errors - t.corrupt, t.writes);
	if (t.corrupt)
		printf(", %d corrupt", t.corrupt);
	if (t.write_errors)
		printf(", %d failed", t.write_errors);
	printf(", %d/%d invalidation events, %d/%d stale writes refused",
	       t.events, t.frees, t.refused, t.stale);
	if (t.landed)
		printf(", %d landed", t.landed);
	printf(" (%.1f s)\n", secs);
}

static void print_json(const struct receiver *r, const struct row *rows, int n,
		       bool pass, double secs)
{
	const struct opts *o = r->o;
	struct totals t;
	int i;

	sum(&t, rows, n);
	printf("{\n  \"writer\": {\"device\": \"%s\", \"pid\": %d, \"lid\": %u, "
	       "\"qpn\": %u},\n",
	       o->wdev, (int)r->writer_pid, r->writer_lid, r->writer_qpn);
	printf("  \"receiver\": {\"device\": \"%s\", \"pid\": %d, \"lid\": %u, "
	       "\"qpn\": %u},\n",
	       o->rdev, (int)getpid(), r->e.lid, r->e.qp->qp_num);
	printf("  \"rounds\": %d,\n  \"free_every\": %d,\n  \"sizes\": [\n",
	       o->rounds, o->free_every);
	for (i = 0; i < n; i++) {
		const struct row *w = &rows[i];

		printf("    {\"size\": %zu, \"rounds\": %d, \"writes\": %d, "
		       "\"write_errors\": %d, \"corrupt_rounds\": %d, "
		       "\"hits\": %" PRIu64 ", \"misses\": %" PRIu64
		       ", \"evictions\": %" PRIu64
		       ", \"invalidations\": %" PRIu64
		       ", \"invalidated_in_use\": %" PRIu64 ", \"frees\": %d, "
		       "\"addr_reused\": %d, \"events\": %d, "
		       "\"qp_access_err_events\": %d, \"stale_writes\": %d, "
		       "\"stale_refused\": %d, \"stale_landed\": %d, ",
		       w->size, w->rounds, w->writes, w->write_errors,
		       w->corrupt, w->delta.hits, w->delta.misses,
		       w->delta.evictions, w->delta.invalidations,
		       w->delta.invalidated_in_use, w->frees, w->reused,
		       w->events, w->qp_events, w->stale, w->stale_refused,
		       w->stale_landed);
		if (w->hit_med_us >= 0)
			printf("\"reg_hit_us_median\": %.3f, ", w->hit_med_us);
		else
			printf("\"reg_hit_us_median\": null, ");
		if (w->miss_med_us >= 0)
			printf("\"reg_miss_us_median\": %.3f, ",
			       w->miss_med_us);
		else
			printf("\"reg_miss_us_median\": null, ");
		printf("\"mb_per_s\": %.1f, \"integrity\": \"%s\", "
		       "\"ok\": %s}%s\n",
		       row_mbps(w), row_integrity(w),
		       row_ok(w) ? "true" : "false", i + 1 < n ? "," : "");
	}
	printf("  ],\n  \"totals\": {\"writes\": %d, \"write_errors\": %d, "
	       "\"corrupt\": %d, "
	       "\"hits\": %" PRIu64 ", \"misses\": %" PRIu64
	       ", \"invalidations\": %" PRIu64 ", \"frees\": %d, "
	       "\"events\": %d, \"stale_writes\": %d, \"stale_refused\": %d, "
	       "\"stale_landed\": %d},\n",
	       t.writes, t.write_errors, t.corrupt, t.hits, t.misses,
	       t.invalidations, t.frees, t.events, t.stale, t.refused,
	       t.landed);
	printf("  \"seconds\": %.3f,\n  \"verdict\": \"%s\"\n}\n", secs,
	       pass ? "PASS" : "FAIL");
}

static int receiver(const struct opts *o, int fd, pid_t writer_pid)
{
	struct receiver r = { .o = o, .fd = fd, .writer_pid = writer_pid };
	struct row rows[MAX_SIZES] = {};
	struct msg m;
	uint64_t t0 = now_ns();
	bool pass = false;
	int i, n = 0, ret = 1;

	if (end_open(&r.e, o->rdev))
		goto out;
	m = (struct msg){ .type = MSG_HELLO,
			  .lid = r.e.lid,
			  .qpn = r.e.qp->qp_num,
			  .pid = getpid() };
	if (msg_send(fd, &m) || msg_recv(fd, &m, MSG_HELLO))
		goto out;
	r.writer_lid = m.lid;
	r.writer_qpn = m.qpn;
	r.e.peer_lid = m.lid;
	r.e.peer_qpn = m.qpn;
	if (msg_recv(fd, &m, MSG_READY) || qp_connect(&r.e))
		goto out;
	for (i = 0; i < o->nsizes; i++) {
		rows[i].size = o->sizes[i];
		n++;
		if (run_size(&r, &rows[i])) {
			r.failed = true;
			break;
		}
	}
	m = (struct msg){ .type = MSG_BYE };
	msg_send(fd, &m);
	ret = 0;
out:
	if (ret)
		r.failed = true;
	pass = !r.failed;
	for (i = 0; i < n; i++)
		pass = pass && row_ok(&rows[i]);
	if (n) {
		double secs = (now_ns() - t0) / 1e9;

		if (o->json)
			print_json(&r, rows, n, pass, secs);
		else
			print_table(&r, rows, n, pass, secs);
		if (r.failed)
			fprintf(stderr, "%s: stopped early: see above\n", who);
	}
	for (i = 0; i < n; i++)
		if (rows[i].buf)
			munmap(rows[i].buf, rows[i].len);
	end_close(&r.e);
	return pass ? 0 : 1;
}

/* --- options --- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hfi1_showcase [-d DEV] [-D DEV] [--sizes LIST] "
		"[--rounds N]\n"
		"                     [--free-every N] [--json]\n"
		"RDMA WRITEs from a writer process on -d (default hfi1_0) into "
		"MRs that a\nreceiver process on -D (default hfi1_1) "
		"registers through libhfi1's MR\ncache, frees and reuses; "
		"prints the cache's hits and misses, invalidations,\nevents, "
		"stale writes refused, bandwidth and a data-integrity verdict.\n"
		"  --sizes LIST     message sizes, multiples of 8 with K, M "
		"suffixes\n"
		"                   (default 4K,16K,64K,256K,1M,4M)\n"
		"  --rounds N       rounds per size (default %d)\n"
		"  --free-every N   free a buffer while registered every N "
		"rounds (default %d)\n"
		"  --json           one JSON object instead of the table\n"
		"Exits 0 when every check passed, 1 otherwise, 2 for a bad "
		"option.\n",
		DEF_ROUNDS, DEF_FREE_EVERY);
}

static int parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'K' || *end == 'k') {
		v <<= 10;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		v <<= 20;
		end++;
	}
	if (!strcmp(end, "iB"))
		end += 2;
	if (*end || !v || v % 8 || v > MAX_SIZE)
		return -1;
	*out = v;
	return 0;
}

static int parse_sizes(const char *arg, struct opts *o)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	int ret = 0;

	if (!copy)
		return -1;
	o->nsizes = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nsizes == MAX_SIZES ||
		    parse_size(tok, &o->sizes[o->nsizes])) {
			ret = -1;
			break;
		}
		o->nsizes++;
	}
	free(copy);
	return ret || !o->nsizes ? -1 : 0;
}

static int parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "peer", required_argument, NULL, 'D' },
		{ "sizes", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'n' },
		{ "free-every", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	o->wdev = "hfi1_0";
	o->rdev = "hfi1_1";
	o->rounds = DEF_ROUNDS;
	o->free_every = DEF_FREE_EVERY;
	o->nsizes = sizeof(default_sizes) / sizeof(default_sizes[0]);
	memcpy(o->sizes, default_sizes, sizeof(default_sizes));
	while ((c = getopt_long(argc, argv, "d:D:s:n:f:jh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd':
			o->wdev = optarg;
			break;
		case 'D':
			o->rdev = optarg;
			break;
		case 's':
			if (parse_sizes(optarg, o)) {
				fprintf(stderr,
					"hfi1_showcase: bad --sizes %s: at "
					"most %d sizes, each a multiple of 8 "
					"up to %lu MiB\n",
					optarg, MAX_SIZES, MAX_SIZE >> 20);
				return 2;
			}
			break;
		case 'n':
			if (parse_int(optarg, 1, 100000, &o->rounds)) {
				fprintf(stderr,
					"hfi1_showcase: bad --rounds %s\n",
					optarg);
				return 2;
			}
			break;
		case 'f':
			if (parse_int(optarg, 1, 100000, &o->free_every)) {
				fprintf(stderr,
					"hfi1_showcase: bad --free-every %s\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {};
	int sv[2], status, ret;
	pid_t pid;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret == 1 ? 0 : ret;
	/* Two processes, each with its own context: fork before any verb. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("hfi1_showcase: socketpair");
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("hfi1_showcase: fork");
		return 1;
	}
	if (!pid) {
		close(sv[0]);
		ret = writer(&o, sv[1]);
		close(sv[1]);
		exit(ret);
	}
	close(sv[1]);
	ret = receiver(&o, sv[0], pid);
	close(sv[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("hfi1_showcase: waitpid");
			return 1;
		}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return ret;
	/* A receiver that failed said why, and the writer saw it go. */
	if (!ret)
		fprintf(stderr, "hfi1_showcase: the writer failed (%s %d)\n",
			WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) :
					    WTERMSIG(status));
	return 1;
}
