// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the kernel backend of the driver interface, ioctl(2) on
 * /dev/hfi1_N. It cannot run without hardware; it is kept small.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "hfi1_drv.h"

struct hfi1_kdrv {
	struct hfi1_drv drv;
	const struct hfi1_kdrv_sys *sys;
	int fd;
};

static int sys_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg);
}

static const struct hfi1_kdrv_sys real_sys = {
	.open = (int (*)(const char *, int))open,
	.ioctl = sys_ioctl,
	.mmap = mmap,
	.munmap = munmap,
	.close = close,
};

static int kdrv_ioctl(struct hfi1_drv *drv, unsigned long cmd, void *arg)
{
	struct hfi1_kdrv *k = (struct hfi1_kdrv *)drv;

	return k->sys->ioctl(k->fd, cmd, arg);
}

static void kdrv_close(struct hfi1_drv *drv)
{
	struct hfi1_kdrv *k = (struct hfi1_kdrv *)drv;

	k->sys->close(k->fd);
	free(k);
}

static const struct hfi1_drv_ops kdrv_ops = {
	.name = "kernel",
	.ioctl = kdrv_ioctl,
	.close = kdrv_close,
};

struct hfi1_drv *hfi1_kdrv_open(const char *path,
				const struct hfi1_kdrv_sys *sys)
{
	struct hfi1_user_info uinfo = {
		.userversion = HFI1_USER_SWMAJOR << HFI1_SWMAJOR_SHIFT | HFI1_USER_SWMINOR,
	};
	struct hfi1_kdrv *k;
	int vers = 0;
	int ret;

	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->sys = sys ? sys : &real_sys;
	k->drv.ops = &kdrv_ops;

	k->fd = k->sys->open(path, O_RDWR | O_CLOEXEC);
	if (k->fd < 0)
		goto err_free;
	if (k->sys->ioctl(k->fd, HFI1_IOCTL_GET_VERS, &vers))
		goto err_close;
	if ((vers >> HFI1_SWMAJOR_SHIFT) != HFI1_USER_SWMAJOR) {
		errno = EPROTO;
		goto err_close;
	}
	if (k->sys->ioctl(k->fd, HFI1_IOCTL_ASSIGN_CTXT, &uinfo) ||
	    k->sys->ioctl(k->fd, HFI1_IOCTL_CTXT_INFO, &k->drv.ctxt_info) ||
	    k->sys->ioctl(k->fd, HFI1_IOCTL_USER_INFO, &k->drv.base_info))
		goto err_close;
	/* The event page mapping comes with the TID work (issue 3). */
	k->drv.events = NULL;
	return &k->drv;

err_close:
	ret = errno;
	k->sys->close(k->fd);
	errno = ret;
err_free:
	ret = errno;
	free(k);
	errno = ret;
	return NULL;
}
