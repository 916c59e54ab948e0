// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_demo: the main job of the README. Opens an hfi1 device through the
 * stock libibverbs, prints what it reports, allocates a PD and shows the
 * MR cache at work: hits against a miss, an invalidation delivered through
 * the async event queue, and the cache's counters (hfi1dv). Then data
 * moves: one RDMA WRITE from the device to a peer device (another "host")
 * into an MR the peer's cache serves, and its completion.
 *
 *   hfi1_demo [-d hfi1_0] [-p hfi1_1]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <poll.h>
#include <time.h>
#include <sys/mman.h>
#include <infiniband/verbs.h>
#include <infiniband/hfi1dv.h>

static const char *port_state_str(enum ibv_port_state state)
{
	return ibv_port_state_str(state);
}

static void print_guid(const char *label, __be64 guid)
{
	uint64_t g = be64toh(guid);

	printf("  %-18s %04x:%04x:%04x:%04x\n", label, (unsigned int)(g >> 48),
	       (unsigned int)(g >> 32) & 0xffff,
	       (unsigned int)(g >> 16) & 0xffff, (unsigned int)g & 0xffff);
}

/* The MR cache, seen from an application. */

#define DEMO_BUF (1024 * 1024)
#define DEMO_REPEAT 1000

static int print_cache_counters(struct ibv_context *ctx, const char *when)
{
	struct hfi1dv_mr_cache_stats st = {};
	int ret;

	ret = hfi1dv_query_mr_cache(ctx, &st, sizeof(st));
	if (ret) {
		fprintf(stderr, "hfi1dv_query_mr_cache: %s\n", strerror(ret));
		return ret;
	}
	printf("  counters %s: hits %" PRIu64 ", misses %" PRIu64
	       ", evictions %" PRIu64 ", invalidations %" PRIu64 " (%" PRIu64
	       " in use)\n"
	       "    entries %" PRIu64 " (%" PRIu64 " idle), pinned %" PRIu64
	       " KiB, TIDs %" PRIu64 "\n",
	       when, st.hits, st.misses, st.evictions, st.invalidations,
	       st.invalidated_in_use, st.entries, st.idle_entries,
	       st.pinned_bytes / 1024, st.tids_used);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Register the same 1 MiB buffer again and again: one miss, then hits. */
static int demo_hits(struct ibv_context *ctx, struct ibv_pd *pd)
{
	static uint64_t ns[DEMO_REPEAT];
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	struct ibv_mr *mr;
	char *buf;
	int i;

	buf = mmap(NULL, DEMO_BUF, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 1, DEMO_BUF);
	for (i = 0; i < DEMO_REPEAT; i++) {
		uint64_t t0 = now_ns();

		mr = ibv_reg_mr(pd, buf, DEMO_BUF, access);
		if (!mr) {
			perror("ibv_reg_mr");
			return 1;
		}
		if (ibv_dereg_mr(mr)) {
			perror("ibv_dereg_mr");
			return 1;
		}
		ns[i] = now_ns() - t0;
	}
	printf("\nMR cache: ibv_reg_mr + ibv_dereg_mr of one 1 MiB buffer, "
	       "%d times\n",
	       DEMO_REPEAT);
	printf("  first (a miss: pin and program TIDs) %8.1f us\n",
	       ns[0] / 1000.0);
	qsort(ns + 1, DEMO_REPEAT - 1, sizeof(ns[0]), cmp_u64);
	printf("  then  (hits: median)                 %8.3f us\n",
	       ns[DEMO_REPEAT / 2] / 1000.0);
	munmap(buf, DEMO_BUF);
	return print_cache_counters(ctx, "after");
}

/* Unmap a registered buffer: the MR is invalidated, an event says so. */
static int demo_invalidation(struct ibv_context *ctx, struct ibv_pd *pd)
{
	struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };
	struct hfi1dv_mr_event info = {};
	struct hfi1dv_mr_attr attr = {};
	struct ibv_async_event ev;
	struct ibv_mr *mr;
	size_t len = 256 * 1024;
	char *buf;
	int ret;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 2, len);
	mr = ibv_reg_mr(pd, buf, len,
			IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!mr) {
		perror("ibv_reg_mr");
		return 1;
	}
	printf("\nInvalidation: registered %zu KiB at %p (lkey 0x%x), then "
	       "munmap() it\n",
	       len / 1024, (void *)buf, mr->lkey);
	munmap(buf, len);

	if (poll(&pfd, 1, 5000) != 1) {
		fprintf(stderr, "no async event within 5 s\n");
		return 1;
	}
	if (ibv_get_async_event(ctx, &ev)) {
		perror("ibv_get_async_event");
		return 1;
	}
	if (ev.event_type != (enum ibv_event_type)HFI1DV_EVENT_MR_INVALIDATED) {
		fprintf(stderr, "unexpected async event %d\n", ev.event_type);
		ibv_ack_async_event(&ev);
		return 1;
	}
	ret = hfi1dv_get_mr_event(ctx, &ev, &info, sizeof(info));
	ibv_ack_async_event(&ev);
	if (ret) {
		fprintf(stderr, "hfi1dv_get_mr_event: %s\n", strerror(ret));
		return 1;
	}
	printf("  async event HFI1DV_EVENT_MR_INVALIDATED: lkey 0x%x rkey "
	       "0x%x addr 0x%" PRIx64 " length %" PRIu64 " reason %s\n",
	       info.lkey, info.rkey, info.addr, info.length,
	       info.reason == HFI1DV_MR_INVAL_UNMAPPED ? "unmapped" :
							 "flushed");
	ret = hfi1dv_query_mr(mr, &attr, sizeof(attr));
	if (ret) {
		fprintf(stderr, "hfi1dv_query_mr: %s\n", strerror(ret));
		return 1;
	}
	printf("  the MR is now %s: its keys are refused, so no "
	       "data can land in the old pages\n",
	       attr.valid ? "valid (?!)" : "invalid");
	if (ibv_dereg_mr(mr)) {
		perror("ibv_dereg_mr");
		return 1;
	}
	return print_cache_counters(ctx, "after") || attr.valid;
}

