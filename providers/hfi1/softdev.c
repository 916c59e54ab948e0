// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the soft HFI's device and port attributes.
 *
 * hfi1-soft keeps the soft device's state in a sysfs-shaped tree
 * (Documentation/soft-hfi.md); the provider reads it at every query, as
 * the kernel driver would answer from its own state, so a change made by
 * `hfi1-soft port` shows at once.
 *
 * Whose tree: the state is taken only from files no other user can write,
 * or another user could forge the LID every program on the node sees. The
 * rule is hfi1-soft's (hfi1-soft(8), SECURITY), with the caller beside
 * root as an owner, since a tree only the caller can write lies to no one
 * else:
 * - every directory on the way to the run directory ($SYSFS_PATH's
 *   parent) is owned by root or the caller and not writable by group or
 *   others, unless it is sticky (as /tmp: others cannot rename or remove
 *   entries they do not own there);
 * - the run directory, $SYSFS_PATH, class/, class/infiniband/, the
 *   device's directory and everything in it are owned by root or the
 *   caller and not writable by group or others;
 * - nothing on the way or in the tree is a symlink.
 * hfi1_soft_check_tree() checks all of it when a context opens; only root
 * or the caller can change any of it after that. Each file read later is
 * opened with O_NOFOLLOW and checked again, with fstat(). A refusal is
 * EACCES, with a log line that names the path and says why.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "softdev.h"

/* Deeper than the tree hfi1-soft makes (ports/1/gids/0), with room. */
#define HFI1_SOFT_TREE_DEPTH 8

/*
 * Why @st is not to be trusted, or NULL. @above: a directory on the way
 * to the run directory, which may be sticky.
 */
static const char *distrust(const struct stat *st, bool above)
{
	if (S_ISLNK(st->st_mode))
		return "is a symlink";
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user";
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(above && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX)))
		return "is writable by group or others";
	return NULL;
}

/* Log why @path (whose @st, if known) is refused; EACCES. */
static int state_refused(struct hfi1_context *ctx, const char *path,
			 const struct stat *st, const char *why)
{
	char seen[48] = "";

	if (st)
		snprintf(seen, sizeof(seen), " (uid %u, mode %04o)", st->st_uid,
			 st->st_mode & 07777);
	/* A long format string stays whole, as in the kernel. */
	/* clang-format off */
	hfi1_err(ctx,
		 "refusing the soft HFI's state: %s %s%s; see hfi1-soft(8), SECURITY\n",
		 path, why, seen);
	/* clang-format on */
	return EACCES;
}

/*
 * A path of the tree that could not be examined is not trusted either,
 * unless it is gone (ENOENT: the device went down meanwhile).
 */
static int unexamined(struct hfi1_context *ctx, const char *path)
{
	int err = errno;
	char why[80];

	if (err == ENOENT)
		return ENOENT;
	snprintf(why, sizeof(why), "cannot be examined (%s)", strerror(err));
	return state_refused(ctx, path, NULL, why);
}

/*
 * Check what is in the directory @dirfd (an O_PATH fd) of the device's
 * tree, at @path, @depth below the device's directory.
 */
static int check_dir(struct hfi1_context *ctx, int dirfd, char *path,
		     size_t size, int depth)
{
	size_t len = strlen(path);
	const char *why;
	struct dirent *de;
	struct stat st;
	int fd, ret = 0;
	DIR *dir;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd < 0 ? NULL : fdopendir(fd);
	if (!dir) {
		ret = unexamined(ctx, path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while (!ret && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path + len, size - len, "/%s", de->d_name);
		/* The entry itself: what is checked is what is walked. */
		fd = openat(dirfd, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			/* Gone: hfi1-soft renames files into place. */
			if (errno != ENOENT)
				ret = unexamined(ctx, path);
			continue;
		}
		if (fstat(fd, &st))
			ret = unexamined(ctx, path);
		else if ((why = distrust(&st, false)))
			ret = state_refused(ctx, path, &st, why);
		else if (S_ISDIR(st.st_mode) && depth >= HFI1_SOFT_TREE_DEPTH)
			ret = state_refused(
				ctx, path, &st,
				"is nested deeper than hfi1-soft makes");
		else if (S_ISDIR(st.st_mode))
			ret = check_dir(ctx, fd, path, size, depth + 1);
		close(fd);
	}
	closedir(dir);
	path[len] = 0;
	return ret;
}

int hfi1_soft_check_tree(struct hfi1_context *ctx)
{
	const char *ibdev_path = ctx->dev->ibdev_path, *p, *why;
	char path[IBV_SYSFS_PATH_MAX + 256] = "", name[NAME_MAX + 1];
	int fd, next, ret = 0, n = 0, i = 0;
	struct stat st;
	size_t len;

	if (ibdev_path[0] != '/')
		return state_refused(ctx, ibdev_path, NULL,
				     "is not an absolute path");
	for (p = ibdev_path; *p; p += len) {
		p += strspn(p, "/");
		len = strcspn(p, "/");
		n += len > 0;
	}
	/*
	 * From / down, each directory opened with O_PATH | O_NOFOLLOW (a
	 * symlink is opened itself, and refused) and checked. The last five,
	 * <rundir>/sys/class/infiniband/<name>, may not be sticky.
	 */
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return unexamined(ctx, "/");
	for (p = ibdev_path;; i++) {
		if (fstat(fd, &st)) {
			ret = unexamined(ctx, path[0] ? path : "/");
			break;
		}
		why = distrust(&st, i < n - 4);
		if (!why && !S_ISDIR(st.st_mode))
			why = "is not a directory";
		if (why) {
			ret = state_refused(ctx, path[0] ? path : "/", &st,
					    why);
			break;
		}
		p += strspn(p, "/");
		len = strcspn(p, "/");
		if (!len) {
			ret = check_dir(ctx, fd, path, sizeof(path), 0);
			break;
		}
		snprintf(path + strlen(path), sizeof(path) - strlen(path),
			 "/%.*s", (int)len, p);
		if (len >= sizeof(name)) {
			errno = ENAMETOOLONG;
			ret = unexamined(ctx, path);
			break;
		}
		memcpy(name, p, len);
		name[len] = 0;
		p += len;
		next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			ret = unexamined(ctx, path);
			break;
		}
		close(fd);
		fd = next;
	}
	close(fd);
	if (ret == ENOENT) {
		hfi1_err(ctx, "the soft HFI state under %s is gone\n",
			 ibdev_path);
		return ENODEV;
	}
	return ret;
}

