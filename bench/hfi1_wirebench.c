// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_wirebench: the soft HFI's data path between two processes (one on
 * hfi1_0, one on hfi1_1), against raw AF_UNIX sockets between the same
 * two processes, in the same run:
 *
 *  - 1 MiB RC RDMA WRITE bandwidth, against a raw stream with the same
 *    socket buffer size as the soft HFI's links;
 *  - 8-byte RC SEND latency (half a round trip) with polling receivers,
 *    against a raw ping-pong with blocking receivers and one with
 *    busy-polling receivers;
 *  - the same with blocking receivers (a completion channel), against
 *    the raw blocking ping-pong;
 *  - the placement floor: one io_uring_enter that moves 8 bytes from a
 *    pipe into a registered buffer (READ_FIXED), the least a message
 *    received costs while data lands only in pinned pages;
 *  - the floor ping-pong: the raw busy-polling ping-pong with that rule
 *    kept (write() into a pipe, a shared-memory count, READ_FIXED), the
 *    least a polled message costs on this wire, whose small payloads go
 *    through a pipe (the link's lane).
 *
 * Each figure is the median of several rounds; the ratios are what the
 * targets are about (Documentation/soft-hfi-verbs.md, "Speed").
 *
 *   hfi1_wirebench [--quick] [--json]     (on a soft HFI with hfi1_0, hfi1_1)
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <infiniband/verbs.h>
#include <liburing.h>

#include "bench_common.h"

#define MSG_BW (1 << 20)
#define BW_WINDOW 8
#define SNDBUF (4 << 20)

struct peer_info {
	uint16_t lid;
	uint32_t qpn;
	uint64_t addr;
	uint32_t rkey;
};

struct end {
	struct ibv_context *ctx;
	struct ibv_comp_channel *ch;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	char *buf;
	struct peer_info me;
};

static struct bench_args args;
static int rounds, bw_iters, lat_iters;

/*
 * The floor ping-pong's doorbell (the messages each process wrote) and
 * its pipes ([0]: the parent's to the child, [1]: back).
 */
static _Atomic uint64_t *floor_bell;
static int floor_pipe[2][2];

static void die(const char *what)
{
	fprintf(stderr, "hfi1_wirebench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/*
 * A blocking write to an AF_UNIX stream may still return short (seen
 * for 1 MiB writes, errno 0, about one run in eight): write the rest.
 */
static void xwrite(int fd, const void *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		p = (const char *)p + w;
		n -= w;
	}
}

static void xread(int fd, void *p, size_t n)
{
	if (recv(fd, p, n, MSG_WAITALL) != (ssize_t)n)
		die("control read");
}

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	int i;

	for (i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	if (!ctx) {
		fprintf(stderr, "hfi1_wirebench: no device %s (hfi1-soft up)\n",
			name);
		exit(1);
	}
	return ctx;
}

static void end_open(struct end *e, const char *dev, bool channel)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 64,
			 .max_recv_wr = 64,
			 .max_send_sge = 1,
			 .max_recv_sge = 1,
			 .max_inline_data = 64 },
	};
	struct ibv_port_attr pa;

	memset(e, 0, sizeof(*e));
	e->ctx = open_dev(dev);
	if (channel) {
		e->ch = ibv_create_comp_channel(e->ctx);
		if (!e->ch)
			die("ibv_create_comp_channel");
	}
	e->pd = ibv_alloc_pd(e->ctx);
	e->cq = ibv_create_cq(e->ctx, 256, NULL, e->ch, 0);
	if (!e->pd || !e->cq)
		die("PD or CQ");
	ia.send_cq = ia.recv_cq = e->cq;
	e->qp = ibv_create_qp(e->pd, &ia);
	e->buf = bench_alloc_buffer(MSG_BW);
	if (!e->qp || !e->buf)
		die("QP or buffer");
	e->mr = ibv_reg_mr(e->pd, e->buf, MSG_BW,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!e->mr || ibv_query_port(e->ctx, 1, &pa))
		die("MR or port");
	e->me.lid = pa.lid;
	e->me.qpn = e->qp->qp_num;
	e->me.addr = (uintptr_t)e->buf;
	e->me.rkey = e->mr->rkey;
}

