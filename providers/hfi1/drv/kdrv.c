// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the kernel backend of the driver interface, ioctl(2) on
 * /dev/hfi1_N. It cannot run without hardware; it is kept small and is
 * unit-tested against a fake file descriptor (tests/unit/test_kdrv.c).
 *
 * Facts it relies on, from the hfi1 driver (drivers/infiniband/hw/hfi1/
 * file_ops.c, common.h, hfi.h) and PSM2's context setup:
 * - GET_VERS is allowed before a context is assigned and stores the
 *   driver's HFI1_USER_SWVERSION, (major << HFI1_SWMAJOR_SHIFT) | minor,
 *   into an int.
 * - ASSIGN_CTXT copies in a struct hfi1_user_info; a major version other
 *   than the driver's fails with ENODEV, subctxt_cnt 0 asks for a context
 *   of our own (the uuid then only labels it). Every other command fails
 *   with EINVAL until a context is assigned.
 * - USER_INFO hands out mmap tokens, not addresses: the offset to give to
 *   mmap() in the page-aligned bits, and the byte offset of the object
 *   inside the mapped page in the low bits. The event page must be mapped
 *   MAP_SHARED, one page long; the word for this subcontext sits at the
 *   token's in-page offset, which the driver computes as
 *   ((ctxt - first_dyn_alloc_ctxt) * HFI1_MAX_SHARED_CTXTS + subctxt) *
 *   sizeof(unsigned long), modulo the page size.
 * - The driver is x86-64 only (Kconfig) and has no compat_ioctl, so off_t
 *   is 64 bits wide wherever this can run and carries a whole token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "kdrv.h"
#include "util.h"

/* The kernel defines this in its private common.h, not in the UAPI. */
#ifndef HFI1_USER_SWVERSION
#define HFI1_USER_SWVERSION \
	((HFI1_USER_SWMAJOR << HFI1_SWMAJOR_SHIFT) | HFI1_USER_SWMINOR)
#endif

struct hfi1_kdrv {
	struct hfi1_drv drv;
	const struct hfi1_kdrv_sys *sys;
	int fd;
	void *events_page; /* the event page mapping, one page */
	size_t page_size;
};

static struct hfi1_kdrv *to_kdrv(struct hfi1_drv *drv)
{
	return container_of(drv, struct hfi1_kdrv, drv);
}

static int sys_open(const char *path, int flags)
{
	return open(path, flags);
}

static int sys_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg);
}

static const struct hfi1_kdrv_sys real_sys = {
	.open = sys_open,
	.ioctl = sys_ioctl,
	.mmap = mmap,
	.munmap = munmap,
	.close = close,
};

static int kdrv_ioctl(struct hfi1_drv *drv, unsigned long cmd, void *arg)
{
	struct hfi1_kdrv *k = to_kdrv(drv);

	return k->sys->ioctl(k->fd, cmd, arg);
}

static void kdrv_close(struct hfi1_drv *drv)
{
	struct hfi1_kdrv *k = to_kdrv(drv);

	k->sys->munmap(k->events_page, k->page_size);
	k->sys->close(k->fd);
	free(k);
}

static const struct hfi1_drv_ops kdrv_ops = {
	.name = "kernel",
	.ioctl = kdrv_ioctl,
	.close = kdrv_close,
};

/*
 * The uuid only names a context that processes share (subctxt_cnt > 0),
 * which we never ask for; make it unique anyway. getrandom() can fail on
 * old kernels or early at boot: then mix what tells this open apart.
 */
static void make_uuid(__u8 uuid[16], const void *salt)
{
	struct timespec ts = { 0 };
	uint64_t mix[2];

	if (getrandom(uuid, 16, GRND_NONBLOCK) != 16) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		mix[0] = (uint64_t)getpid() << 32 ^ (uintptr_t)salt;
		mix[1] = (uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec;
		memcpy(uuid, mix, 16);
	}
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

/*
 * Errors, in errno: those of open(2), ioctl(2) and mmap(2) on the device
 * as the driver returns them; EPROTONOSUPPORT when the driver's major
 * interface version is not HFI1_USER_SWMAJOR (PSM2 turns the driver's
 * ENODEV for the same mismatch into this); ENOMEM.
 */
struct hfi1_drv *hfi1_kdrv_open(const char *path,
				const struct hfi1_kdrv_sys *sys)
{
	struct hfi1_user_info uinfo = {
		.userversion = HFI1_USER_SWVERSION,
		.subctxt_cnt = 0,
	};
	struct hfi1_kdrv *k;
	__u64 token, in_page;
	int vers = 0;
	void *page;
	int err;

	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->sys = sys ? sys : &real_sys;
	k->drv.ops = &kdrv_ops;
	/* The kernel raises event bits with no notification but the page. */
	k->drv.event_fd = -1;
	k->page_size = sysconf(_SC_PAGESIZE);

	k->fd = k->sys->open(path, O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		err = errno;
		goto err_free;
	}

	if (k->sys->ioctl(k->fd, HFI1_IOCTL_GET_VERS, &vers)) {
		err = errno;
		goto err_close;
	}
	if ((vers >> HFI1_SWMAJOR_SHIFT) != HFI1_USER_SWMAJOR) {
		err = EPROTONOSUPPORT;
		goto err_close;
	}

	make_uuid(uinfo.uuid, k);
	if (k->sys->ioctl(k->fd, HFI1_IOCTL_ASSIGN_CTXT, &uinfo) ||
	    k->sys->ioctl(k->fd, HFI1_IOCTL_CTXT_INFO, &k->drv.ctxt_info) ||
	    k->sys->ioctl(k->fd, HFI1_IOCTL_USER_INFO, &k->drv.base_info)) {
		err = errno;
		goto err_close;
	}

	/* The page-aligned part goes to mmap(), the rest finds the word. */
	token = k->drv.base_info.events_bufbase;
	in_page = token & (k->page_size - 1);
	page = k->sys->mmap(NULL, k->page_size, PROT_READ, MAP_SHARED, k->fd,
			    (off_t)(token - in_page));
	if (page == MAP_FAILED) {
		err = errno;
		goto err_close;
	}
	k->events_page = page;
	k->drv.events = (volatile __u64 *)((char *)page + in_page);
	return &k->drv;

err_close:
	k->sys->close(k->fd);
err_free:
	free(k);
	errno = err;
	return NULL;
}
