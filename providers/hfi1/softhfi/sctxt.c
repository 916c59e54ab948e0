// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: one hfi1 user context, served in-process.
 *
 * The expected-receive rules are those of the hfi1 driver's user_exp_rcv.c
 * (TID_UPDATE, TID_FREE, TID_INVAL_READ), its user_pages.c (the pin limit)
 * and file_ops.c (command dispatch, what is copied back and when):
 * - TID_UPDATE: page-aligned vaddr and a non-zero length or EINVAL; more
 *   pages than the context has entries is EINVAL; past the pin limit is
 *   ENOMEM. The buffer is split into runs of physically contiguous pages,
 *   each cut into power-of-two pieces of at most 2 MiB, one RcvArray entry
 *   per piece. Entries come from groups of 8: whole free groups first for
 *   whole multiples of 8, then partly used groups. Fewer entries than
 *   pieces is partial success (tidcnt and length say what was
 *   programmed); none at all is ENOSPC.
 * - The tidinfo word: LEN (pages) in bits 10:0, CTRL (1 even, 2 odd entry
 *   of a pair) in bits 21:20, IDX (the pair) in bits 31:22.
 * - TID_FREE: CTRL 0 or 3, or an entry past expected_count, is EINVAL; an
 *   entry not programmed is EBADF. It stops at the first error.
 * - When memory behind an entry goes away the entry is invalidated at once
 *   (takes no data; its pin is dropped right after, see
 *   invalidate_range_locked()) and its tidinfo queued; the queue going
 *   from empty to non-empty raises HFI1_EVENT_TID_MMU_NOTIFY.
 *   TID_INVAL_READ drains the queue and clears the bit; the entry is free
 *   only after TID_FREE.
 *
 * Where the soft HFI differs, on purpose:
 * - hfi1 only acts on munmap (MMU_NOTIFY_UNMAP) and so misses
 *   madvise(MADV_DONTNEED/MADV_FREE); we invalidate on those too.
 * - ACK_EVENT never clears TID_MMU_NOTIFY while invalidations are queued,
 *   and a TID_INVAL_READ whose list cannot be written (EFAULT) keeps them.
 * - User pointers inside the structs are read and written by the kernel's
 *   own copy_from_user() and copy_to_user(), through a pipe and a memfd
 *   (see copy_from_user() below), so a bad one is EFAULT, as in hfi1, and
 *   never a crash.
 *
 * The means: each entry's pages are an io_uring registered buffer in the
 * slot of the same number (long-term pins, charged to RLIMIT_MEMLOCK);
 * "DMA" into an entry is IORING_OP_READ_FIXED on that slot; the MMU
 * notifier is notifier.c.
 *
 * A context belongs to the process that opened it. After fork() the child
 * sees EIO from every call; the parent's entries stay valid, because pages
 * pinned for DMA are copied for the child at fork and never shared. The
 * child is told apart without a system call: see sctxt_owned().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <liburing.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "softhfi.h"
#include "notifier.h"

#ifndef HFI1_USER_SWVERSION
#define HFI1_USER_SWVERSION \
	((HFI1_USER_SWMAJOR << HFI1_SWMAJOR_SHIFT) | HFI1_USER_SWMINOR)
#endif
/* hfi1's KDETH QP prefix, which USER_INFO reports as bthqp. */
#define SOFTHFI_KDETH_QP 0x80
#define SOFTHFI_DEFAULT_CACHE_MB 256 /* hfi1's cache_size default */
/* The memfd for copies out: a whole tidlist and the struct. */
#define UACCESS_OUT_SIZE (16 * 1024)
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

struct soft_group {
	unsigned int base; /* first entry of the group */
	unsigned int used;
	unsigned int map; /* bit i: entry base + i is taken */
	TAILQ_ENTRY(soft_group) link;
};
TAILQ_HEAD(group_list, soft_group);

enum tid_state {
	TID_UNUSED = 0,
	TID_ASSIGNED, /* taken by a TID_UPDATE, not yet pinned */
	TID_PROGRAMMED, /* pinned, takes data */
	TID_INVALIDATED, /* unpinned, waits for TID_FREE */
	TID_UNPINNING, /* invalidated, its pin not yet dropped */
};

/* One RcvArray entry for expected receive. */
struct soft_tid {
	uint64_t vaddr;
	uint32_t npages;
	enum tid_state state;
	struct soft_group *grp;
};

/* A piece of the buffer that one entry maps. */
struct pageset {
	uint32_t idx; /* first page, from the start of the buffer */
	uint32_t count; /* pages, a power of two */
};

struct softhfi_ctxt {
	struct hfi1_drv drv;
	struct softhfi_params params;
	pid_t owner;
	_Atomic int *owner_mark; /* 1 in the owner, 0 in its children */
	size_t page_size;
	bool assigned;

	/*
	 * Protects everything below: the RcvArray, the groups, the
	 * invalidation queue, the pin counts and the scratch arrays. Taken
	 * by the notifier's worker, which applies invalidations.
	 */
	pthread_mutex_t lock;
	struct soft_tid *tids;
	struct soft_group *groups;
	struct group_list group_free; /* no entry taken */
	struct group_list group_used; /* some taken */
	struct group_list group_full; /* all taken */
	unsigned int tid_used; /* entries TID_UPDATE handed out */
	unsigned int tid_limit;
	unsigned int tids_invalid;
	uint64_t tid_n_pinned; /* pages */
	uint64_t invalidations;
	uint64_t overflows; /* drains that found the log wrapped */
	uint32_t *invalid_tids;
	unsigned int invalid_tid_idx;
	struct pageset *psets; /* scratch for TID_UPDATE */
	uint32_t *tidlist; /* scratch for TID_UPDATE and TID_FREE */
	struct iovec *iovs; /* scratch for pinning */
	/*
	 * Entries invalidated whose pins are still to be dropped (see
	 * invalidate_range_locked()), and how many the worker is dropping
	 * outside the lock right now; `unpinned` is signalled when it is done.
	 */
	uint32_t *unpin_pending;
	unsigned int unpin_pending_n;
	unsigned int unpin_busy;
	pthread_cond_t unpinned;
	uint32_t *unpin_work; /* the worker's batch, only the worker's */

	/* Serialises placements: the ring's submission and completion. */
	pthread_mutex_t place_lock;
	struct io_uring ring;
	bool ring_ready;
	struct softhfi_watch watch;
	bool watching;
	void *event_page;
	/*
	 * An event bit went up under ctx->lock and the event fd is still to
	 * be signalled: see ctxt_unlock().
	 */
	bool event_fd_owed;

