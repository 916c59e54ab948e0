// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_demo: the main job of the README. Opens an hfi1 device through the
 * stock libibverbs, prints what it reports, allocates a PD and shows the
 * MR cache at work: hits against a miss, an invalidation delivered through
 * the async event queue, and the cache's counters (hfi1dv).
 *
 *   hfi1_demo [-d hfi1_0]
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
	const char *name = "hfi1_0";
	struct ibv_pd *pd;
	int num, i, opt, ret = 1;

	while ((opt = getopt(argc, argv, "d:h")) != -1) {
		if (opt != 'd') {
			fprintf(stderr, "usage: %s [-d device]\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
		name = optarg;
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
	ret = 0;

out_close:
	ibv_close_device(ctx);
out_free_list:
	ibv_free_device_list(list);
	return ret;
}