/* Data moving: an RC QP on each device, one RDMA WRITE, its completion. */

struct demo_end {
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	char *buf;
	uint16_t lid;
};

static int demo_end_init(struct ibv_context *ctx, struct demo_end *e)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4,
			 .max_recv_wr = 4,
			 .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_port_attr port;

	if (ibv_query_port(ctx, 1, &port))
		return -1;
	e->lid = port.lid;
	e->pd = ibv_alloc_pd(ctx);
	e->cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	if (!e->pd || !e->cq)
		return -1;
	ia.send_cq = ia.recv_cq = e->cq;
	e->qp = ibv_create_qp(e->pd, &ia);
	e->buf = mmap(NULL, DEMO_BUF, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!e->qp || e->buf == MAP_FAILED)
		return -1;
	memset(e->buf, 0, DEMO_BUF);
	e->mr = ibv_reg_mr(e->pd, e->buf, DEMO_BUF,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	return e->mr ? 0 : -1;
}

static void demo_end_fini(struct demo_end *e)
{
	if (e->mr)
		ibv_dereg_mr(e->mr);
	if (e->qp)
		ibv_destroy_qp(e->qp);
	if (e->cq)
		ibv_destroy_cq(e->cq);
	if (e->pd)
		ibv_dealloc_pd(e->pd);
	if (e->buf && e->buf != MAP_FAILED)
		munmap(e->buf, DEMO_BUF);
}

