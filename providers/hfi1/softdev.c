// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the soft HFI's device and port attributes.
 *
 * hfi1-soft keeps the soft device's state in a sysfs-shaped tree
 * (Documentation/soft-hfi.md); the provider reads it at every query, as
 * the kernel driver would answer from its own state, so a change made by
 * `hfi1-soft port` shows at once.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "softdev.h"

/* Read ibdev_path/<file> into buf, without the trailing newline. */
static int read_attr(const struct hfi1_device *dev, const char *file, char *buf,
		     size_t size)
{
	char path[IBV_SYSFS_PATH_MAX + 64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dev->ibdev_path, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return errno;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = 0;
	return len ? 0 : ENODATA;
}

int hfi1_soft_read_u64(const struct hfi1_device *dev, const char *file,
		       uint64_t *val)
{
	char buf[64], *end;
	int ret;

	ret = read_attr(dev, file, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	/* "4: ACTIVE" style files: the number, then a colon. */
	if (errno || end == buf || (*end && *end != ':'))
		return EINVAL;
	return 0;
}

/* A GUID as sysfs prints it: "0011:7501:0100:0001". */
int hfi1_soft_read_guid(const struct hfi1_device *dev, const char *file,
			__be64 *guid)
{
	unsigned int part[4];
	char buf[64];
	int ret;

	ret = read_attr(dev, file, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%4x:%4x:%4x:%4x", &part[0], &part[1], &part[2],
		   &part[3]) != 4)
		return EINVAL;
	*guid = htobe64((uint64_t)part[0] << 48 | (uint64_t)part[1] << 32 |
			(uint64_t)part[2] << 16 | part[3]);
	return 0;
}

int hfi1_soft_port_state(const struct hfi1_device *dev,
			 enum ibv_port_state *state)
{
	uint64_t val;
	int ret;

	ret = hfi1_soft_read_u64(dev, "ports/1/state", &val);
	if (ret)
		return ret;
	if (val > IBV_PORT_ACTIVE_DEFER)
		return EINVAL;
	*state = val;
	return 0;
}

int hfi1_soft_query_port(struct hfi1_context *ctx, uint8_t port_num,
			 struct ibv_port_attr *attr)
{
	const struct hfi1_device *dev = ctx->dev;
	uint64_t lid, sm_lid, lmc, sm_sl, cap_mask, phys_state;
	enum ibv_port_state state;
	int ret;

	if (port_num != 1) {
		hfi1_err(ctx, "port %u does not exist (the HFI has port 1)\n",
			 port_num);
		return EINVAL;
	}

	ret = hfi1_soft_port_state(dev, &state);
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "ports/1/phys_state",
					 &phys_state);
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "ports/1/lid", &lid);
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "ports/1/sm_lid", &sm_lid);
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "ports/1/lid_mask_count", &lmc);
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "ports/1/sm_sl", &sm_sl);
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "ports/1/cap_mask", &cap_mask);
	if (ret) {
		hfi1_err(ctx, "soft HFI state under %s is unreadable: %s\n",
			 dev->ibdev_path, strerror(ret));
		return ret == ENOENT ? ENODEV : ret;
	}

	memset(attr, 0, sizeof(*attr));
	attr->state = state;
	attr->max_mtu = IBV_MTU_4096;
	attr->active_mtu = IBV_MTU_4096;
	attr->gid_tbl_len = HFI1_GID_TBL_LEN;
	attr->port_cap_flags = cap_mask;
	attr->max_msg_sz = HFI1_MAX_MSG_SZ;
	attr->pkey_tbl_len = HFI1_PKEY_TBL_LEN;
	attr->lid = lid;
	attr->sm_lid = sm_lid;
	attr->lmc = lmc;
	attr->max_vl_num = 4; /* VL0-7 */
	attr->sm_sl = sm_sl;
	attr->subnet_timeout = 18;
	attr->active_width = 2; /* 4X */
	attr->active_speed = 32; /* EDR, 25 Gb/s a lane */
	attr->phys_state = phys_state;
	attr->link_layer = IBV_LINK_LAYER_INFINIBAND;
	return 0;
}

int hfi1_soft_query_device(struct hfi1_context *ctx,
			   struct ibv_device_attr_ex *attr)
{
	const struct hfi1_device *dev = ctx->dev;
	struct ibv_device_attr *a = &attr->orig_attr;
	uint64_t hw_rev;
	char fw_ver[sizeof(a->fw_ver)];
	int ret;

	ret = read_attr(dev, "fw_ver", fw_ver, sizeof(fw_ver));
	if (!ret)
		ret = hfi1_soft_read_u64(dev, "hw_rev", &hw_rev);
	if (!ret)
		ret = hfi1_soft_read_guid(dev, "node_guid", &a->node_guid);
	if (!ret)
		ret = hfi1_soft_read_guid(dev, "sys_image_guid",
					  &a->sys_image_guid);
	if (ret) {
		hfi1_err(ctx, "soft HFI state under %s is unreadable: %s\n",
			 dev->ibdev_path, strerror(ret));
		return ret == ENOENT ? ENODEV : ret;
	}

	memcpy(a->fw_ver, fw_ver, sizeof(a->fw_ver));
	a->max_mr_size = HFI1_MAX_MR_SIZE;
	a->page_size_cap = 4096;
	a->vendor_id = HFI1_IB_VENDOR_ID;
	a->vendor_part_id = PCI_DEVICE_ID_INTEL_HFI1_0;
	a->hw_ver = hw_rev;
	a->max_qp = HFI1_MAX_QP;
	a->max_qp_wr = HFI1_MAX_QP_WR;
	/* Only what the provider really does; the data path adds its own. */
	a->device_cap_flags =
		IBV_DEVICE_PORT_ACTIVE_EVENT | IBV_DEVICE_SYS_IMAGE_GUID;
	a->max_sge = HFI1_MAX_SGE;
	a->max_sge_rd = HFI1_MAX_SGE;
	a->max_cq = HFI1_MAX_CQ;
	a->max_cqe = HFI1_MAX_CQE;
	a->max_mr = HFI1_MAX_MR;
	a->max_pd = HFI1_MAX_PD;
	a->max_qp_rd_atom = HFI1_MAX_QP_RD_ATOM;
	a->max_qp_init_rd_atom = HFI1_MAX_QP_RD_ATOM;
	a->max_res_rd_atom = HFI1_MAX_QP * HFI1_MAX_QP_RD_ATOM;
	a->atomic_cap = IBV_ATOMIC_NONE;
	a->max_ah = HFI1_MAX_AH;
	a->max_srq = HFI1_MAX_SRQ;
	a->max_srq_wr = HFI1_MAX_SRQ_WR;
	a->max_srq_sge = HFI1_MAX_SRQ_SGE;
	a->max_pkeys = HFI1_PKEY_TBL_LEN;
	a->local_ca_ack_delay = 16;
	a->phys_port_cnt = HFI1_NUM_PORTS;

	attr->device_cap_flags_ex = a->device_cap_flags;
	attr->phys_port_cnt_ex = HFI1_NUM_PORTS;
	return 0;
}