	/*
	 * The way to user memory (see copy_from_user()): a pipe, empty
	 * between copies, and a memfd for copies out. uaccess_lock keeps a
	 * copy's steps together; it is taken last, under ctx->lock or alone.
	 */
	pthread_mutex_t uaccess_lock;
	int uaccess_pipe[2];
	size_t uaccess_chunk; /* what the empty pipe takes in one write */
	/*
	 * Copies out: our shared mapping of a memfd (see copy_to_user()).
	 * NULL if it could not be set up; they use the pipe then.
	 */
	char *uaccess_out;
	int uaccess_memfd;
};

/* Pages pinned by all soft contexts of the process: hfi1's pinned_vm. */
static _Atomic uint64_t process_pinned_pages;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * A forked child has pinned nothing, as a new mm starts with no
 * pinned_vm: the parent's pins stay the parent's (and are not released
 * by the child, see sctxt_close()).
 */
static void atfork_child(void)
{
	atomic_store(&process_pinned_pages, 0);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/* Signal the event fd; non-blocking: a full counter is readable anyway. */
static void signal_event_fd(struct softhfi_ctxt *ctx)
{
	uint64_t one = 1;

	if (write(ctx->drv.event_fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: the counter is full, hence readable */
}

/*
 * Drop ctx->lock, then signal the event fd if an event bit went up under
 * it. Not under the lock: the signal wakes the thread that acts on the
 * event, which would first wait for the lock (traced: some 10 us per
 * event). Whoever sees the bit after the unlock also finds the fd
 * readable, unless it looks between the two.
 */
static void ctxt_unlock(struct softhfi_ctxt *ctx)
{
	bool owed = ctx->event_fd_owed;

	ctx->event_fd_owed = false;
	pthread_mutex_unlock(&ctx->lock);
	if (owed)
		signal_event_fd(ctx);
}

/*
 * Wait for the worker's unpins, which releases ctx->lock meanwhile: a
 * signal still owed goes out first, under the lock on this rare path, so
 * that no one sees the bit for long without the fd. Caller holds
 * ctx->lock.
 */
static void cond_wait_unpinned_locked(struct softhfi_ctxt *ctx)
{
	if (ctx->event_fd_owed) {
		ctx->event_fd_owed = false;
		signal_event_fd(ctx);
	}
	pthread_cond_wait(&ctx->unpinned, &ctx->lock);
}

static struct softhfi_ctxt *to_sctxt(struct hfi1_drv *drv)
{
	return (struct softhfi_ctxt *)((char *)drv -
				       offsetof(struct softhfi_ctxt, drv));
}

/*
 * Whether the caller is the process that opened @ctx. owner_mark lives in
 * a MADV_WIPEONFORK page, which reads 0 in every process that got a copy
 * of this address space (fork(), _Fork(), clone() without CLONE_VM,
 * whether or not atfork handlers ran): one load instead of a getpid()
 * system call on every command. A vfork() child shares the address space
 * and passes, but may call nothing but _exit() and exec. Without
 * MADV_WIPEONFORK (before Linux 4.14), getpid().
 */
static bool sctxt_owned(const struct softhfi_ctxt *ctx)
{
	if (ctx->owner_mark)
		return atomic_load_explicit(ctx->owner_mark,
					    memory_order_relaxed) == 1;
	return ctx->owner == getpid();
}

/* Sets up owner_mark; without MADV_WIPEONFORK it stays NULL. */
static void owner_mark_init(struct softhfi_ctxt *ctx)
{
	void *page = mmap(NULL, ctx->page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (page == MAP_FAILED)
		return;
	if (madvise(page, ctx->page_size, MADV_WIPEONFORK)) {
		munmap(page, ctx->page_size);
		return;
	}
	ctx->owner_mark = page;
	atomic_store(ctx->owner_mark, 1);
}

static void owner_mark_fini(struct softhfi_ctxt *ctx)
{
	if (ctx->owner_mark)
		munmap(ctx->owner_mark, ctx->page_size);
}

static uint32_t create_tid(unsigned int rcventry, uint32_t npages)
{
	unsigned int pair = rcventry & ~1u;

	return (pair >> 1) << SOFTHFI_TID_IDX_SHIFT |
	       (1u << (rcventry - pair)) << SOFTHFI_TID_CTRL_SHIFT |
	       (npages & SOFTHFI_TID_LEN_MASK) << SOFTHFI_TID_LEN_SHIFT;
}

/* The entry a tidinfo names, or -EINVAL as unprogram_rcvarray() says. */
static int tid_to_rcventry(const struct softhfi_ctxt *ctx, uint32_t tidinfo)
{
	unsigned int ctrl = SOFTHFI_TID_GET(tidinfo, CTRL);
	unsigned int rcventry;

	if (ctrl == 0 || ctrl == 3)
		return -EINVAL;
	rcventry = (SOFTHFI_TID_GET(tidinfo, IDX) << 1) + ctrl - 1;
	if (rcventry >= ctx->params.expected_count)
		return -EINVAL;
	return rcventry;
}

/* Empty the pipe after a copy that faulted half-way. */
static void uaccess_drain(struct softhfi_ctxt *ctx)
{
	char sink[256];

	while (read(ctx->uaccess_pipe[0], sink, sizeof(sink)) > 0)
		;
}

/*
 * User memory is reached as hfi1 reaches it: write(2) from a user address
 * into a pipe is the kernel's copy_from_user(), read(2) from it into a
 * user address is copy_to_user(). A bad address is EFAULT, never a crash,
 * with the same checks (no FOLL_FORCE: PROT_NONE memory cannot be read,
 * nor read-only memory written). Two plain system calls cost about half
 * of one process_vm_readv(), which pins the pages of the "remote" mm.
 */
static int copy_from_user(struct softhfi_ctxt *ctx, void *dst, uint64_t src,
			  size_t len)
{
	int err = 0;

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
static int copy_to_user(struct softhfi_ctxt *ctx, uint64_t dst, const void *src,
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
static int copy_to_user2(struct softhfi_ctxt *ctx, uint64_t dst1,
			 const void *src1, size_t len1, uint64_t dst2,
			 const void *src2, size_t len2)
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
static void uaccess_out_init(struct softhfi_ctxt *ctx)
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

static void uaccess_out_fini(struct softhfi_ctxt *ctx)
{
	if (!ctx->uaccess_out)
		return;
	munmap(ctx->uaccess_out, UACCESS_OUT_SIZE);
	close(ctx->uaccess_memfd);
}

static bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &
	       CAP_TO_MASK(CAP_IPC_LOCK);
}

/* hfi1_can_pin_pages(). Caller holds ctx->lock. */
static bool can_pin_locked(struct softhfi_ctxt *ctx, uint64_t npages)
{
	uint64_t cache_limit, ulimit_pages;
	struct rlimit rl;

	if (!has_cap_ipc_lock()) {
		if (getrlimit(RLIMIT_MEMLOCK, &rl))
			return false;
		ulimit_pages = rl.rlim_cur == RLIM_INFINITY ?
				       UINT64_MAX / 2 :
				       rl.rlim_cur / ctx->page_size;
		if (atomic_load(&process_pinned_pages) + npages > ulimit_pages)
			return false;
		/* A quarter of the limit for each of the device's contexts. */
		if (ctx->tid_n_pinned + npages >
		    ulimit_pages / ctx->params.user_contexts / 4)
			return false;
	}
	cache_limit = (uint64_t)ctx->params.cache_size_mb * 1024 * 1024 /
		      ctx->page_size;
	return ctx->tid_n_pinned + npages <= cache_limit;
}

static void account_pinned_locked(struct softhfi_ctxt *ctx, int64_t npages)
{
	ctx->tid_n_pinned += npages;
	atomic_fetch_add(&process_pinned_pages, npages);
}

/*
 * find_phys_blocks(): cut the buffer at every physical discontinuity (the
 * soft HFI's model: every params.contig_pages pages), then each run into
 * power-of-two pieces of at most SOFTHFI_MAX_RUN_PAGES. Returns the count.
 */
static unsigned int find_page_sets(const struct softhfi_ctxt *ctx,
				   uint64_t vaddr, unsigned int npages,
				   struct pageset *sets)
{
	unsigned int contig = ctx->params.contig_pages;
	unsigned int pageidx = 0, setcount = 0;
	uint64_t first_page = vaddr / ctx->page_size;

	while (pageidx < npages) {
		/* Runs end on contig-page boundaries of the address. */
		unsigned int run = contig - (first_page + pageidx) % contig;

		if (run > npages - pageidx)
			run = npages - pageidx;
		while (run) {
			unsigned int piece = run;

			if (piece > SOFTHFI_MAX_RUN_PAGES)
				piece = SOFTHFI_MAX_RUN_PAGES;
			else
				piece = 1u << (31 - __builtin_clz(piece));
			sets[setcount].idx = pageidx;
			sets[setcount].count = piece;
			setcount++;
			pageidx += piece;
			run -= piece;
		}
	}
	return setcount;
}

/* Caller holds ctx->lock. */
static void group_move(struct group_list *from, struct group_list *to,
		       struct soft_group *grp)
{
	TAILQ_REMOVE(from, grp, link);
	TAILQ_INSERT_TAIL(to, grp, link);
}

/*
 * program_rcvarray(): take up to @count free entries of @grp for the next
 * page sets, in entry order. Returns how many it took. Caller holds
 * ctx->lock.
 */
static unsigned int program_group_locked(struct softhfi_ctxt *ctx,
					 struct soft_group *grp,
					 unsigned int count, uint64_t vaddr,
					 unsigned int nsets,
					 unsigned int *tididx)
{
	unsigned int taken = 0, i;

	for (i = 0; i < SOFTHFI_GROUP_SIZE && taken < count; i++) {
		unsigned int rcventry = grp->base + i;
		struct soft_tid *tid = &ctx->tids[rcventry];
		struct pageset *set = &ctx->psets[*tididx];

		if (grp->map & (1u << i))
			continue;
		if (*tididx >= nsets)
			break;
		tid->vaddr = vaddr + (uint64_t)set->idx * ctx->page_size;
		tid->npages = set->count;
		tid->state = TID_ASSIGNED;
		tid->grp = grp;
		grp->map |= 1u << i;
		grp->used++;
		ctx->tidlist[(*tididx)++] = create_tid(rcventry, set->count);
		taken++;
	}
	return taken;
}

/*
 * Hand entries to the first @nsets page sets as hfi1 does: whole free
 * groups while a whole group's worth remains, then partly used groups,
 * opening a free group when none is partly used. Returns the entries
 * handed out (<= @nsets). Caller holds ctx->lock.
 */
static unsigned int assign_entries_locked(struct softhfi_ctxt *ctx,
					  uint64_t vaddr, unsigned int nsets)
{
	unsigned int ngroups = nsets / SOFTHFI_GROUP_SIZE;
	unsigned int tididx = 0;
	struct soft_group *grp, *next;

	while (ngroups && !TAILQ_EMPTY(&ctx->group_free)) {
		grp = TAILQ_FIRST(&ctx->group_free);
		program_group_locked(ctx, grp, SOFTHFI_GROUP_SIZE, vaddr, nsets,
				     &tididx);
		group_move(&ctx->group_free, &ctx->group_full, grp);
		ngroups--;
	}

	while (tididx < nsets) {
		if (TAILQ_EMPTY(&ctx->group_used)) {
			if (TAILQ_EMPTY(&ctx->group_free))
				break;
			grp = TAILQ_FIRST(&ctx->group_free);
			group_move(&ctx->group_free, &ctx->group_used, grp);
		}
		for (grp = TAILQ_FIRST(&ctx->group_used); grp; grp = next) {
			next = TAILQ_NEXT(grp, link);
			program_group_locked(ctx, grp, nsets - tididx, vaddr,
					     nsets, &tididx);
			if (grp->used == SOFTHFI_GROUP_SIZE)
				group_move(&ctx->group_used, &ctx->group_full,
					   grp);
			if (tididx >= nsets)
				break;
		}
	}
	return tididx;
}

/* Set or clear the pins of entries; @iov NULL empties the slot. */
static int pin_slots(struct softhfi_ctxt *ctx, unsigned int slot,
		     const struct iovec *iovs, unsigned int nr)
{
	static const struct iovec empty[SOFTHFI_GROUP_SIZE];
	unsigned int done = 0;
	int ret;

	while (done < nr) {
		unsigned int batch = nr - done;

		if (!iovs && batch > SOFTHFI_GROUP_SIZE)
			batch = SOFTHFI_GROUP_SIZE;
		ret = io_uring_register_buffers_update_tag(
			&ctx->ring, slot + done, iovs ? iovs + done : empty,
			NULL, batch);
		if (ret < 0)
			return done ? (int)done : ret;
		done += ret;
		if ((unsigned int)ret < batch)
			break;
	}
	return done;
}

/*
 * Return an entry to its group (clear_tid_node()), unpinning it first if
 * it still is. Caller holds ctx->lock.
 */
static void release_entry_locked(struct softhfi_ctxt *ctx,
				 unsigned int rcventry)
{
	struct soft_tid *tid = &ctx->tids[rcventry];
	struct soft_group *grp = tid->grp;

	if (tid->state == TID_PROGRAMMED) {
		pin_slots(ctx, rcventry, NULL, 1);
		account_pinned_locked(ctx, -(int64_t)tid->npages);
	} else if (tid->state == TID_INVALIDATED) {
		ctx->tids_invalid--;
	}
	tid->state = TID_UNUSED;
	tid->grp = NULL;

	grp->used--;
	grp->map &= ~(1u << (rcventry - grp->base));
	if (grp->used == SOFTHFI_GROUP_SIZE - 1)
		group_move(&ctx->group_full, &ctx->group_used, grp);
	else if (!grp->used)
		group_move(&ctx->group_used, &ctx->group_free, grp);
}

/* Assigned but not yet pinned entries go back. Caller holds ctx->lock. */
static void unassign_locked(struct softhfi_ctxt *ctx, unsigned int from,
			    unsigned int to)
{
	unsigned int i;

	for (i = from; i < to; i++) {
		release_entry_locked(ctx,
				     tid_to_rcventry(ctx, ctx->tidlist[i]));
	}
}

/*
 * Pin the entries of tidlist[0..n) in slot-contiguous batches. Returns how
 * many are pinned (a prefix), or a negative errno if none is. Caller holds
 * ctx->lock.
 */
static int pin_entries_locked(struct softhfi_ctxt *ctx, unsigned int n)
{
	unsigned int i = 0, pinned = 0;

	while (i < n) {
		int first = tid_to_rcventry(ctx, ctx->tidlist[i]);
		unsigned int nr = 0;
		int ret;

		while (i + nr < n &&
		       tid_to_rcventry(ctx, ctx->tidlist[i + nr]) ==
			       first + (int)nr) {
			struct soft_tid *tid = &ctx->tids[first + nr];

			ctx->iovs[nr].iov_base = (void *)(uintptr_t)tid->vaddr;
			ctx->iovs[nr].iov_len =
				(size_t)tid->npages * ctx->page_size;
			nr++;
		}
		ret = pin_slots(ctx, first, ctx->iovs, nr);
		if (ret < 0)
			return pinned ? (int)pinned : ret;
		pinned += ret;
		i += ret;
		if ((unsigned int)ret < nr)
			break;
	}
	return pinned;
}

/* Drop the pins of @n entries, neighbouring slots in one call. */
static void unpin_entries(struct softhfi_ctxt *ctx, const uint32_t *slots,
			  unsigned int n)
{
	unsigned int i, run;

	for (i = 0; i < n; i += run) {
		for (run = 1; i + run < n && slots[i + run] == slots[i] + run;
		     run++)
			;
		pin_slots(ctx, slots[i], NULL, run);
	}
}

/* The pins of @n entries are dropped. Caller holds ctx->lock. */
static void unpin_done_locked(struct softhfi_ctxt *ctx, const uint32_t *slots,
			      unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct soft_tid *tid = &ctx->tids[slots[i]];

		account_pinned_locked(ctx, -(int64_t)tid->npages);
		tid->state = TID_INVALIDATED;
	}
}

/* Drop the pins still pending. Caller holds ctx->lock. */
static void unpin_pending_locked(struct softhfi_ctxt *ctx)
{
	if (!ctx->unpin_pending_n)
		return;
	unpin_entries(ctx, ctx->unpin_pending, ctx->unpin_pending_n);
	unpin_done_locked(ctx, ctx->unpin_pending, ctx->unpin_pending_n);
	ctx->unpin_pending_n = 0;
}

/*
 * Drop every pin that invalidations left, waiting for the worker's batch
 * first: afterwards no entry is TID_UNPINNING. May release ctx->lock
 * while it waits, so the caller must hold nothing in the scratch arrays.
 * Returns whether there was anything to wait for or drop. Caller holds
 * ctx->lock, in the owning process (a child has no worker to wait for).
 */
static bool unpin_settle_locked(struct softhfi_ctxt *ctx)
{
	bool any = ctx->unpin_busy || ctx->unpin_pending_n;

	while (ctx->unpin_busy)
		cond_wait_unpinned_locked(ctx);
	unpin_pending_locked(ctx);
	return any;
}

/*
 * hfi1_user_exp_rcv_setup(). Fills ctx->tidlist and @tinfo's tidcnt and
 * length. Returns 0 or a positive errno. Caller holds ctx->lock.
 */
static int exp_rcv_setup_locked(struct softhfi_ctxt *ctx,
				struct hfi1_tid_info *tinfo)
{
	uint64_t vaddr = tinfo->vaddr, seq, mapped_pages = 0;
	unsigned int npages, nsets, pageset_count, tididx, i;
	int pinned, err;

	if (vaddr & (ctx->page_size - 1) || !tinfo->length)
		return EINVAL;
	if (vaddr + tinfo->length < vaddr)
		return EFAULT;
	npages = (tinfo->length + ctx->page_size - 1) / ctx->page_size;
	if (npages > ctx->params.expected_count)
		return EINVAL;
	/* Pages of invalidated entries count until their pins are dropped. */
	if (!can_pin_locked(ctx, npages) &&
	    (!unpin_settle_locked(ctx) || !can_pin_locked(ctx, npages)))
		return ENOMEM;

	/* Watch before pinning, so that no unmapping slips between. */
	seq = softhfi_notifier_seq(&ctx->watch);
	err = softhfi_notifier_watch(&ctx->watch, vaddr,
				     (uint64_t)npages * ctx->page_size);
	if (err)
		return err;

	nsets = find_page_sets(ctx, vaddr, npages, ctx->psets);
	pageset_count = nsets;
	if (ctx->tid_used + nsets > ctx->tid_limit)
		pageset_count = ctx->tid_limit - ctx->tid_used;
	if (!pageset_count)
		return ENOSPC;

	tididx = assign_entries_locked(ctx, vaddr, pageset_count);
	if (!tididx)
		return ENOSPC;

	pinned = pin_entries_locked(ctx, tididx);
	if (pinned < 0) {
		unassign_locked(ctx, 0, tididx);
		/* io_uring says ENOMEM past RLIMIT_MEMLOCK, as hfi1 does. */
		return -pinned;
	}
	unassign_locked(ctx, pinned, tididx);
	tididx = pinned;
	for (i = 0; i < tididx; i++) {
		struct soft_tid *tid =
			&ctx->tids[tid_to_rcventry(ctx, ctx->tidlist[i])];

		tid->state = TID_PROGRAMMED;
		mapped_pages += tid->npages;
	}
	account_pinned_locked(ctx, mapped_pages);
	ctx->tid_used += tididx;

	/* An invalidation during setup: hfi1's mmu_interval_read_retry(). */
	if (softhfi_notifier_changed_since(&ctx->watch, seq, vaddr,
					   vaddr + (uint64_t)npages *
							   ctx->page_size)) {
		for (i = 0; i < tididx; i++)
			release_entry_locked(
				ctx, tid_to_rcventry(ctx, ctx->tidlist[i]));
		ctx->tid_used -= tididx;
		return EBUSY;
	}

	tinfo->tidcnt = tididx;
	tinfo->length = mapped_pages * ctx->page_size;
	return 0;
}

/*
 * Set @bit in the event word; if it was clear, the event fd is owed a
 * signal, which ctxt_unlock() sends. Caller holds ctx->lock.
 */
static void raise_event_locked(struct softhfi_ctxt *ctx, __u64 bit)
{
	__u64 old;

	old = atomic_fetch_or((_Atomic __u64 *)ctx->drv.events, bit);
	if (!(old & bit))
		ctx->event_fd_owed = true;
}

/*
 * The notifier's callback: invalidate every programmed entry that
 * overlaps [start, end). Caller (the drain) holds ctx->lock.
 *
 * An entry is invalidated, queued and the event raised here; its pin is
 * dropped later (unpin_pending), by the notifier's worker outside
 * ctx->lock (sctxt_after_drain()), or by whoever needs it dropped first
 * (unpin_settle_locked()). Dropping a pin can take tens of microseconds
 * (io_uring may free the pages), and neither the event nor
 * TID_INVAL_READ has to wait for it. No data lands in an entry from the
 * moment it is invalidated: placement checks the state under ctx->lock.
 * The pages count as pinned until the pin is dropped, which TID_FREE,
 * the stats and a TID_UPDATE that the pin limit would refuse wait for.
 */
static void invalidate_range_locked(struct softhfi_watch *w, uint64_t start,
				    uint64_t end,
				    enum softhfi_inval_reason reason)
{
	struct softhfi_ctxt *ctx =
		(struct softhfi_ctxt *)((char *)w -
					offsetof(struct softhfi_ctxt, watch));
	unsigned int i, programmed = ctx->tid_used - ctx->tids_invalid;

	/* Events were lost: [0, UINT64_MAX) takes every entry below. */
	if (reason == SOFTHFI_INVAL_OVERFLOW)
		ctx->overflows++;
	for (i = 0; programmed && i < ctx->params.expected_count; i++) {
		struct soft_tid *tid = &ctx->tids[i];
		uint64_t tid_end;

		if (tid->state != TID_PROGRAMMED)
			continue;
		programmed--;
		tid_end = tid->vaddr + (uint64_t)tid->npages * ctx->page_size;
		if (tid_end <= start || tid->vaddr >= end)
			continue;

		/* No more data lands here from now on. */
		tid->state = TID_UNPINNING;
		ctx->unpin_pending[ctx->unpin_pending_n++] = i;
		ctx->tids_invalid++;
		ctx->invalidations++;

		if (ctx->invalid_tid_idx < ctx->params.expected_count) {
			ctx->invalid_tids[ctx->invalid_tid_idx] =
				create_tid(i, tid->npages);
			if (!ctx->invalid_tid_idx)
				raise_event_locked(ctx,
						   HFI1_EVENT_TID_MMU_NOTIFY);
			ctx->invalid_tid_idx++;
		}
	}
}

/* The worker's unlock after its drain: the signal goes with it. */
static void sctxt_watch_unlock(struct softhfi_watch *w)
{
	ctxt_unlock(
		(struct softhfi_ctxt *)((char *)w -
					offsetof(struct softhfi_ctxt, watch)));
}

/*
 * The worker, after applying events: drop the pins invalidations left,
 * outside ctx->lock. The entries stay TID_UNPINNING meanwhile, so no one
 * frees or reuses their slots (TID_FREE waits for `unpinned`).
 */
static void sctxt_after_drain(struct softhfi_watch *w)
{
	struct softhfi_ctxt *ctx =
		(struct softhfi_ctxt *)((char *)w -
					offsetof(struct softhfi_ctxt, watch));
	unsigned int n;

	pthread_mutex_lock(&ctx->lock);
	n = ctx->unpin_pending_n;
	memcpy(ctx->unpin_work, ctx->unpin_pending, n * sizeof(uint32_t));
	ctx->unpin_pending_n = 0;
	ctx->unpin_busy = n;
	ctxt_unlock(ctx);
	if (!n)
		return;

	/*
	 * Let the threads just woken run first (the event's consumer, and
	 * the unmapping thread the monitor let go): on a CPU they share with
	 * us, unpinning (some 50 us for 1 MiB) would otherwise come before
	 * the event, and before the munmap() that it held up returns.
	 */
	sched_yield();
	unpin_entries(ctx, ctx->unpin_work, n);

	pthread_mutex_lock(&ctx->lock);
	unpin_done_locked(ctx, ctx->unpin_work, n);
	ctx->unpin_busy = 0;
	pthread_cond_broadcast(&ctx->unpinned);
	ctxt_unlock(ctx);
}

static int tid_update(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_tid_info tinfo;
	unsigned int i;
	int err;

	err = copy_from_user(ctx, &tinfo, uarg, sizeof(tinfo));
	if (err)
		return err;

	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	err = exp_rcv_setup_locked(ctx, &tinfo);
	if (!err) {
		err = copy_to_user2(
			ctx, tinfo.tidlist, ctx->tidlist,
			sizeof(__u32) * tinfo.tidcnt,
			uarg + offsetof(struct hfi1_tid_info, tidcnt),
			&tinfo.tidcnt,
			sizeof(tinfo.tidcnt) + sizeof(tinfo.length));
		if (err) {
			for (i = 0; i < tinfo.tidcnt; i++)
				release_entry_locked(
					ctx,
					tid_to_rcventry(ctx, ctx->tidlist[i]));
			ctx->tid_used -= tinfo.tidcnt;
		}
	}
	ctxt_unlock(ctx);
	return err;
}

static int tid_free(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_tid_info tinfo;
	unsigned int tididx;
	int err, rcventry;

	err = copy_from_user(ctx, &tinfo, uarg, sizeof(tinfo));
	if (err)
		return err;

	pthread_mutex_lock(&ctx->lock);
	/* An entry's slot is not freed before its pin is dropped. */
	unpin_settle_locked(ctx);
	if (tinfo.tidcnt > ctx->tid_used) {
		err = EINVAL;
		goto out;
	}
	err = copy_from_user(ctx, ctx->tidlist, tinfo.tidlist,
			     sizeof(__u32) * tinfo.tidcnt);
	if (err)
		goto out;
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	unpin_pending_locked(ctx);
	for (tididx = 0; tididx < tinfo.tidcnt; tididx++) {
		rcventry = tid_to_rcventry(ctx, ctx->tidlist[tididx]);
		if (rcventry < 0) {
			err = EINVAL;
			break;
		}
		if (ctx->tids[rcventry].state == TID_UNUSED) {
			err = EBADF;
			break;
		}
		release_entry_locked(ctx, rcventry);
	}
	ctx->tid_used -= tididx;
	tinfo.tidcnt = tididx;
	if (!err)
		err = copy_to_user(
			ctx, uarg + offsetof(struct hfi1_tid_info, tidcnt),
			&tinfo.tidcnt, sizeof(tinfo.tidcnt));
out:
	ctxt_unlock(ctx);
	return err;
}

static int tid_inval_read(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_tid_info tinfo;
	int err;

	err = copy_from_user(ctx, &tinfo, uarg, sizeof(tinfo));
	if (err)
		return err;

	pthread_mutex_lock(&ctx->lock);
	/*
	 * What unmappings that returned queued, as hfi1's queue holds; a
	 * lookup first waits for those under way (sync_events).
	 */
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	tinfo.tidcnt = ctx->invalid_tid_idx;
	/* Written before the queue is emptied: EFAULT loses nothing. */
	err = copy_to_user2(ctx, tinfo.tidlist, ctx->invalid_tids,
			    sizeof(__u32) * tinfo.tidcnt,
			    uarg + offsetof(struct hfi1_tid_info, tidcnt),
			    &tinfo.tidcnt, sizeof(tinfo.tidcnt));
	if (!err && ctx->invalid_tid_idx) {
		ctx->invalid_tid_idx = 0;
		atomic_fetch_and((_Atomic __u64 *)ctx->drv.events,
				 ~(__u64)HFI1_EVENT_TID_MMU_NOTIFY);
	}
	ctxt_unlock(ctx);
	return err;
}

static int ack_event(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	unsigned long events;
	__u64 clear = 0;
	int err, bit;

	err = copy_from_user(ctx, &events, uarg, sizeof(events));
	if (err)
		return err;
	for (bit = 0; bit <= _HFI1_MAX_EVENT_BIT; bit++)
		if (events & (1UL << bit))
			clear |= 1UL << bit;

	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	/* Acknowledging never loses an invalidation still queued. */
	if (ctx->invalid_tid_idx)
		clear &= ~(__u64)HFI1_EVENT_TID_MMU_NOTIFY;
	atomic_fetch_and((_Atomic __u64 *)ctx->drv.events, ~clear);
	ctxt_unlock(ctx);
	return 0;
}

static void free_tables(struct softhfi_ctxt *ctx)
{
	free(ctx->tids);
	free(ctx->groups);
	free(ctx->invalid_tids);
	free(ctx->psets);
	free(ctx->tidlist);
	free(ctx->iovs);
	free(ctx->unpin_pending);
	free(ctx->unpin_work);
}

static int alloc_tables(struct softhfi_ctxt *ctx)
{
	unsigned int n = ctx->params.expected_count, i;

	ctx->tids = calloc(n, sizeof(*ctx->tids));
	ctx->groups = calloc(n / SOFTHFI_GROUP_SIZE, sizeof(*ctx->groups));
	ctx->invalid_tids = calloc(n, sizeof(*ctx->invalid_tids));
	ctx->psets = calloc(n, sizeof(*ctx->psets));
	ctx->tidlist = calloc(n, sizeof(*ctx->tidlist));
	ctx->iovs = calloc(n, sizeof(*ctx->iovs));
	ctx->unpin_pending = calloc(n, sizeof(*ctx->unpin_pending));
	ctx->unpin_work = calloc(n, sizeof(*ctx->unpin_work));
	if (!ctx->tids || !ctx->groups || !ctx->invalid_tids || !ctx->psets ||
	    !ctx->tidlist || !ctx->iovs || !ctx->unpin_pending ||
	    !ctx->unpin_work) {
		free_tables(ctx);
		return ENOMEM;
	}
	TAILQ_INIT(&ctx->group_free);
	TAILQ_INIT(&ctx->group_used);
	TAILQ_INIT(&ctx->group_full);
	for (i = 0; i < n / SOFTHFI_GROUP_SIZE; i++) {
		ctx->groups[i].base = i * SOFTHFI_GROUP_SIZE;
		TAILQ_INSERT_TAIL(&ctx->group_free, &ctx->groups[i], link);
	}
	ctx->tid_limit = n;
	return 0;
}

/* ASSIGN_CTXT: what hfi1 allocates for a context, we set up here. */
static int assign_ctxt(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_user_info uinfo;
	int err;

	err = copy_from_user(ctx, &uinfo, uarg, sizeof(uinfo));
	if (err)
		return err;
	if (ctx->assigned)
		return EINVAL;
	if (uinfo.userversion >> HFI1_SWMAJOR_SHIFT != HFI1_USER_SWMAJOR)
		return ENODEV;
	/* Contexts shared between processes are not emulated. */
	if (uinfo.subctxt_cnt)
		return EINVAL;

	err = alloc_tables(ctx);
	if (err)
		return err;
	err = -io_uring_queue_init(8, &ctx->ring, 0);
	if (err)
		goto err_free_tables;
	ctx->ring_ready = true;
	err = -io_uring_register_buffers_sparse(&ctx->ring,
						ctx->params.expected_count);
	if (err)
		goto err_exit_ring;
	ctx->watch.lock = &ctx->lock;
	ctx->watch.invalidate = invalidate_range_locked;
	ctx->watch.unlock = sctxt_watch_unlock;
	ctx->watch.after_drain = sctxt_after_drain;
	err = softhfi_notifier_attach(&ctx->watch);
	if (err)
		goto err_exit_ring;
	ctx->watching = true;
	ctx->assigned = true;
	return 0;

err_exit_ring:
	io_uring_queue_exit(&ctx->ring);
	ctx->ring_ready = false;
err_free_tables:
	free_tables(ctx);
	return err;
}

static int ctxt_info(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_ctxt_info info = {
		.num_active = 1,
		.unit = ctx->params.unit,
		.ctxt = ctx->params.ctxt,
		.subctxt = 0,
		.rcvtids = ctx->params.expected_count,
		.numa_node = 0,
		.rec_cpu = 0xffff,
	};

	return copy_to_user(ctx, uarg, &info, sizeof(info));
}

static int user_info(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_base_info info = {
		.hw_version = 0,
		.sw_version = HFI1_USER_SWVERSION,
		.bthqp = SOFTHFI_KDETH_QP,
		/* In-process: the token is the word's address itself. */
		.events_bufbase = (uintptr_t)ctx->drv.events,
	};

	return copy_to_user(ctx, uarg, &info, sizeof(info));
}

static int sctxt_ioctl(struct hfi1_drv *drv, unsigned long cmd, void *arg)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	uint64_t uarg = (uintptr_t)arg;
	int vers = HFI1_USER_SWVERSION;
	int err;

	if (!sctxt_owned(ctx)) {
		err = EIO;
		goto out;
	}
	if (cmd == HFI1_IOCTL_GET_VERS) {
		err = copy_to_user(ctx, uarg, &vers, sizeof(vers));
		goto out;
	}
	if (cmd == HFI1_IOCTL_ASSIGN_CTXT) {
		err = assign_ctxt(ctx, uarg);
		goto out;
	}
	if (!ctx->assigned) {
		err = EINVAL;
		goto out;
	}

	switch (cmd) {
	case HFI1_IOCTL_CTXT_INFO:
		err = ctxt_info(ctx, uarg);
		break;
	case HFI1_IOCTL_USER_INFO:
		err = user_info(ctx, uarg);
		break;
	case HFI1_IOCTL_TID_UPDATE:
		err = tid_update(ctx, uarg);
		break;
	case HFI1_IOCTL_TID_FREE:
		err = tid_free(ctx, uarg);
		break;
	case HFI1_IOCTL_TID_INVAL_READ:
		err = tid_inval_read(ctx, uarg);
		break;
	case HFI1_IOCTL_ACK_EVENT:
		err = ack_event(ctx, uarg);
		break;
	default:
		/* No send contexts, eager buffers or pkeys to manage. */
		err = ENOTTY;
		break;
	}
out:
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static void sctxt_close(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	bool owner = sctxt_owned(ctx);

	if (ctx->watching && owner)
		softhfi_notifier_detach(&ctx->watch);
	if (ctx->ring_ready) {
		/* The ring's pins go with its last file reference. */
		if (owner)
			atomic_fetch_sub(&process_pinned_pages,
					 ctx->tid_n_pinned);
		io_uring_queue_exit(&ctx->ring);
	}
	if (ctx->assigned)
		free_tables(ctx);
	munmap(ctx->event_page, ctx->page_size);
	if (ctx->drv.event_fd >= 0)
		close(ctx->drv.event_fd);
	owner_mark_fini(ctx);
	uaccess_out_fini(ctx);
	close(ctx->uaccess_pipe[0]);
	close(ctx->uaccess_pipe[1]);
	pthread_mutex_destroy(&ctx->uaccess_lock);
	pthread_cond_destroy(&ctx->unpinned);
	pthread_mutex_destroy(&ctx->place_lock);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

/*
 * hfi1's MMU notifier runs inside munmap(); ours runs in the notifier's
 * threads, and the event bit may not be raised yet when munmap() returns.
 * Apply what the notifier has logged, so that the caller's next look at
 * the event word sees it. Nothing pending (the usual case): one system
 * call (see unmap_in_flight() in notifier.c) and a few atomic loads, no
 * lock.
 */
static void sctxt_sync_events(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	if (!ctx->watching || !softhfi_notifier_pending(&ctx->watch) ||
	    !sctxt_owned(ctx))
		return;
	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_locked(&ctx->watch);
	ctxt_unlock(ctx);
}

/*
 * sctxt_sync_events() for the unmappings whose munmap() has returned (see
 * softhfi_notifier_pending_returned()): a few atomic loads and no system
 * call, and a drain that does not wait for the kernel either.
 */
static void sctxt_sync_returned(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	if (!ctx->watching || !softhfi_notifier_pending_returned(&ctx->watch) ||
	    !sctxt_owned(ctx))
		return;
	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	ctxt_unlock(ctx);
}

static const struct hfi1_drv_ops sctxt_ops = {
	.name = "soft",
	.ioctl = sctxt_ioctl,
	.close = sctxt_close,
	.sync_events = sctxt_sync_events,
	.sync_returned = sctxt_sync_returned,
};

void softhfi_default_params(struct softhfi_params *params)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(params, 0, sizeof(*params));
	params->expected_count = SOFTHFI_MAX_EXPECTED;
	/* hfi1 gives one user context per CPU unless told otherwise. */
	params->user_contexts = cpus > 0 ? cpus : 1;
	params->cache_size_mb = SOFTHFI_DEFAULT_CACHE_MB;
	params->contig_pages = SOFTHFI_MAX_RUN_PAGES;
	params->ctxt = 1;
}

static bool params_valid(const struct softhfi_params *p)
{
	return p->expected_count && p->expected_count <= SOFTHFI_MAX_EXPECTED &&
	       !(p->expected_count % SOFTHFI_GROUP_SIZE) && p->user_contexts &&
	       p->contig_pages && p->contig_pages <= SOFTHFI_MAX_RUN_PAGES;
}

struct hfi1_drv *softhfi_open(const struct softhfi_params *params)
{
	struct hfi1_user_info uinfo = {
		.userversion = HFI1_USER_SWVERSION,
	};
	struct softhfi_ctxt *ctx;
	size_t word;
	int vers = 0;
	int err, sz;

	if (!params_valid(params)) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&atfork_once, register_atfork);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->params = *params;
	ctx->owner = getpid();
	ctx->page_size = sysconf(_SC_PAGESIZE);
	owner_mark_init(ctx);
	ctx->drv.ops = &sctxt_ops;
	ctx->drv.event_fd = -1;
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->place_lock, NULL);
	pthread_mutex_init(&ctx->uaccess_lock, NULL);
	pthread_cond_init(&ctx->unpinned, NULL);

	if (pipe2(ctx->uaccess_pipe, O_CLOEXEC | O_NONBLOCK)) {
		err = errno;
		goto err_free;
	}
	/* The pipe's capacity: a write that fits never comes back short. */
	sz = fcntl(ctx->uaccess_pipe[1], F_GETPIPE_SZ);
	ctx->uaccess_chunk = sz > 0 ? (size_t)sz : ctx->page_size;
	uaccess_out_init(ctx);

	ctx->event_page = mmap(NULL, ctx->page_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ctx->event_page == MAP_FAILED) {
		err = errno;
		ctx->event_page = NULL;
		goto err_close_pipe;
	}
	/* Readable when an event bit is raised: see raise_event_locked(). */
	ctx->drv.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->drv.event_fd < 0) {
		err = errno;
		munmap(ctx->event_page, ctx->page_size);
		goto err_close_pipe;
	}
	/* hfi1's place for the word: by context, 8 subcontexts each. */
	word = (params->ctxt * HFI1_MAX_SHARED_CTXTS) * sizeof(unsigned long);
	ctx->drv.events = (volatile __u64 *)((char *)ctx->event_page +
					     word % ctx->page_size);

	/* The same sequence that the kernel backend sends to /dev/hfi1_N. */
	if (sctxt_ioctl(&ctx->drv, HFI1_IOCTL_GET_VERS, &vers) ||
	    sctxt_ioctl(&ctx->drv, HFI1_IOCTL_ASSIGN_CTXT, &uinfo) ||
	    sctxt_ioctl(&ctx->drv, HFI1_IOCTL_CTXT_INFO, &ctx->drv.ctxt_info) ||
	    sctxt_ioctl(&ctx->drv, HFI1_IOCTL_USER_INFO, &ctx->drv.base_info)) {
		err = errno;
		sctxt_close(&ctx->drv);
		errno = err;
		return NULL;
	}
	return &ctx->drv;

err_close_pipe:
	uaccess_out_fini(ctx);
	close(ctx->uaccess_pipe[0]);
	close(ctx->uaccess_pipe[1]);
err_free:
	owner_mark_fini(ctx);
	pthread_mutex_destroy(&ctx->uaccess_lock);
	pthread_cond_destroy(&ctx->unpinned);
	pthread_mutex_destroy(&ctx->place_lock);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
	errno = err;
	return NULL;
}

/*
 * Check @tidinfo and the range against the entry, then queue one
 * READ_FIXED (none if @len is 0). io_uring resolves the slot when the
 * request is submitted, so holding ctx->lock over submission means the
 * pages written are those of the entry as checked, even if it is
 * invalidated or freed meanwhile. Returns 0 or a positive errno. Caller
 * holds ctx->place_lock.
 */
static int submit_place(struct softhfi_ctxt *ctx, uint32_t tidinfo,
			size_t offset, int fd, size_t len)
{
	struct io_uring_sqe *sqe;
	struct soft_tid *tid;
	uint64_t size;
	int rcventry, err = 0, ret;

	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_locked(&ctx->watch);
	rcventry = tid_to_rcventry(ctx, tidinfo);
	if (rcventry < 0) {
		err = EINVAL;
		goto out;
	}
	tid = &ctx->tids[rcventry];
	if (tid->state == TID_UNUSED) {
		err = EBADF;
		goto out;
	}
	if (tid->state == TID_INVALIDATED || tid->state == TID_UNPINNING) {
		err = ESTALE;
		goto out;
	}
	size = (uint64_t)tid->npages * ctx->page_size;
	if (SOFTHFI_TID_GET(tidinfo, LEN) != tid->npages || offset > size ||
	    len > size - offset || len > UINT_MAX) {
		err = EINVAL;
		goto out;
	}
	if (!len)
		goto out;
	sqe = io_uring_get_sqe(&ctx->ring);
	if (!sqe) {
		err = EBUSY;
		goto out;
	}
	io_uring_prep_read_fixed(sqe, fd,
				 (void *)(uintptr_t)(tid->vaddr + offset), len,
				 -1, rcventry);
	ret = io_uring_submit(&ctx->ring);
	if (ret != 1)
		err = ret < 0 ? -ret : EIO;
out:
	ctxt_unlock(ctx);
	return err;
}

ssize_t softhfi_place(struct hfi1_drv *drv, uint32_t tidinfo, size_t offset,
		      int fd, size_t len)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	struct io_uring_cqe *cqe;
	size_t placed = 0;
	int err = 0, ret;

	if (!sctxt_owned(ctx)) {
		errno = EIO;
		return -1;
	}
	pthread_mutex_lock(&ctx->place_lock);
	/* Nothing to move, but the entry and offset are checked all the same */
	if (!len)
		err = submit_place(ctx, tidinfo, offset, fd, 0);
	while (placed < len) {
		err = submit_place(ctx, tidinfo, offset + placed, fd,
				   len - placed);
		if (err)
			break;
		ret = io_uring_wait_cqe(&ctx->ring, &cqe);
		if (ret < 0) {
			err = -ret;
			break;
		}
		ret = cqe->res;
		io_uring_cqe_seen(&ctx->ring, cqe);
		if (ret < 0) {
			err = -ret;
			break;
		}
		if (!ret)
			break;
		placed += ret;
	}
	pthread_mutex_unlock(&ctx->place_lock);
	if (err && !placed) {
		errno = err;
		return -1;
	}
	return placed;
}

void softhfi_get_stats(struct hfi1_drv *drv, struct softhfi_stats *stats)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	memset(stats, 0, sizeof(*stats));
	pthread_mutex_lock(&ctx->lock);
	if (ctx->assigned && sctxt_owned(ctx)) {
		softhfi_notifier_drain_locked(&ctx->watch);
		/* Invalidated pages no longer count once the event is seen. */
		unpin_settle_locked(ctx);
	}
	stats->tids_used = ctx->tid_used;
	stats->tids_invalid = ctx->tids_invalid;
	stats->inval_queued = ctx->invalid_tid_idx;
	stats->pinned_pages = ctx->tid_n_pinned;
	stats->invalidations = ctx->invalidations;
	stats->overflows = ctx->overflows;
	stats->uffd_registrations = ctx->watch.registrations;
	ctxt_unlock(ctx);
}

uint64_t softhfi_process_pinned_pages(void)
{
	return atomic_load(&process_pinned_pages);
}