static void end_close(struct end *e)
{
	ibv_dereg_mr(e->mr);
	ibv_destroy_qp(e->qp);
	ibv_destroy_cq(e->cq);
	if (e->ch)
		ibv_destroy_comp_channel(e->ch);
	ibv_dealloc_pd(e->pd);
	munmap(e->buf, MSG_BW);
	ibv_close_device(e->ctx);
}

static void end_connect(struct end *e, const struct peer_info *p)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_ACCESS_FLAGS))
		die("INIT");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = p->qpn;
	a.ah_attr.dlid = p->lid;
	a.ah_attr.port_num = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 1;
	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				  IBV_QP_MAX_DEST_RD_ATOMIC |
				  IBV_QP_MIN_RNR_TIMER))
		die("RTR");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				  IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
				  IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS");
}

/* The receives the ping-pongs keep posted: one taken, one posted. */
#define LAT_RECVS 16

static void post_recv(struct end *e)
{
	struct ibv_sge sge = { (uintptr_t)e->buf, 64, e->mr->lkey };
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;

	if ((errno = ibv_post_recv(e->qp, &wr, &bad)))
		die("ibv_post_recv");
}

static void post_send8(struct end *e)
{
	struct ibv_sge sge = { (uintptr_t)e->buf + 4096, 8, e->mr->lkey };
	struct ibv_send_wr wr = {
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE,
	}, *bad;

	if ((errno = ibv_post_send(e->qp, &wr, &bad)))
		die("ibv_post_send");
}

static void post_recvs(struct end *e)
{
	int i;

	for (i = 0; i < LAT_RECVS; i++)
		post_recv(e);
}

/* The next receive completion: spinning, or from the channel. */
static void wait_recv(struct end *e, bool block)
{
	struct ibv_wc wc;
	struct ibv_cq *cq;
	void *cq_ctx;
	int n;

	for (;;) {
		n = ibv_poll_cq(e->cq, 1, &wc);
		if (n < 0)
			die("ibv_poll_cq");
		if (n) {
			if (wc.status != IBV_WC_SUCCESS) {
				fprintf(stderr, "hfi1_wirebench: %s\n",
					ibv_wc_status_str(wc.status));
				exit(1);
			}
			if (wc.opcode == IBV_WC_RECV)
				return;
			continue;
		}
		if (!block)
			continue;
		if (ibv_req_notify_cq(e->cq, 0))
			die("ibv_req_notify_cq");
		/* Armed: look once more before sleeping. */
		n = ibv_poll_cq(e->cq, 1, &wc);
		if (n > 0) {
			if (wc.opcode == IBV_WC_RECV &&
			    wc.status == IBV_WC_SUCCESS)
				return;
			continue;
		}
		if (ibv_get_cq_event(e->ch, &cq, &cq_ctx))
			die("ibv_get_cq_event");
		ibv_ack_cq_events(cq, 1);
	}
}

/* --- the raw baselines, on a socket pair with the links' buffers --- */

