// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the way to user memory, the kernel's copy_from_user() and
 * copy_to_user() (include/linux/uaccess.h), which the hfi1 driver's
 * file_ops.c and user_exp_rcv.c call; no file of the driver has them.
 *
 * User pointers inside the structs are read and written by the kernel's
 * own copy_from_user() and copy_to_user(), through a pipe and a memfd
 * (see copy_from_user() below), so a bad one is EFAULT, as in hfi1, and
 * never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include "sctxt.h"

/* The memfd for copies out: a whole tidlist and the struct. */
#define UACCESS_OUT_SIZE (16 * 1024)
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* Empty the pipe after a copy that faulted half-way. */
static void uaccess_drain(struct softhfi_ctxt *ctx)
{
	char sink[256];

	while (read(ctx->uaccess_pipe[0], sink, sizeof(sink)) > 0)
		;
}

/* Copies up to this size go through process_vm_readv(), see below. */
#define UACCESS_VM_READ_MAX 4096

/* 0 while process_vm_readv() works here, else what it failed with. */
static _Atomic int vm_read_refused;

/*
 * A small copy in one system call: process_vm_readv() on our own mm,
 * with the same checks (no FOLL_FORCE). 1.9 us against 2.5 us for the
 * pipe's two calls on a 2-vCPU VM, for an 8-byte inline send; it pins
 * the pages it reads, so larger copies take the pipe. A seccomp profile
 * may forbid it (EPERM, ENOSYS): then the pipe serves from then on.
 * True if it answered: *err is 0 or EFAULT.
 */
static bool copy_from_user_vm(struct softhfi_ctxt *ctx, void *dst, uint64_t src,
			      size_t len, int *err)
{
	struct iovec local = { dst, len };
	struct iovec remote = { (void *)(uintptr_t)src, len };
	ssize_t n;

	if (len > UACCESS_VM_READ_MAX || atomic_load(&vm_read_refused))
		return false;
	/* Our own pid, without a getpid() system call where we may. */
	n = process_vm_readv(sctxt_owned(ctx) ? ctx->owner : getpid(), &local,
			     1, &remote, 1, 0);
	if (n == (ssize_t)len) {
		*err = 0;
		return true;
	}
	if (n < 0 && errno != EFAULT) {
		atomic_store(&vm_read_refused, errno);
		return false;
	}
	*err = EFAULT;
	return true;
}

/*
 * User memory is reached as hfi1 reaches it: write(2) from a user address
 * into a pipe is the kernel's copy_from_user(), read(2) from it into a
 * user address is copy_to_user(). A bad address is EFAULT, never a crash,
 * with the same checks (no FOLL_FORCE: PROT_NONE memory cannot be read,
 * nor read-only memory written).
 */
int copy_from_user(struct softhfi_ctxt *ctx, void *dst, uint64_t src,
		   size_t len)
{
	int err = 0;

	if (copy_from_user_vm(ctx, dst, src, len, &err))
		return err;
	pthread_mutex_lock(&ctx->uaccess_lock);
	while (len) {
		size_t n = len < ctx->uaccess_chunk ? len : ctx->uaccess_chunk;

		if (write(ctx->uaccess_pipe[1], (void *)(uintptr_t)src, n) !=
			    (ssize_t)n ||
		    read(ctx->uaccess_pipe[0], dst, n) != (ssize_t)n) {
			uaccess_drain(ctx);
			err = EFAULT;
			break;
		}
		dst = (char *)dst + n;
		src += n;
		len -= n;
	}
	pthread_mutex_unlock(&ctx->uaccess_lock);
	return err;
}

static int copy_to_user_pipe(struct softhfi_ctxt *ctx, uint64_t dst,
			     const void *src, size_t len)
{
	while (len) {
		size_t n = len < ctx->uaccess_chunk ? len : ctx->uaccess_chunk;

		if (write(ctx->uaccess_pipe[1], src, n) != (ssize_t)n ||
		    read(ctx->uaccess_pipe[0], (void *)(uintptr_t)dst, n) !=
			    (ssize_t)n) {
			uaccess_drain(ctx);
			return EFAULT;
		}
		src = (const char *)src + n;
		dst += n;
		len -= n;
	}
	return 0;
}

/*
 * Copies out need one system call: what we store in uaccess_out, pread(2)
 * from the memfd behind it writes with copy_to_user(), checks included.
 */