/* RESET -> INIT -> RTR -> RTS, connected to @peer. */
static int demo_connect(struct demo_end *e, const struct demo_end *peer)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				  IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = peer->qp->qp_num;
	a.ah_attr.dlid = peer->lid;
	a.ah_attr.port_num = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	if (ibv_modify_qp(e->qp, &a,
			  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				  IBV_QP_MAX_DEST_RD_ATOMIC |
				  IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(e->qp, &a,
			     IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
				     IBV_QP_MAX_QP_RD_ATOMIC);
}

static int demo_rdma_write(struct ibv_context *ctx, const char *name,
			   struct ibv_context *peer_ctx, const char *peer)
{
	struct demo_end a = {}, b = {};
	struct ibv_sge sge;
	struct ibv_send_wr wr = {}, *bad;
	struct ibv_wc wc;
	uint64_t t0, t1;
	size_t i;
	int n, ret = -1;

	printf("\nData moving: one RDMA WRITE of %d KiB, %s -> %s\n",
	       DEMO_BUF / 1024, name, peer);
	if (demo_end_init(ctx, &a) || demo_end_init(peer_ctx, &b) ||
	    demo_connect(&a, &b) || demo_connect(&b, &a)) {
		perror("  setting up the QPs");
		goto out;
	}
	printf("  RC QP 0x%x on %s (LID %u) connected to QP 0x%x on %s (LID %u)\n",
	       a.qp->qp_num, name, a.lid, b.qp->qp_num, peer, b.lid);
	printf("  target: %d KiB at %p on %s, rkey 0x%x, served by its MR cache\n",
	       DEMO_BUF / 1024, (void *)b.buf, peer, b.mr->rkey);
	for (i = 0; i < DEMO_BUF; i++)
		a.buf[i] = (char)(i * 31 + 7);
	sge.addr = (uintptr_t)a.buf;
	sge.length = DEMO_BUF;
	sge.lkey = a.mr->lkey;
	wr.wr_id = 0x5eed;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = (uintptr_t)b.buf;
	wr.wr.rdma.rkey = b.mr->rkey;
	t0 = now_ns();
	if (ibv_post_send(a.qp, &wr, &bad)) {
		perror("  ibv_post_send");
		goto out;
	}
	do {
		n = ibv_poll_cq(a.cq, 1, &wc);
	} while (!n && now_ns() - t0 < 5000000000ull);
	t1 = now_ns();
	if (n != 1) {
		fprintf(stderr, "  no completion within 5 s\n");
		goto out;
	}
	printf("  completion: wr_id 0x%" PRIx64
	       ", %s, opcode %s, after %.1f us\n",
	       wc.wr_id, ibv_wc_status_str(wc.status),
	       wc.opcode == IBV_WC_RDMA_WRITE ? "RDMA_WRITE" : "?",
	       (t1 - t0) / 1e3);
	if (wc.status != IBV_WC_SUCCESS)
		goto out;
	if (memcmp(a.buf, b.buf, DEMO_BUF)) {
		fprintf(stderr, "  the data at the target differs\n");
		goto out;
	}
	printf("  the target holds every byte written: data verified\n");
	ret = print_cache_counters(peer_ctx, "on the target");
out:
	demo_end_fini(&a);
	demo_end_fini(&b);
	return ret;
}

static struct ibv_device *find_device(struct ibv_device **list,
				      const char *name)
{
	for (; *list; list++)
		if (!name || !strcmp(ibv_get_device_name(*list), name))
			return *list;
	return NULL;
}

int main(int argc, char **argv)
{
	struct ibv_device_attr_ex attr = {};
	struct ibv_device **list;
	struct ibv_port_attr port;
	struct ibv_device *dev;
	struct ibv_context *ctx;
	union ibv_gid gid;
	const char *name = "hfi1_0", *peer_name = "hfi1_1";
	struct ibv_context *peer_ctx;
	struct ibv_device *peer;
	struct ibv_pd *pd;
	int num, i, opt, ret = 1;

	while ((opt = getopt(argc, argv, "d:p:h")) != -1) {
		if (opt == 'd') {
			name = optarg;
		} else if (opt == 'p') {
			peer_name = optarg;
		} else {
			fprintf(stderr, "usage: %s [-d device] [-p peer]\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}

	list = ibv_get_device_list(&num);
	if (!list) {
		perror("ibv_get_device_list");
		return 1;
	}
	printf("libibverbs lists %d device(s):", num);
	for (i = 0; i < num; i++)
		printf(" %s", ibv_get_device_name(list[i]));
	printf("\n");

	dev = find_device(list, name);
	if (!dev) {
		fprintf(stderr,
			"%s: no such device (is the soft HFI up? "
			"eval \"$(build/bin/hfi1-soft up)\")\n",
			name);
		goto out_free_list;
	}
	ctx = ibv_open_device(dev);
	if (!ctx) {
		fprintf(stderr, "ibv_open_device(%s): %s\n", name,
			strerror(errno));
		goto out_free_list;
	}

	errno = ibv_query_device_ex(ctx, NULL, &attr);
	if (errno) {
		perror("ibv_query_device_ex");
		goto out_close;
	}
	printf("\n%s (%s)\n", name, ibv_node_type_str(dev->node_type));
	printf("  %-18s %s\n", "fw_ver", attr.orig_attr.fw_ver);
	print_guid("node_guid", attr.orig_attr.node_guid);
	printf("  %-18s 0x%04x / 0x%04x\n", "vendor / part",
	       attr.orig_attr.vendor_id, attr.orig_attr.vendor_part_id);
	printf("  %-18s qp %d, cq %d (cqe %d), mr %d, pd %d, sge %d\n",
	       "limits", attr.orig_attr.max_qp, attr.orig_attr.max_cq,
	       attr.orig_attr.max_cqe, attr.orig_attr.max_mr,
	       attr.orig_attr.max_pd, attr.orig_attr.max_sge);

	if (ibv_query_port(ctx, 1, &port)) {
		perror("ibv_query_port");
		goto out_close;
	}
	printf("  port 1\n");
	printf("    %-16s %s\n", "state", port_state_str(port.state));
	printf("    %-16s %s\n", "link_layer",
	       port.link_layer == IBV_LINK_LAYER_INFINIBAND ? "InfiniBand" :
							      "other");
	printf("    %-16s %u (SM LID %u)\n", "lid", port.lid, port.sm_lid);
	printf("    %-16s %d\n", "active_mtu", 128 << port.active_mtu);
	printf("    %-16s 4X EDR (width %u, speed %u)\n", "link",
	       port.active_width, port.active_speed);

	if (ibv_query_gid(ctx, 1, 0, &gid)) {
		perror("ibv_query_gid");
		goto out_close;
	}
	printf("    %-16s", "gid[0]");
	for (i = 0; i < 16; i += 2)
		printf("%s%02x%02x", i ? ":" : " ", gid.raw[i], gid.raw[i + 1]);
	printf("\n");

	pd = ibv_alloc_pd(ctx);
	if (!pd) {
		perror("ibv_alloc_pd");
		goto out_close;
	}
	printf("  allocated PD %u\n", pd->handle);
	if (demo_hits(ctx, pd) || demo_invalidation(ctx, pd)) {
		ibv_dealloc_pd(pd);
		goto out_close;
	}
	if (ibv_dealloc_pd(pd)) {
		perror("ibv_dealloc_pd");
		goto out_close;
	}
	printf("\nfreed the PD: the soft HFI is at work\n");

	peer = find_device(list, peer_name);
	if (!peer || !strcmp(peer_name, name)) {
		printf("\nno peer device %s: bring up a second soft HFI to see data move\n",
		       peer_name);
		ret = 0;
		goto out_close;
	}
	peer_ctx = ibv_open_device(peer);
	if (!peer_ctx) {
		fprintf(stderr, "ibv_open_device(%s): %s\n", peer_name,
			strerror(errno));
		goto out_close;
	}
	ret = demo_rdma_write(ctx, name, peer_ctx, peer_name) ? 1 : 0;
	ibv_close_device(peer_ctx);

out_close:
	ibv_close_device(ctx);
out_free_list:
	ibv_free_device_list(list);
	return ret;
}