static void size_socket(int fd)
{
	int sz = SNDBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static void raw_pingpong(int fd, bool first, bool poll, int iters)
{
	char b[8] = {};
	int i;

	for (i = 0; i < iters; i++) {
		if (first)
			xwrite(fd, b, 8);
		if (poll) {
			size_t got = 0;

			while (got < 8) {
				ssize_t n = recv(fd, b + got, 8 - got,
						 MSG_DONTWAIT);

				if (n > 0)
					got += n;
				else if (n == 0 ||
					 (errno != EAGAIN && errno != EINTR))
					die("raw recv");
			}
		} else {
			xread(fd, b, 8);
		}
		if (!first)
			xwrite(fd, b, 8);
	}
}

/* An io_uring whose one registered buffer is @buf (4 KiB). */
static void fixed_ring_init(struct io_uring *ring, void *buf)
{
	struct iovec iov = { buf, 4096 };

	errno = -io_uring_queue_init(4, ring, 0);
	if (errno)
		die("io_uring_queue_init");
	errno = -io_uring_register_buffers(ring, &iov, 1);
	if (errno)
		die("io_uring_register_buffers");
}

/* 8 bytes from @fd into @buf with one READ_FIXED: one io_uring_enter. */
static void read_fixed8(struct io_uring *ring, int fd, void *buf)
{
	struct io_uring_cqe *cqe;

	io_uring_prep_read_fixed(io_uring_get_sqe(ring), fd, buf, 8, -1, 0);
	if (io_uring_submit_and_wait(ring, 1) != 1 ||
	    io_uring_peek_cqe(ring, &cqe) || cqe->res != 8) {
		errno = EIO;
		die("READ_FIXED");
	}
	io_uring_cqe_seen(ring, cqe);
}

/*
 * The raw busy-polling ping-pong with the pinned-page rule kept, at the
 * least cost the wire allows: the sender write()s the 8 bytes into a
 * pipe and counts them in shared memory; the receiver spins on the count,
 * then places them with one READ_FIXED into a registered buffer. Two
 * system calls a message, as the soft HFI's polled path makes for a
 * small one (its lane).
 */
static void floor_pingpong(bool first, int iters)
{
	static char buf[4096] __attribute__((aligned(4096)));
	static struct io_uring ring;
	static uint64_t taken; /* the peer's messages read, every round */
	static bool ready;
	_Atomic uint64_t *mine = &floor_bell[first ? 0 : 1];
	_Atomic uint64_t *theirs = &floor_bell[first ? 1 : 0];
	char b[8] = {};
	int i;

	if (!ready) {
		fixed_ring_init(&ring, buf);
		ready = true;
	}
	for (i = 0; i < iters; i++) {
		if (first) {
			xwrite(floor_pipe[0][1], b, 8);
			atomic_fetch_add(mine, 1);
		}
		while (atomic_load(theirs) == taken)
			;
		taken++;
		read_fixed8(&ring, floor_pipe[first ? 1 : 0][0], buf);
		if (!first) {
			xwrite(floor_pipe[1][1], b, 8);
			atomic_fetch_add(mine, 1);
		}
	}
}

enum phase {
	PH_RAW_BW,
	PH_WRITE_BW,
	PH_RAW_LAT_BLOCK,
	PH_RAW_LAT_POLL,
	PH_SEND_LAT_POLL,
	PH_SEND_LAT_BLOCK,
	PH_PLACE_FLOOR,
	PH_FLOOR_LAT,
	PH_NUM,
	PH_EXIT = 99,
};

static const char *const phase_name[PH_NUM] = {
	"raw_stream_bw_gbs", "rdma_write_bw_gbs", "raw_lat_block_us",
	"raw_lat_poll_us",   "send_lat_poll_us",  "send_lat_block_us",
	"place_floor_us",    "floor_lat_us",
};

/* The child: hfi1_1, the passive side and the echoing side. */
static void child(int ctl, int raw)
{
	struct end e[2];
	char *sink = malloc(MSG_BW);
	int ph, i, k;

	end_open(&e[0], "hfi1_1", false);
	end_open(&e[1], "hfi1_1", true);
	xwrite(ctl, &e[0].me, sizeof(e[0].me));
	xwrite(ctl, &e[1].me, sizeof(e[1].me));
	for (k = 0; k < 2; k++) {
		struct peer_info p;

		xread(ctl, &p, sizeof(p));
		end_connect(&e[k], &p);
		post_recvs(&e[k]);
	}
	for (;;) {
		xread(ctl, &ph, sizeof(ph));
		switch (ph) {
		case PH_RAW_BW: {
			size_t left = (size_t)bw_iters * MSG_BW;

			while (left) {
				ssize_t n = read(raw, sink,
						 left < MSG_BW ? left : MSG_BW);

				if (n <= 0)
					die("raw read");
				left -= n;
			}
			break;
		}
		case PH_WRITE_BW:
			break; /* passive: the engine places */
		case PH_PLACE_FLOOR:
			break; /* the parent's alone */
		case PH_FLOOR_LAT:
			floor_pingpong(false, lat_iters);
			break;
		case PH_RAW_LAT_BLOCK:
		case PH_RAW_LAT_POLL:
			raw_pingpong(raw, false, ph == PH_RAW_LAT_POLL,
				     lat_iters);
			break;
		case PH_SEND_LAT_POLL:
		case PH_SEND_LAT_BLOCK:
			k = ph == PH_SEND_LAT_BLOCK;
			xwrite(ctl, &ph, sizeof(ph)); /* ready */
			for (i = 0; i < lat_iters; i++) {
				wait_recv(&e[k], k);
				post_recv(&e[k]);
				post_send8(&e[k]);
			}
			break;
		case PH_EXIT:
			end_close(&e[0]);
			end_close(&e[1]);
			free(sink);
			exit(0);
		}
		xwrite(ctl, &ph, sizeof(ph)); /* done */
	}
}

/*
 * One io_uring_enter per 8-byte READ_FIXED from a pipe that holds the
 * bytes already: what the soft HFI pays at least for each small message
 * it receives, in one process, with nothing to wait for. The pipe is
 * filled a page at a time, outside the clock: a pipe may hold no more.
 */
static double place_floor_us(int iters)
{
	static char buf[4096] __attribute__((aligned(4096)));
	static const char fill[4096];
	struct io_uring ring;
	uint64_t ns = 0, t0;
	int p[2], i, k, n;

	if (pipe(p))
		die("pipe");
	fixed_ring_init(&ring, buf);
	for (i = 0; i < iters; i += n) {
		n = iters - i < 512 ? iters - i : 512;
		xwrite(p[1], fill, (size_t)n * 8);
		t0 = bench_now_ns();
		for (k = 0; k < n; k++)
			read_fixed8(&ring, p[0], buf);
		ns += bench_now_ns() - t0;
	}
	io_uring_queue_exit(&ring);
	close(p[0]);
	close(p[1]);
	return ns / 1e3 / iters;
}

static double run_phase(int ctl, int raw, struct end *e,
			const struct peer_info *peer, int ph)
{
	uint64_t t0, t1;
	int ack, i, k;

	xwrite(ctl, &ph, sizeof(ph));
	switch (ph) {
	case PH_RAW_BW:
		t0 = bench_now_ns();
		for (i = 0; i < bw_iters; i++)
			xwrite(raw, e[0].buf, MSG_BW);
		xread(ctl, &ack, sizeof(ack));
		t1 = bench_now_ns();
		return (double)bw_iters * MSG_BW / (t1 - t0);
	case PH_WRITE_BW: {
		struct ibv_sge sge = { (uintptr_t)e[0].buf, MSG_BW,
				       e[0].mr->lkey };
		struct ibv_send_wr wr = {
			.sg_list = &sge,
			.num_sge = 1,
			.opcode = IBV_WR_RDMA_WRITE,
			.send_flags = IBV_SEND_SIGNALED,
		}, *bad;
		struct ibv_wc wc[BW_WINDOW];
		int posted = 0, done = 0, n;

		wr.wr.rdma.remote_addr = peer[0].addr;
		wr.wr.rdma.rkey = peer[0].rkey;
		t0 = bench_now_ns();
		while (done < bw_iters) {
			while (posted < bw_iters && posted - done < BW_WINDOW) {
				if (ibv_post_send(e[0].qp, &wr, &bad))
					die("ibv_post_send");
				posted++;
			}
			n = ibv_poll_cq(e[0].cq, BW_WINDOW, wc);
			for (i = 0; i < n; i++)
				if (wc[i].status != IBV_WC_SUCCESS) {
					fprintf(stderr, "write: %s\n",
						ibv_wc_status_str(
							wc[i].status));
					exit(1);
				}
			done += n > 0 ? n : 0;
		}
		t1 = bench_now_ns();
		xread(ctl, &ack, sizeof(ack));
		return (double)bw_iters * MSG_BW / (t1 - t0);
	}
	case PH_PLACE_FLOOR: {
		double us = place_floor_us(lat_iters);

		xread(ctl, &ack, sizeof(ack));
		return us;
	}
	case PH_FLOOR_LAT:
		t0 = bench_now_ns();
		floor_pingpong(true, lat_iters);
		t1 = bench_now_ns();
		xread(ctl, &ack, sizeof(ack));
		return (t1 - t0) / 2e3 / lat_iters;
	case PH_RAW_LAT_BLOCK:
	case PH_RAW_LAT_POLL:
		t0 = bench_now_ns();
		raw_pingpong(raw, true, ph == PH_RAW_LAT_POLL, lat_iters);
		t1 = bench_now_ns();
		xread(ctl, &ack, sizeof(ack));
		return (t1 - t0) / 2e3 / lat_iters;
	default:
		k = ph == PH_SEND_LAT_BLOCK;
		xread(ctl, &ack, sizeof(ack)); /* the child is ready */
		t0 = bench_now_ns();
		for (i = 0; i < lat_iters; i++) {
			post_send8(&e[k]);
			wait_recv(&e[k], k);
			post_recv(&e[k]);
		}
		t1 = bench_now_ns();
		xread(ctl, &ack, sizeof(ack));
		/* Completions of our sends, left in the CQ: drain them. */
		{
			struct ibv_wc wc[16];

			while (ibv_poll_cq(e[k].cq, 16, wc) > 0)
				;
		}
		return (t1 - t0) / 2e3 / lat_iters;
	}
}

int main(int argc, char **argv)
{
	double res[PH_NUM][16], med[PH_NUM];
	struct peer_info peer[2];
	struct bench_cpus cpus;
	struct end e[2];
	int ctl[2], raw[2], r, ph, status;
	char cbuf[128];
	pid_t pid;

	bench_parse_args(argc, argv,
			 "the soft HFI's RC data path between two processes "
			 "against raw AF_UNIX sockets",
			 &args);
	rounds = args.quick ? 1 : 5;
	bw_iters = args.quick ? 16 : 256;
	lat_iters = args.quick ? 200 : 5000;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, raw))
		die("socketpair");
	size_socket(raw[0]);
	size_socket(raw[1]);
	floor_bell = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (floor_bell == MAP_FAILED)
		die("mmap");
	if (pipe(floor_pipe[0]) || pipe(floor_pipe[1]))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		close(ctl[0]);
		close(raw[0]);
		child(ctl[1], raw[1]);
	}
	close(ctl[1]);
	close(raw[1]);
	end_open(&e[0], "hfi1_0", false);
	end_open(&e[1], "hfi1_0", true);
	xread(ctl[0], &peer[0], sizeof(peer[0]));
	xread(ctl[0], &peer[1], sizeof(peer[1]));
	xwrite(ctl[0], &e[0].me, sizeof(e[0].me));
	xwrite(ctl[0], &e[1].me, sizeof(e[1].me));
	end_connect(&e[0], &peer[0]);
	end_connect(&e[1], &peer[1]);
	post_recvs(&e[0]);
	post_recvs(&e[1]);

	for (r = 0; r < rounds; r++)
		for (ph = 0; ph < PH_NUM; ph++)
			res[ph][r] = run_phase(ctl[0], raw[0], e, peer, ph);
	for (ph = 0; ph < PH_NUM; ph++)
		med[ph] = bench_median(res[ph], rounds);
	ph = PH_EXIT;
	xwrite(ctl[0], &ph, sizeof(ph));
	waitpid(pid, &status, 0);
	end_close(&e[0]);
	end_close(&e[1]);

	bench_get_cpus(&cpus);
	if (args.json) {
		printf("{\"rounds\":%d,", rounds);
		bench_print_cpus_json(&cpus, args.cpu);
		for (ph = 0; ph < PH_NUM; ph++)
			printf(",\"%s\":%.3f", phase_name[ph], med[ph]);
		printf(",\"write_bw_vs_raw\":%.3f,"
		       "\"send_lat_poll_vs_raw_block\":%.3f,"
		       "\"send_lat_poll_vs_raw_poll\":%.3f,"
		       "\"send_lat_block_vs_raw_block\":%.3f,"
		       "\"place_floor_vs_raw_block\":%.3f,"
		       "\"floor_lat_vs_raw_block\":%.3f,"
		       "\"floor_lat_vs_raw_poll\":%.3f,"
		       "\"send_lat_poll_vs_floor\":%.3f}\n",
		       med[PH_WRITE_BW] / med[PH_RAW_BW],
		       med[PH_SEND_LAT_POLL] / med[PH_RAW_LAT_BLOCK],
		       med[PH_SEND_LAT_POLL] / med[PH_RAW_LAT_POLL],
		       med[PH_SEND_LAT_BLOCK] / med[PH_RAW_LAT_BLOCK],
		       med[PH_PLACE_FLOOR] / med[PH_RAW_LAT_BLOCK],
		       med[PH_FLOOR_LAT] / med[PH_RAW_LAT_BLOCK],
		       med[PH_FLOOR_LAT] / med[PH_RAW_LAT_POLL],
		       med[PH_SEND_LAT_POLL] / med[PH_FLOOR_LAT]);
		return 0;
	}
	printf("hfi1_wirebench: hfi1_0 <-> hfi1_1, two processes, median of %d rounds\n",
	       rounds);
	printf("  %s\n", bench_cpus_str(&cpus, args.cpu, cbuf, sizeof(cbuf)));
	printf("  1 MiB bandwidth: raw AF_UNIX stream %.2f GB/s, RC RDMA WRITE %.2f GB/s: %.2fx (target >= 0.8x)\n",
	       med[PH_RAW_BW], med[PH_WRITE_BW],
	       med[PH_WRITE_BW] / med[PH_RAW_BW]);
	printf("  8-byte half round trip: raw blocking %.2f us, raw busy-polling %.2f us\n",
	       med[PH_RAW_LAT_BLOCK], med[PH_RAW_LAT_POLL]);
	printf("    RC SEND, polling:  %.2f us: %.2fx raw blocking (target <= 0.15x), %.2fx raw polling (target <= 2x)\n",
	       med[PH_SEND_LAT_POLL],
	       med[PH_SEND_LAT_POLL] / med[PH_RAW_LAT_BLOCK],
	       med[PH_SEND_LAT_POLL] / med[PH_RAW_LAT_POLL]);
	printf("    RC SEND, blocking: %.2f us: %.2fx raw blocking (target <= 1.3x)\n",
	       med[PH_SEND_LAT_BLOCK],
	       med[PH_SEND_LAT_BLOCK] / med[PH_RAW_LAT_BLOCK]);
	printf("  placement floor (one 8-byte READ_FIXED from a pipe, one process): %.2f us: %.2fx raw blocking\n",
	       med[PH_PLACE_FLOOR],
	       med[PH_PLACE_FLOOR] / med[PH_RAW_LAT_BLOCK]);
	printf("  floor ping-pong (write into a pipe, a shared count, one READ_FIXED): %.2f us: %.2fx raw blocking, %.2fx raw polling; RC SEND polling is %.2fx it\n",
	       med[PH_FLOOR_LAT], med[PH_FLOOR_LAT] / med[PH_RAW_LAT_BLOCK],
	       med[PH_FLOOR_LAT] / med[PH_RAW_LAT_POLL],
	       med[PH_SEND_LAT_POLL] / med[PH_FLOOR_LAT]);
	return 0;
}