/* Read ibdev_path/<file> into buf, without the trailing newline. */
static int read_attr(struct hfi1_context *ctx, const char *file, char *buf,
		     size_t size)
{
	char path[IBV_SYSFS_PATH_MAX + 64];
	const char *why;
	struct stat st;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", ctx->dev->ibdev_path, file);
	/* O_NONBLOCK: a FIFO put there would block the open. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return state_refused(ctx, path, NULL, "is a symlink");
		return errno;
	}
	if (fstat(fd, &st)) {
		close(fd);
		return errno;
	}
	why = S_ISREG(st.st_mode) ? distrust(&st, false) :
				    "is not a regular file";
	if (why) {
		close(fd);
		return state_refused(ctx, path, &st, why);
	}
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return errno;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = 0;
	return len ? 0 : ENODATA;
}

int hfi1_soft_read_u64(struct hfi1_context *ctx, const char *file,
		       uint64_t *val)
{
	char buf[64], *end;
	int ret;

	ret = read_attr(ctx, file, buf, sizeof(buf));
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
int hfi1_soft_read_guid(struct hfi1_context *ctx, const char *file,
			__be64 *guid)
{
	unsigned int part[4];
	char buf[64];
	int ret;

	ret = read_attr(ctx, file, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%4x:%4x:%4x:%4x", &part[0], &part[1], &part[2],
		   &part[3]) != 4)
		return EINVAL;
	*guid = htobe64((uint64_t)part[0] << 48 | (uint64_t)part[1] << 32 |
			(uint64_t)part[2] << 16 | part[3]);
	return 0;
}

/* A GID as sysfs shows it: eight groups of four hex digits. */
int hfi1_soft_read_gid(struct hfi1_context *ctx, const char *file,
		       uint8_t gid[16])
{
	unsigned int part[8], i;
	char buf[64];
	int ret;

	ret = read_attr(ctx, file, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%4x:%4x:%4x:%4x:%4x:%4x:%4x:%4x", &part[0], &part[1],
		   &part[2], &part[3], &part[4], &part[5], &part[6],
		   &part[7]) != 8)
		return EINVAL;
	for (i = 0; i < 8; i++) {
		gid[2 * i] = part[i] >> 8;
		gid[2 * i + 1] = part[i] & 0xff;
	}
	return 0;
}

int hfi1_soft_port_state(struct hfi1_context *ctx, enum ibv_port_state *state)
{
	uint64_t val;
	int ret;

	ret = hfi1_soft_read_u64(ctx, "ports/1/state", &val);
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

	ret = hfi1_soft_port_state(ctx, &state);
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "ports/1/phys_state",
					 &phys_state);
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "ports/1/lid", &lid);
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "ports/1/sm_lid", &sm_lid);
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "ports/1/lid_mask_count", &lmc);
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "ports/1/sm_sl", &sm_sl);
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "ports/1/cap_mask", &cap_mask);
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

	ret = read_attr(ctx, "fw_ver", fw_ver, sizeof(fw_ver));
	if (!ret)
		ret = hfi1_soft_read_u64(ctx, "hw_rev", &hw_rev);
	if (!ret)
		ret = hfi1_soft_read_guid(ctx, "node_guid", &a->node_guid);
	if (!ret)
		ret = hfi1_soft_read_guid(ctx, "sys_image_guid",
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
	/*
	 * The soft HFI's QPs take up to HFI1_MAX_QP_RD_ATOM READs and atomics
	 * in flight each way (SOFTHFI_MAX_RD_ATOM), every QP at once.
	 * Atomics are executed by the responder's engine, one at a time:
	 * atomic with respect to every other atomic on the device, not to
	 * the CPU's (hfi1 says IB_ATOMIC_GLOB; the soft HFI cannot).
	 */
	a->max_qp_rd_atom = HFI1_MAX_QP_RD_ATOM;
	a->max_qp_init_rd_atom = HFI1_MAX_QP_RD_ATOM;
	a->max_res_rd_atom = HFI1_MAX_QP * HFI1_MAX_QP_RD_ATOM;
	a->atomic_cap = IBV_ATOMIC_HCA;
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