int copy_to_user(struct softhfi_ctxt *ctx, uint64_t dst, const void *src,
		 size_t len)
{
	int err = 0;

	pthread_mutex_lock(&ctx->uaccess_lock);
	if (!ctx->uaccess_out) {
		err = copy_to_user_pipe(ctx, dst, src, len);
		goto out;
	}
	while (len) {
		size_t n = len < UACCESS_OUT_SIZE ? len : UACCESS_OUT_SIZE;

		memcpy(ctx->uaccess_out, src, n);
		if (pread(ctx->uaccess_memfd, (void *)(uintptr_t)dst, n, 0) !=
		    (ssize_t)n) {
			err = EFAULT;
			break;
		}
		src = (const char *)src + n;
		dst += n;
		len -= n;
	}
out:
	pthread_mutex_unlock(&ctx->uaccess_lock);
	return err;
}

/*
 * Two copies to user memory, in this order; a fault in the first leaves
 * the second undone, as two copy_to_user() in a row do. One write and one
 * read when both fit in the pipe at once.
 */
int copy_to_user2(struct softhfi_ctxt *ctx, uint64_t dst1, const void *src1,
		  size_t len1, uint64_t dst2, const void *src2, size_t len2)
{
	struct iovec ours[2] = {
		{ .iov_base = (void *)src1, .iov_len = len1 },
		{ .iov_base = (void *)src2, .iov_len = len2 },
	};
	struct iovec user[2] = {
		{ .iov_base = (void *)(uintptr_t)dst1, .iov_len = len1 },
		{ .iov_base = (void *)(uintptr_t)dst2, .iov_len = len2 },
	};
	ssize_t total = len1 + len2;
	int err = 0;

	/*
	 * An empty part touches nothing, as copy_to_user() of 0 bytes: the
	 * kernel would refuse its address in an iovec even for 0 bytes.
	 */
	if (!len1 || !len2 ||
	    len1 + len2 >
		    (ctx->uaccess_out ? UACCESS_OUT_SIZE : ctx->uaccess_chunk))
		return copy_to_user(ctx, dst1, src1, len1) ?:
			       copy_to_user(ctx, dst2, src2, len2);
	pthread_mutex_lock(&ctx->uaccess_lock);
	if (ctx->uaccess_out) {
		memcpy(ctx->uaccess_out, src1, len1);
		memcpy(ctx->uaccess_out + len1, src2, len2);
		if (preadv(ctx->uaccess_memfd, user, 2, 0) != total)
			err = EFAULT;
	} else if (writev(ctx->uaccess_pipe[1], ours, 2) != total ||
		   readv(ctx->uaccess_pipe[0], user, 2) != total) {
		uaccess_drain(ctx);
		err = EFAULT;
	}
	pthread_mutex_unlock(&ctx->uaccess_lock);
	return err;
}

/*
 * Set up the memfd for copies out. Giving a file its size is subject to
 * RLIMIT_FSIZE (past it, SIGXFSZ): below our size, and wherever memfds
 * are refused, copies out keep to the pipe. Reading is never limited.
 */
void uaccess_out_init(struct softhfi_ctxt *ctx)
{
	struct rlimit rl;
	void *map;
	int fd;

	ctx->uaccess_memfd = -1;
	if (getrlimit(RLIMIT_FSIZE, &rl) ||
	    (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < UACCESS_OUT_SIZE))
		return;
	/* vm.memfd_noexec may insist on NOEXEC_SEAL, older kernels lack it. */
	fd = memfd_create("softhfi-uaccess",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("softhfi-uaccess",
				  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return;
	/* Sealed at its size: our mapping of it can never SIGBUS. */
	if (ftruncate(fd, UACCESS_OUT_SIZE) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto err_close;
	map = mmap(NULL, UACCESS_OUT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (map == MAP_FAILED)
		goto err_close;
	ctx->uaccess_out = map;
	ctx->uaccess_memfd = fd;
	return;

err_close:
	close(fd);
}

void uaccess_out_fini(struct softhfi_ctxt *ctx)
{
	if (!ctx->uaccess_out)
		return;
	munmap(ctx->uaccess_out, UACCESS_OUT_SIZE);
	close(ctx->uaccess_memfd);
}
