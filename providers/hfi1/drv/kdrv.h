/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The kernel backend of the driver interface: ioctl(2) on a real
 * /dev/hfi1_N (kdrv.c). The soft HFI's counterpart is softhfi_open().
 */
#ifndef HFI1_KDRV_H
#define HFI1_KDRV_H

#include <sys/types.h>

#include "hfi1_drv.h"

/*
 * The kernel backend. The system calls go through this table so that unit
 * tests can stand a fake file descriptor behind them; NULL means the real
 * ones.
 */
struct hfi1_kdrv_sys {
	int (*open)(const char *path, int flags);
	int (*ioctl)(int fd, unsigned long cmd, void *arg);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*close)(int fd);
};

/*
 * Open /dev/hfi1_<unit> and assign a user context: GET_VERS (the driver's
 * major version must be ours), ASSIGN_CTXT, CTXT_INFO, USER_INFO, then map
 * the event page. Returns NULL with errno set: the driver's own errors,
 * EPROTONOSUPPORT if its major interface version is not ours.
 */
struct hfi1_drv *hfi1_kdrv_open(const char *path,
				const struct hfi1_kdrv_sys *sys);

#endif /* HFI1_KDRV_H */
