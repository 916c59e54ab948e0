// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_demo: the main job of the README. Opens an hfi1 device through the
 * stock libibverbs, prints what it reports and allocates a PD.
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
#include <infiniband/verbs.h>

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
	if (ibv_dealloc_pd(pd)) {
		perror("ibv_dealloc_pd");
		goto out_close;
	}
	printf("  freed the PD: the soft HFI is at work\n");
	ret = 0;

out_close:
	ibv_close_device(ctx);
out_free_list:
	ibv_free_device_list(list);
	return ret;
}
