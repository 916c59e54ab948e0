// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Memory-management tests of the soft HFI's expected-receive (TID)
 * interface: what happens to programmed entries when the memory behind
 * them goes away (munmap, madvise, mremap), the invalidation queue and its
 * event bit, the pin limit as an unprivileged user, fork(), the
 * notifier's monitor thread against the application's allocator, and what
 * a context does when it falls too far behind the notifier's log.
 *
 * Everything goes through the driver interface as a user of it would:
 * softhfi_open(), hfi1_drv_ioctl() with the kernel's commands and structs,
 * hfi1_drv_place() for the adapter's DMA and softhfi_get_stats() for counts.
 * Asynchronous effects (the worker raising the event bit) are polled with
 * a deadline, never waited for with a sleep. softhfi_get_stats() applies
 * every event logged so far, and the notifier logs an unmapping before
 * munmap() returns, so stats taken after munmap() are conclusive.
 *
 * Forked children must not use cmocka's asserts (they would unwind into
 * the child's copy of the test runner): they check with CHILD_CHECK and
 * report the first failure through a pipe and their exit status, and the
 * parent turns that into a cmocka failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <liburing.h>

#include "softhfi.h"
#include "unit_helpers.h"

#define DEADLINE_MS 5000 /* for anything asynchronous to happen */
#define CHILD_DEADLINE_MS 30000 /* for a child to finish */

static size_t pg;

struct fixture {
	int sv[2]; /* the wire: write into sv[0], place from sv[1] */
	uint64_t pinned_at_start;
	struct hfi1_drv *drv;
};

/* Helpers */

/* Between two looks at a condition polled with a deadline. */
static void poll_pause(void)
{
	struct timespec ts = { .tv_nsec = 100 * 1000 };

	nanosleep(&ts, NULL);
}

static uint64_t event_word(struct hfi1_drv *drv)
{
	return __atomic_load_n(drv->events, __ATOMIC_ACQUIRE);
}

/*
 * The worker raises the bit on its own: nothing here calls into the
 * driver while waiting.
 */
static bool wait_mmu_event(struct hfi1_drv *drv)
{
	uint64_t end = now_ms() + DEADLINE_MS;

	while (!(event_word(drv) & HFI1_EVENT_TID_MMU_NOTIFY)) {
		if (now_ms() > end)
			return false;
		poll_pause();
	}
	return true;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * TID_UPDATE: 0 or the errno; @cnt and @mapped (bytes) what was
 * programmed. The driver may write as many tids as the context has
 * entries: they land in a list of that size, of which the first @room go
 * to @tids.
 */
static int tid_update(struct hfi1_drv *drv, void *buf, size_t len,
		      uint32_t *tids, uint32_t room, uint32_t *cnt,
		      uint32_t *mapped)
{
	uint32_t all[SOFTHFI_MAX_EXPECTED];
	struct hfi1_tid_info tinfo = {
		.vaddr = (uintptr_t)buf,
		.tidlist = (uintptr_t)all,
		.length = len,
	};

	if (hfi1_drv_ioctl(drv, HFI1_IOCTL_TID_UPDATE, &tinfo))
		return errno;
	memcpy(tids, all,
	       sizeof(*tids) * (tinfo.tidcnt < room ? tinfo.tidcnt : room));
	if (cnt)
		*cnt = tinfo.tidcnt;
	if (mapped)
		*mapped = tinfo.length;
	return 0;
}

/* TID_FREE: 0 or the errno; @freed how many went back. */
static int tid_free(struct hfi1_drv *drv, const uint32_t *tids, uint32_t n,
		    uint32_t *freed)
{
	struct hfi1_tid_info tinfo = {
		.tidlist = (uintptr_t)tids,
		.tidcnt = n,
	};

	if (hfi1_drv_ioctl(drv, HFI1_IOCTL_TID_FREE, &tinfo))
		return errno;
	if (freed)
		*freed = tinfo.tidcnt;
	return 0;
}

/* TID_INVAL_READ: as many as were queued, of which @room go to @tids. */
static int tid_inval_read(struct hfi1_drv *drv, uint32_t *tids, uint32_t room,
			  uint32_t *cnt)
{
	uint32_t all[SOFTHFI_MAX_EXPECTED];
	struct hfi1_tid_info tinfo = { .tidlist = (uintptr_t)all };

	if (hfi1_drv_ioctl(drv, HFI1_IOCTL_TID_INVAL_READ, &tinfo))
		return errno;
	memcpy(tids, all,
	       sizeof(*tids) * (tinfo.tidcnt < room ? tinfo.tidcnt : room));
	*cnt = tinfo.tidcnt;
	return 0;
}

static int ack_event(struct hfi1_drv *drv, unsigned long events)
{
	return hfi1_drv_ioctl(drv, HFI1_IOCTL_ACK_EVENT, &events) ? errno : 0;
}

static bool all_bytes(const void *p, int c, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != (unsigned char)c)
			return false;
	return true;
}

/* Throw away whatever a failed placement left on the wire. */
static void drain_wire(int fd)
{
	char junk[4096];

	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

/*
 * Put @len bytes of @c on the wire and have the adapter place them at
 * @offset into entry @tid. Returns hfi1_drv_place()'s result (errno set).
 */
static ssize_t place(int sv[2], struct hfi1_drv *drv, uint32_t tid,
		     size_t offset, int c, size_t len)
{
	char data[8192];
	ssize_t ret;
	int err;

	if (len > sizeof(data))
		return -2;
	memset(data, c, len);
	if (write(sv[0], data, len) != (ssize_t)len)
		return -2;
	ret = hfi1_drv_place(drv, tid, offset, sv[1], len);
	err = errno;
	drain_wire(sv[1]);
	errno = err;
	return ret;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether the @n tids at @a and @b are the same set. */
static bool same_tids(uint32_t *a, uint32_t *b, uint32_t n)
{
	qsort(a, n, sizeof(*a), cmp_u32);
	qsort(b, n, sizeof(*b), cmp_u32);
	return !memcmp(a, b, n * sizeof(*a));
}

static unsigned int tid_pages(uint32_t tid)
{
	return HFI1_TID_GET(tid, LEN);
}

/* The end of every test: the context is gone and so are its pins. */
static void close_and_check_pins(struct fixture *f)
{
	hfi1_drv_close(f->drv);
	f->drv = NULL;
	assert_int_equal(softhfi_process_pinned_pages(), f->pinned_at_start);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv)) {
		free(f);
		return -1;
	}
	f->pinned_at_start = softhfi_process_pinned_pages();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	hfi1_drv_close(f->drv); /* only if the test failed half-way */
	close(f->sv[0]);
	close(f->sv[1]);
	free(f);
	return 0;
}

/* Forked children */

struct child {
	pid_t pid;
	int up[2]; /* child -> parent: progress tokens */
	int down[2]; /* parent -> child */
	int report[2]; /* child -> parent: what failed */
};

static void token_send(int fd, char token)
{
	if (write(fd, &token, 1) != 1)
		_exit(3);
}

/* Whether @token arrives on @fd within @ms. */
static bool token_wait(int fd, char token, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char got;

	if (poll(&pfd, 1, ms) != 1)
		return false;
	return read(fd, &got, 1) == 1 && got == token;
}

/* Returns true in the child. */
static bool child_start(struct child *c)
{
	assert_int_equal(pipe2(c->up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(c->down, O_CLOEXEC), 0);
	assert_int_equal(pipe2(c->report, O_CLOEXEC), 0);
	fflush(NULL);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (!c->pid) {
		close(c->up[0]);
		close(c->down[1]);
		close(c->report[0]);
		child_report_fd = c->report[1];
		return true;
	}
	close(c->up[1]);
	close(c->down[0]);
	close(c->report[1]);
	return false;
}

/* Wait for the child and fail (or skip) the test as it says. */
static void child_reap(struct child *c)
{
	struct pollfd pfd = { .fd = c->report[0], .events = POLLIN };
	uint64_t end = now_ms() + CHILD_DEADLINE_MS;
	char msg[512] = "";
	size_t len = 0;
	int status;
	ssize_t n;

	for (;;) {
		int left = (int)(end - now_ms());

		if (now_ms() >= end || poll(&pfd, 1, left) != 1) {
			kill(c->pid, SIGKILL);
			snprintf(msg + len, sizeof(msg) - len,
				 "%schild did not finish", len ? "; " : "");
			break;
		}
		n = read(c->report[0], msg + len, sizeof(msg) - 1 - len);
		if (n <= 0)
			break;
		len += n;
		msg[len] = 0;
	}
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	close(c->up[0]);
	close(c->down[1]);
	close(c->report[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP)
		skip();
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("%s (wait status %#x)", msg[0] ? msg : "child failed",
			 status);
}

/* In the parent: the child's next token, or the child's own failure. */
static void parent_expect(struct child *c, char token)
{
	if (token_wait(c->up[0], token, CHILD_DEADLINE_MS))
		return;
	child_reap(c);
	fail_msg("child never sent '%c'", token);
}

/*
 * io_uring gives a ring's pins back to the user only some milliseconds
 * after the ring's last process has gone. Wait until the user's earlier
 * processes (the previous test's) hold (almost) none of the limit: a
 * buffer of all but 4 pages of it can be registered.
 */
static void child_wait_memlock_drained(void)
{
	size_t npages = MEMLOCK_LIMIT / pg - 4;
	uint64_t end = now_ms() + DEADLINE_MS;
	struct io_uring ring;
	struct iovec iov;
	int err;

	iov.iov_base = map_pages(npages);
	iov.iov_len = npages * pg;
	CHILD_CHECK(iov.iov_base);
	/*
	 * One ring for all tries: every ring charges pages of its own until
	 * its deferred teardown, so a new ring per try would keep the limit
	 * full by itself.
	 */
	while ((err = io_uring_queue_init(2, &ring, 0)) == -ENOMEM &&
	       now_ms() < end)
		poll_pause();
	errno = -err;
	CHILD_CHECK(!err);
	while ((err = io_uring_register_buffers(&ring, &iov, 1)) == -ENOMEM &&
	       now_ms() < end)
		poll_pause();
	errno = -err;
	CHILD_CHECK(!err);
	/* Given back at once; the ring's own pages go a little later. */
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	munmap(iov.iov_base, iov.iov_len);
}

/*
 * In a child: become user nobody with RLIMIT_MEMLOCK at @limit, which
 * leaves no CAP_IPC_LOCK. Skips when the test runs unprivileged.
 */
static void child_become_nobody(const struct passwd *nobody, rlim_t limit)
{
	struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };

	if (geteuid() != 0 || !nobody)
		_exit(CHILD_SKIP);
	CHILD_CHECK(!setrlimit(RLIMIT_MEMLOCK, &rl));
	CHILD_CHECK(!setgroups(0, NULL));
	CHILD_CHECK(!setgid(nobody->pw_gid));
	CHILD_CHECK(!setuid(nobody->pw_uid));
	CHILD_CHECK(geteuid() == nobody->pw_uid);
	CHILD_CHECK(!has_cap_ipc_lock());
	child_wait_memlock_drained();
}

/* The passwd entry of nobody, looked up before any fork; NULL: skip. */
static const struct passwd *lookup_nobody(void)
{
	static struct passwd pw;
	struct passwd *p;

	if (geteuid() != 0)
		return NULL;
	p = getpwnam("nobody");
	if (!p || !p->pw_uid)
		return NULL;
	pw = *p;
	return &pw;
}

/* 1. munmap, then mmap(MAP_FIXED) at the same address */

/*
 * The entry is invalidated on munmap: the adapter refuses it (ESTALE),
 * the event bit is raised by itself, TID_INVAL_READ returns exactly that
 * tidinfo, and nothing reaches the new mapping.
 */
static void test_remap_fixed_invalidates(void **state)
{
	struct fixture *f = *state;
	struct softhfi_stats st;
	uint32_t tid, inval[8], cnt, len;
	char *buf, *again;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	assert_non_null(buf);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, &len),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(len, 2 * pg);

	/* The entry takes data while the memory is there. */
	assert_int_equal(place(f->sv, f->drv, tid, 8, 0x11, 64), 64);
	assert_true(all_bytes(buf + 8, 0x11, 64));
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);

	assert_int_equal(munmap(buf, 2 * pg), 0);
	again = mmap(buf, 2 * pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	assert_ptr_equal(again, buf);
	assert_true(wait_mmu_event(f->drv));

	errno = 0;
	assert_int_equal(place(f->sv, f->drv, tid, 0, 0x22, 2 * pg), -1);
	assert_int_equal(errno, ESTALE);
	assert_true(all_bytes(again, 0, 2 * pg));

	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 1);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.inval_queued, 1);
	assert_int_equal(st.pinned_pages, 0);
	assert_int_equal(st.invalidations, 1);

	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 0);

	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	assert_int_equal(cnt, 1);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.tids_invalid, 0);
	assert_true(all_bytes(again, 0, 2 * pg));
	munmap(again, 2 * pg);
	close_and_check_pins(f);
}

/*
 * A range registered once is not registered again (no UFFDIO_REGISTER)
 * while it stays mapped (and no event finds it with nothing programmed:
 * see test_unprogrammed_range_unwatched()); once it is unmapped and
 * mapped again at the same address, the new memory is registered, and
 * its own munmap() invalidates the entry over it.
 */
static void test_registered_range_reused(void **state)
{
	struct fixture *f = *state;
	uint32_t tid, inval[8], cnt, len;
	struct softhfi_stats st;
	uint64_t regs;
	char *buf, *again;
	int i;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(4);
	assert_non_null(buf);
	for (i = 0; i < 3; i++) {
		/* The third time, a part of it. */
		assert_int_equal(tid_update(f->drv, buf + (i == 2 ? pg : 0),
					    (i == 2 ? 1 : 2) * pg, &tid, 1,
					    &cnt, &len),
				 0);
		assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	}
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.uffd_registrations, 1);
	regs = st.uffd_registrations;

	/* Past the registered range: registered again. */
	assert_int_equal(tid_update(f->drv, buf, 4 * pg, &tid, 1, &cnt, &len),
			 0);
	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.uffd_registrations, ++regs);

	assert_int_equal(munmap(buf, 4 * pg), 0);
	again = mmap(buf, 4 * pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	assert_ptr_equal(again, buf);
	memset(again, 0x5a, 4 * pg);
	assert_int_equal(tid_update(f->drv, again, 2 * pg, &tid, 1, &cnt, &len),
			 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.uffd_registrations, ++regs);

	/* Watched: its munmap() takes the entry. */
	assert_int_equal(munmap(again, 4 * pg), 0);
	assert_true(hfi1_drv_events_returned(f->drv) &
		    HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid);
	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	close_and_check_pins(f);
}

/*
 * hfi1's MMU notifier runs inside munmap(): the event bit is set when
 * munmap() returns. Ours runs in another thread, and hfi1_drv_events()
 * makes up for it: right after munmap(), with no other call, it sees the
 * bit, every time; so does hfi1_drv_events_returned(), which has only
 * returned munmap()s to make up for. The event fd is readable then too (or
 * a moment later), and by itself (the worker) when nobody calls in.
 */
static void test_events_sync(void **state)
{
	struct fixture *f = *state;
	struct pollfd pfd = { .events = POLLIN };
	uint32_t tid, inval[8], cnt;
	unsigned int round;
	uint64_t count;
	char *buf;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	pfd.fd = f->drv->event_fd;
	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_false(hfi1_drv_events(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);

	for (round = 0; round < 96; round++) {
		unsigned int how = round % 3; /* events, returned, worker */

		buf = map_pages(2);
		assert_non_null(buf);
		assert_int_equal(
			tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			0);
		assert_int_equal(munmap(buf, 2 * pg), 0);
		/*
		 * The fd is signalled as the lock that raised the bit is
		 * dropped: whoever raised it may still be on its way there.
		 */
		if (how == 0) {
			assert_true(hfi1_drv_events(f->drv) &
				    HFI1_EVENT_TID_MMU_NOTIFY);
			assert_int_equal(poll(&pfd, 1, DEADLINE_MS), 1);
		} else if (how == 1) {
			assert_true(hfi1_drv_events_returned(f->drv) &
				    HFI1_EVENT_TID_MMU_NOTIFY);
			assert_int_equal(poll(&pfd, 1, DEADLINE_MS), 1);
		} else {
			/* Nothing calls in: the worker raises it. */
			assert_int_equal(poll(&pfd, 1, DEADLINE_MS), 1);
			assert_true(event_word(f->drv) &
				    HFI1_EVENT_TID_MMU_NOTIFY);
		}
		assert_int_equal(read(pfd.fd, &count, sizeof(count)),
				 sizeof(count));
		assert_int_equal(count, 1);

		assert_int_equal(
			tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			0);
		assert_int_equal(cnt, 1);
		assert_int_equal(inval[0], tid);
		assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
		assert_false(hfi1_drv_events(f->drv) &
			     HFI1_EVENT_TID_MMU_NOTIFY);
		assert_int_equal(poll(&pfd, 1, 0), 0);
	}
	close_and_check_pins(f);
}

struct unmapper {
	char *buf;
	size_t len;
	int ret;
};

static void *unmap_thread(void *arg)
{
	struct unmapper *u = arg;

	u->ret = munmap(u->buf, u->len);
	return NULL;
}

/*
 * munmap() frees the address before it returns: userfaultfd delivers its
 * event only after the kernel has dropped mmap_lock, so another thread's
 * mmap() can be handed the same address while the unmapping thread still
 * waits for the event to be read. hfi1's MMU notifier runs before the
 * address is free; so the invalidation of the old memory's entry must be
 * in the event word as soon as the address can be mapped again, or a
 * registration cache hits the stale entry for the new memory.
 */
static void test_events_sync_address_reuse(void **state)
{
	struct fixture *f = *state;
	uint32_t tid, inval[8], cnt;
	struct unmapper u;
	unsigned int round, late = 0;
	pthread_t thread;
	char *buf, *again;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	for (round = 0; round < 200; round++) {
		buf = map_pages(2);
		assert_non_null(buf);
		memset(buf, 1, 2 * pg);
		assert_int_equal(
			tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			0);
		u = (struct unmapper){ .buf = buf, .len = 2 * pg };
		assert_int_equal(
			pthread_create(&thread, NULL, unmap_thread, &u), 0);
		/* EEXIST until the other thread's munmap() took it away. */
		do
			again = mmap(buf, 2 * pg, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS |
					     MAP_FIXED_NOREPLACE,
				     -1, 0);
		while (again == MAP_FAILED && errno == EEXIST);
		assert_ptr_equal(again, buf);
		late += !(hfi1_drv_events(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
		assert_int_equal(pthread_join(thread, NULL), 0);
		assert_int_equal(u.ret, 0);

		assert_true(hfi1_drv_events(f->drv) &
			    HFI1_EVENT_TID_MMU_NOTIFY);
		assert_int_equal(
			tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			0);
		assert_int_equal(cnt, 1);
		assert_int_equal(inval[0], tid);
		assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
		assert_int_equal(munmap(again, 2 * pg), 0);
	}
	if (late)
		print_message("%u of %u reused addresses before their event\n",
			      late, round);
	assert_int_equal(late, 0);
	close_and_check_pins(f);
}

struct placer {
	struct hfi1_drv *drv;
	uint32_t tid;
	int fd;
	size_t len;
	_Atomic pid_t tid_of_thread;
	ssize_t ret;
	int err;
};

static void *placer_thread(void *arg)
{
	struct placer *p = arg;

	atomic_store(&p->tid_of_thread, gettid());
	p->ret = hfi1_drv_place(p->drv, p->tid, 0, p->fd, p->len);
	p->err = errno;
	return NULL;
}

/* Whether thread @tid sleeps in io_uring_enter(2) (its wait for data). */
static bool blocked_in_io_uring(pid_t tid)
{
	char path[64], buf[256], *state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	if (strtol(buf, NULL, 10) != SYS_io_uring_enter)
		return false;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	state = strrchr(buf, ')');
	return state && state[1] == ' ' && state[2] == 'S';
}

/*
 * The hardware's race: a placement is under way (submitted, waiting for
 * data) when the buffer is unmapped and something else mapped at the same
 * address. The DMA goes to the pages that were pinned, never to the new
 * mapping.
 */
static void test_remap_fixed_during_dma(void **state)
{
	struct fixture *f = *state;
	struct placer p = { 0 };
	const char *why = NULL;
	struct timespec deadline;
	struct softhfi_stats st;
	uint32_t tid, inval[8], cnt;
	char data[8192];
	char *buf, *again;
	pthread_t th;
	uint64_t end;

	assert_true(2 * pg <= sizeof(data));
	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	assert_non_null(buf);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 1);

	p.drv = f->drv;
	p.tid = tid;
	p.fd = f->sv[1];
	p.len = 2 * pg;
	assert_int_equal(pthread_create(&th, NULL, placer_thread, &p), 0);
	/*
	 * No cmocka assert while the thread may still use the context:
	 * note what failed, let the thread finish, then fail.
	 */
	end = now_ms() + DEADLINE_MS;
	while (!atomic_load(&p.tid_of_thread) ||
	       !blocked_in_io_uring(atomic_load(&p.tid_of_thread))) {
		if (now_ms() > end) {
			why = "the placement never waited in io_uring_enter";
			break;
		}
		poll_pause();
	}
	if (!why) {
		if (munmap(buf, 2 * pg) ||
		    mmap(buf, 2 * pg, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != buf)
			why = "munmap + mmap(MAP_FIXED) failed";
		else if (!wait_mmu_event(f->drv))
			why = "no TID_MMU_NOTIFY event";
	}
	again = buf;

	/* The data arrives in any case: it releases the placement. */
	memset(data, 0x5a, 2 * pg);
	if (write(f->sv[0], data, 2 * pg) != (ssize_t)(2 * pg) && !why)
		why = "could not send the data";
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DEADLINE_MS / 1000;
	if (pthread_timedjoin_np(th, NULL, &deadline)) {
		/* Stuck: end the read, then the thread, before failing. */
		shutdown(f->sv[1], SHUT_RDWR);
		pthread_join(th, NULL);
		fail_msg("the placement did not finish after the data came");
	}
	if (why)
		fail_msg("%s", why);

	/*
	 * The read was submitted before the invalidation, so it completes,
	 * into the pinned pages (which nothing maps any more).
	 */
	if (p.ret <= 0)
		fail_msg("the placement returned %zd (errno %d)", p.ret, p.err);
	assert_true(all_bytes(again, 0, 2 * pg));
	drain_wire(f->sv[1]);

	errno = 0;
	assert_int_equal(place(f->sv, f->drv, tid, 0, 0x66, 16), -1);
	assert_int_equal(errno, ESTALE);
	assert_true(all_bytes(again, 0, 2 * pg));

	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.pinned_pages, 0);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid);
	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	assert_int_equal(cnt, 1);
	assert_true(all_bytes(again, 0, 2 * pg));
	munmap(again, 2 * pg);
	close_and_check_pins(f);
}

/* 2. What else takes the memory away */

/*
 * After the memory behind the context's single entry @tid went away: the
 * event comes by itself, TID_INVAL_READ names exactly @tid, the adapter
 * refuses it, and TID_FREE gives the slot back.
 */
static void expect_only_invalidated(struct fixture *f, uint32_t tid)
{
	struct softhfi_stats st;
	uint32_t inval[8], cnt = 0;

	assert_true(wait_mmu_event(f->drv));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 1);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.inval_queued, 1);
	assert_int_equal(st.pinned_pages, 0);
	assert_int_equal(st.invalidations, 1);

	errno = 0;
	assert_int_equal(place(f->sv, f->drv, tid, 0, 0x33, 32), -1);
	assert_int_equal(errno, ESTALE);

	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	assert_int_equal(cnt, 1);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.tids_invalid, 0);
}

static void check_madvise(struct fixture *f, int advice)
{
	uint32_t tid, cnt;
	char *buf;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	assert_non_null(buf);
	memset(buf, 0x44, 2 * pg);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(madvise(buf + pg, pg, advice), 0);
	expect_only_invalidated(f, tid);
	munmap(buf, 2 * pg);
	close_and_check_pins(f);
}

static void test_madv_dontneed(void **state)
{
	check_madvise(*state, MADV_DONTNEED);
}

static void test_madv_free(void **state)
{
	check_madvise(*state, MADV_FREE);
}

/* mremap(MREMAP_MAYMOVE | MREMAP_FIXED) moves the buffer elsewhere. */
static void test_mremap_move(void **state)
{
	struct fixture *f = *state;
	uint32_t tid, cnt;
	char *buf, *target, *moved;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	target = mmap(NULL, 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		      0);
	assert_non_null(buf);
	assert_true(target != MAP_FAILED);
	memset(buf, 0x55, 2 * pg);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 1);

	moved = mremap(buf, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED,
		       target);
	assert_ptr_equal(moved, target);
	expect_only_invalidated(f, tid);
	/* The pages moved with their contents; the adapter wrote nothing. */
	assert_true(all_bytes(moved, 0x55, 2 * pg));
	munmap(moved, 2 * pg);
	close_and_check_pins(f);
}

/*
 * A shrinking mremap unmaps the tail: of four one-page entries only the
 * last is invalidated, the others still take data.
 */
static void test_mremap_shrink(void **state)
{
	struct fixture *f = *state;
	uint32_t tids[4], inval[8], cnt, len, i;
	struct softhfi_stats st;
	char *buf;

	f->drv = open_ctx(0, 1, 0);
	assert_non_null(f->drv);
	buf = map_pages(4);
	assert_non_null(buf);
	assert_int_equal(tid_update(f->drv, buf, 4 * pg, tids, ARRAY_SIZE(tids),
				    &cnt, &len),
			 0);
	assert_int_equal(cnt, 4);
	assert_int_equal(len, 4 * pg);

	assert_ptr_equal(mremap(buf, 4 * pg, 3 * pg, 0), buf);
	assert_true(wait_mmu_event(f->drv));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 4);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.pinned_pages, 3);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tids[3]);

	errno = 0;
	assert_int_equal(place(f->sv, f->drv, tids[3], 0, 0x77, 16), -1);
	assert_int_equal(errno, ESTALE);
	for (i = 0; i < 3; i++) {
		assert_int_equal(place(f->sv, f->drv, tids[i], 0, 0x70 + i, 16),
				 16);
		assert_true(all_bytes(buf + i * pg, 0x70 + i, 16));
	}

	assert_int_equal(tid_free(f->drv, tids, 4, &cnt), 0);
	assert_int_equal(cnt, 4);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.pinned_pages, 0);
	munmap(buf, 3 * pg);
	close_and_check_pins(f);
}

/* Growing in place takes nothing away: no entry is invalidated. */
static void test_mremap_grow_keeps(void **state)
{
	struct fixture *f = *state;
	struct softhfi_stats st;
	uint32_t tid, cnt;
	char *buf;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(4);
	assert_non_null(buf);
	/* Make room after the buffer before it is watched. */
	assert_int_equal(munmap(buf + 2 * pg, 2 * pg), 0);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 1);

	assert_ptr_equal(mremap(buf, 2 * pg, 4 * pg, 0), buf);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.invalidations, 0);
	assert_int_equal(st.tids_invalid, 0);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(place(f->sv, f->drv, tid, pg, 0x78, 16), 16);
	assert_true(all_bytes(buf + pg, 0x78, 16));

	/* Positive control: unmapping it does invalidate. */
	assert_int_equal(munmap(buf, 4 * pg), 0);
	expect_only_invalidated(f, tid);
	close_and_check_pins(f);
}

/*
 * munmap of part of a buffer of several entries invalidates the entries
 * it overlaps and no other, down to the page on either side.
 */
static void test_partial_munmap(void **state)
{
	struct fixture *f = *state;
	uint32_t tids[8], inval[8], want[2], cnt, len, i;
	struct softhfi_stats st;
	char *buf;

	/*
	 * 7 pages inside one 2 MiB block: entries of 4, 2 and 1 pages at
	 * pages 0, 4 and 6.
	 */
	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(7);
	assert_non_null(buf);
	assert_int_equal(tid_update(f->drv, buf, 7 * pg, tids, ARRAY_SIZE(tids),
				    &cnt, &len),
			 0);
	assert_int_equal(cnt, 3);
	assert_int_equal(len, 7 * pg);
	assert_int_equal(tid_pages(tids[0]), 4);
	assert_int_equal(tid_pages(tids[1]), 2);
	assert_int_equal(tid_pages(tids[2]), 1);

	/* Page 4: the 2-page entry; the 4-page one ends where it starts. */
	assert_int_equal(munmap(buf + 4 * pg, pg), 0);
	assert_true(wait_mmu_event(f->drv));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 3);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.pinned_pages, 5);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tids[1]);
	assert_int_equal(place(f->sv, f->drv, tids[0], 3 * pg, 0x61, 16), 16);
	assert_true(all_bytes(buf + 3 * pg, 0x61, 16));
	assert_int_equal(place(f->sv, f->drv, tids[2], 0, 0x62, 16), 16);
	assert_true(all_bytes(buf + 6 * pg, 0x62, 16));

	/*
	 * Page 5: the rest of that entry, which is invalid already; the
	 * 1-page entry starts where it ends. Nothing new to tell.
	 */
	assert_int_equal(munmap(buf + 5 * pg, pg), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.invalidations, 1);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.inval_queued, 0);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(place(f->sv, f->drv, tids[2], 0, 0x63, 16), 16);
	assert_true(all_bytes(buf + 6 * pg, 0x63, 16));

	/* Page 3: the last page of the 4-page entry. */
	assert_int_equal(munmap(buf + 3 * pg, pg), 0);
	assert_true(wait_mmu_event(f->drv));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_invalid, 2);
	assert_int_equal(st.pinned_pages, 1);
	assert_int_equal(st.invalidations, 2);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tids[0]);
	assert_int_equal(place(f->sv, f->drv, tids[2], 0, 0x64, 16), 16);
	assert_true(all_bytes(buf + 6 * pg, 0x64, 16));

	assert_int_equal(tid_free(f->drv, tids, 3, &cnt), 0);
	assert_int_equal(cnt, 3);
	munmap(buf, 7 * pg);

	/* Eight one-page entries; unmap pages 2 and 3 of them. */
	buf = map_pages(8);
	assert_non_null(buf);
	hfi1_drv_close(f->drv);
	f->drv = open_ctx(0, 1, 0);
	assert_non_null(f->drv);
	assert_int_equal(tid_update(f->drv, buf, 8 * pg, tids, ARRAY_SIZE(tids),
				    &cnt, &len),
			 0);
	assert_int_equal(cnt, 8);
	assert_int_equal(munmap(buf + 2 * pg, 2 * pg), 0);
	assert_true(wait_mmu_event(f->drv));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 8);
	assert_int_equal(st.tids_invalid, 2);
	assert_int_equal(st.pinned_pages, 6);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 2);
	want[0] = tids[2];
	want[1] = tids[3];
	assert_true(same_tids(inval, want, 2));
	for (i = 0; i < 8; i++) {
		if (i == 2 || i == 3)
			continue;
		assert_int_equal(place(f->sv, f->drv, tids[i], 0, 0x40 + i, 8),
				 8);
		assert_true(all_bytes(buf + i * pg, 0x40 + i, 8));
	}
	assert_int_equal(tid_free(f->drv, tids, 8, &cnt), 0);
	assert_int_equal(cnt, 8);
	munmap(buf, 8 * pg);
	close_and_check_pins(f);
}

/* An entry freed before its memory goes: nothing to tell. */
static void test_freed_entry_no_event(void **state)
{
	struct fixture *f = *state;
	uint32_t tid_a, tid_b, inval[8], cnt;
	struct softhfi_stats st;
	char *a, *b;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	a = map_pages(1);
	b = map_pages(1);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(tid_update(f->drv, a, pg, &tid_a, 1, &cnt, NULL), 0);
	assert_int_equal(tid_update(f->drv, b, pg, &tid_b, 1, &cnt, NULL), 0);
	assert_int_equal(tid_free(f->drv, &tid_a, 1, &cnt), 0);
	assert_int_equal(cnt, 1);

	assert_int_equal(munmap(a, pg), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.invalidations, 0);
	assert_int_equal(st.inval_queued, 0);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 0);

	/* Events are applied in order: b's comes after a's. */
	assert_int_equal(munmap(b, pg), 0);
	assert_true(wait_mmu_event(f->drv));
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid_b);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.invalidations, 1);
	assert_int_equal(tid_free(f->drv, &tid_b, 1, &cnt), 0);
	close_and_check_pins(f);
}

/*
 * What TID_UPDATE says of memory it cannot watch, and of none: a private
 * mapping of a file on a disk file system (this program's own file) is
 * EOPNOTSUPP, however often it is asked; a range with nothing mapped is
 * EFAULT. (tmpfs and hugetlbfs files can be watched: then skipped.)
 */
static void test_update_unwatchable(void **state)
{
	struct fixture *f = *state;
	uint32_t tids[2], cnt;
	struct statfs sfs;
	unsigned int i;
	char *file, *hole;
	int fd;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	hole = map_pages(2);
	assert_non_null(hole);
	assert_int_equal(munmap(hole, 2 * pg), 0);
	assert_int_equal(tid_update(f->drv, hole, 2 * pg, tids,
				    ARRAY_SIZE(tids), &cnt, NULL),
			 EFAULT);

	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstatfs(fd, &sfs), 0);
	if (sfs.f_type == TMPFS_MAGIC || sfs.f_type == HUGETLBFS_MAGIC) {
		close(fd);
		close_and_check_pins(f);
		skip();
	}
	file = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(file != MAP_FAILED);
	close(fd);
	for (i = 0; i < 3; i++)
		assert_int_equal(tid_update(f->drv, file, 2 * pg, tids,
					    ARRAY_SIZE(tids), &cnt, NULL),
				 EOPNOTSUPP);
	munmap(file, 2 * pg);
	close_and_check_pins(f);
}

/*
 * A TID_UPDATE that races another thread unmapping its buffer and mapping
 * it again. userfaultfd refuses to watch a range with nothing mapped in it
 * as it refuses memory it can never watch (both EINVAL), and a look at the
 * range after the refusal may find it mapped again: that must not be
 * taken for memory that can never be registered. Every call programs the
 * buffer, or fails with EFAULT (not mapped) or EBUSY (changed while set
 * up), never EOPNOTSUPP.
 *
 * The race is not forced: RACE_CALLS calls against a thread that remaps
 * without pause. When one look after the refusal decided, from a few to
 * a few thousand of them came back EOPNOTSUPP on the development machine
 * (2 CPUs), in every run.
 */
#define RACE_CALLS 40000
#define RACE_PAGES 4

struct remapper {
	char *buf;
	atomic_bool stop;
	atomic_bool lost; /* the address was taken by another mapping */
	atomic_ulong remaps;
};

static void *remap_thread(void *arg)
{
	struct remapper *r = arg;
	size_t len = RACE_PAGES * pg;
	void *p;

	while (!atomic_load(&r->stop)) {
		if (munmap(r->buf, len))
			break;
		p = mmap(r->buf, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
			 0);
		if (p != r->buf) {
			if (p != MAP_FAILED)
				munmap(p, len);
			atomic_store(&r->lost, true);
			break;
		}
		atomic_fetch_add(&r->remaps, 1);
	}
	return NULL;
}

static void test_update_races_remap(void **state)
{
	struct fixture *f = *state;
	struct remapper r = { 0 };
	uint32_t tids[RACE_PAGES], cnt;
	unsigned int i, ok = 0, gone = 0, busy = 0, refused = 0, other = 0;
	struct softhfi_stats st;
	pthread_t th;
	int err;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	r.buf = map_pages(RACE_PAGES);
	assert_non_null(r.buf);
	assert_int_equal(pthread_create(&th, NULL, remap_thread, &r), 0);
	for (i = 0; i < RACE_CALLS && !atomic_load(&r.lost); i++) {
		err = tid_update(f->drv, r.buf, RACE_PAGES * pg, tids,
				 ARRAY_SIZE(tids), &cnt, NULL);
		if (!err && tid_free(f->drv, tids, cnt, NULL))
			other++;
		if (!err)
			ok++;
		else if (err == EFAULT)
			gone++;
		else if (err == EBUSY)
			busy++;
		else if (err == EOPNOTSUPP)
			refused++;
		else
			other++;
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	print_message("%u calls, %lu remaps: %u programmed, %u EFAULT, "
		      "%u EBUSY, %u EOPNOTSUPP, %u other\n",
		      i, atomic_load(&r.remaps), ok, gone, busy, refused,
		      other);
	assert_false(atomic_load(&r.lost));
	assert_int_equal(refused, 0);
	assert_int_equal(other, 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	munmap(r.buf, RACE_PAGES * pg);
	close_and_check_pins(f);
}

/*
 * A context closed while the notifier's worker applies invalidations to
 * the contexts: the worker is kept busy on an earlier context (512
 * entries to unpin) when a later one closes, and must not touch the
 * closed one afterwards.
 */
static void test_close_while_invalidating(void **state)
{
	struct fixture *f = *state;
	uint32_t tids[SOFTHFI_MAX_EXPECTED], inval[SOFTHFI_MAX_EXPECTED], cnt;
	const unsigned int npages = 512;
	struct softhfi_stats st;
	struct hfi1_drv *later;
	unsigned int round;
	char *buf;

	for (round = 0; round < 5; round++) {
		f->drv = open_ctx(0, 1, 0);
		assert_non_null(f->drv);
		later = open_ctx(0, 0, 0);
		assert_non_null(later);
		buf = map_pages(npages);
		assert_non_null(buf);
		assert_int_equal(tid_update(f->drv, buf, npages * pg, tids,
					    ARRAY_SIZE(tids), &cnt, NULL),
				 0);
		assert_int_equal(cnt, npages);

		assert_int_equal(munmap(buf, npages * pg), 0);
		hfi1_drv_close(later);

		assert_true(wait_mmu_event(f->drv));
		softhfi_get_stats(f->drv, &st);
		assert_int_equal(st.tids_invalid, npages);
		assert_int_equal(st.pinned_pages, 0);
		assert_int_equal(
			tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			0);
		assert_int_equal(cnt, npages);
		assert_true(same_tids(inval, tids, npages));
		assert_int_equal(tid_free(f->drv, tids, npages, &cnt), 0);
		assert_int_equal(cnt, npages);
		close_and_check_pins(f);
	}
}

/* 3. ACK_EVENT, the queue, and when the slot returns */

static void test_ack_event_keeps_queue(void **state)
{
	struct fixture *f = *state;
	uint32_t x[8], w[8], y[16], z, inval[16], cnt, len;
	struct softhfi_stats st;
	char *xbuf, *wbuf, *ybuf, *zbuf;

	/* 16 entries, one per page. */
	f->drv = open_ctx(16, 1, 0);
	assert_non_null(f->drv);
	xbuf = map_pages(8);
	wbuf = map_pages(8);
	ybuf = map_pages(8);
	zbuf = map_pages(1);
	assert_true(xbuf && wbuf && ybuf && zbuf);
	assert_int_equal(
		tid_update(f->drv, xbuf, 8 * pg, x, ARRAY_SIZE(x), &cnt, NULL),
		0);
	assert_int_equal(cnt, 8);
	assert_int_equal(
		tid_update(f->drv, wbuf, 8 * pg, w, ARRAY_SIZE(w), &cnt, NULL),
		0);
	assert_int_equal(cnt, 8);

	assert_int_equal(munmap(xbuf, pg), 0);
	assert_true(wait_mmu_event(f->drv));

	/* Acknowledging does not clear the bit or drop the entry. */
	assert_int_equal(ack_event(f->drv, HFI1_EVENT_TID_MMU_NOTIFY), 0);
	assert_true(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(
		ack_event(f->drv, (1UL << (_HFI1_MAX_EVENT_BIT + 1)) - 1), 0);
	assert_true(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.inval_queued, 1);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.tids_used, 16);

	/* 7 entries of x go back; the invalidated one does not. */
	assert_int_equal(tid_free(f->drv, x + 1, 7, &cnt), 0);
	assert_int_equal(cnt, 7);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 9);
	assert_int_equal(st.pinned_pages, 8);

	/* 8 pages wanted, 7 entries free: partial. */
	assert_int_equal(
		tid_update(f->drv, ybuf, 8 * pg, y, ARRAY_SIZE(y), &cnt, &len),
		0);
	assert_int_equal(cnt, 7);
	assert_int_equal(len, 7 * pg);
	assert_int_equal(tid_update(f->drv, zbuf, pg, &z, 1, &cnt, NULL),
			 ENOSPC);
	assert_int_equal(tid_free(f->drv, y, 7, &cnt), 0);
	assert_int_equal(cnt, 7);

	/* Reading the queue clears the bit but does not free the slot. */
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], x[0]);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(ack_event(f->drv, HFI1_EVENT_TID_MMU_NOTIFY), 0);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.inval_queued, 0);
	assert_int_equal(st.tids_invalid, 1);
	assert_int_equal(st.tids_used, 9);
	assert_int_equal(
		tid_update(f->drv, ybuf, 8 * pg, y, ARRAY_SIZE(y), &cnt, &len),
		0);
	assert_int_equal(cnt, 7);
	assert_int_equal(tid_free(f->drv, y, 7, &cnt), 0);

	/* TID_FREE of the invalidated entry returns the slot. */
	assert_int_equal(tid_free(f->drv, x, 1, &cnt), 0);
	assert_int_equal(cnt, 1);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_invalid, 0);
	assert_int_equal(st.tids_used, 8);
	assert_int_equal(
		tid_update(f->drv, ybuf, 8 * pg, y, ARRAY_SIZE(y), &cnt, &len),
		0);
	assert_int_equal(cnt, 8);
	assert_int_equal(len, 8 * pg);
	assert_int_equal(place(f->sv, f->drv, y[7], 0, 0x7e, 32), 32);
	assert_true(all_bytes(ybuf + 7 * pg, 0x7e, 32));

	assert_int_equal(tid_free(f->drv, y, 8, &cnt), 0);
	assert_int_equal(tid_free(f->drv, w, 8, &cnt), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.pinned_pages, 0);
	munmap(xbuf + pg, 7 * pg);
	munmap(wbuf, 8 * pg);
	munmap(ybuf, 8 * pg);
	munmap(zbuf, pg);
	close_and_check_pins(f);
}

/* 4. The pin limit as an unprivileged user */

/* Pages a context may pin under MEMLOCK_LIMIT with user_contexts 1. */
static size_t memlock_share(void)
{
	return MEMLOCK_LIMIT / pg / 1 / 4;
}

/*
 * Another process of the same user pins all it can, so that the user's
 * RLIMIT_MEMLOCK charge (io_uring's, per user) is full while this process
 * pins nothing. Sends 'F' when full; on 'T' pins what has come free since
 * (io_uring's deferred teardown of earlier rings gives their pages back
 * to the user some milliseconds after they were closed) and sends 'F'
 * again; exits on 'X', or when its parent has gone.
 */
static void filler_main(int up, int down)
{
	size_t share = memlock_share(), npages = 4 * share, next = 0;
	struct hfi1_drv *drv[4];
	unsigned int n[4] = { 0 }, ctxs = 0, i = 0;
	uint32_t tid;
	char token;
	char *buf;

	buf = map_pages(npages);
	CHILD_CHECK(buf);
	for (;;) {
		/*
		 * The contexts first, as io_uring charges their rings too:
		 * then what is left is pinned page by page, to the last page.
		 */
		while (ctxs < ARRAY_SIZE(drv) &&
		       (drv[ctxs] = open_ctx(0, 0, 1)))
			ctxs++;
		CHILD_CHECK(ctxs > 0);
		for (; i < ctxs; i++) {
			int err = 0;

			while (n[i] < share &&
			       !(err = tid_update(drv[i], buf + next * pg, pg,
						  &tid, 1, NULL, NULL))) {
				n[i]++;
				next++;
			}
			if (err) {
				CHILD_CHECK(err == ENOMEM);
				break;
			}
		}
		CHILD_CHECK(next > 0);
		token_send(up, 'F');
		if (read(down, &token, 1) != 1)
			_exit(4);
		if (token == 'X')
			_exit(0);
		CHILD_CHECK(token == 'T');
	}
}

/*
 * TID_UPDATE of all of @len, retried while io_uring's deferred teardown of
 * another process's rings gives pages back to the user. Meanwhile the
 * update may also succeed in part (as in hfi1, what could be pinned is
 * programmed): that is given back and retried too.
 */
static int tid_update_until(struct hfi1_drv *drv, void *buf, size_t len,
			    uint32_t *tids, uint32_t room, uint32_t *cnt)
{
	uint64_t end = now_ms() + DEADLINE_MS;
	uint32_t mapped = 0;
	int err;

	for (;;) {
		err = tid_update(drv, buf, len, tids, room, cnt, &mapped);
		if (!err && mapped < len) {
			err = tid_free(drv, tids, *cnt, NULL);
			if (err)
				return err;
			err = ENOMEM;
		}
		if (err != ENOMEM || now_ms() > end)
			return err;
		poll_pause();
	}
}

static void memlock_child(const struct passwd *nobody)
{
	size_t share = memlock_share();
	uint32_t tids[SOFTHFI_MAX_EXPECTED], one, cnt, len, freed;
	struct hfi1_drv_pin_refusal refusal;
	int up[2], down[2];
	struct softhfi_stats st;
	struct hfi1_drv *drv;
	pid_t filler;
	uint64_t end;
	char *buf;
	int status, err;

	child_become_nobody(nobody, MEMLOCK_LIMIT);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);
	buf = map_pages(share + 1);
	CHILD_CHECK(buf);

	/* The context's share of the limit: a quarter, one user context. */
	drv = open_ctx(0, 0, 1);
	CHILD_CHECK(drv);
	CHILD_CHECK(tid_update(drv, buf, (share + 1) * pg, tids,
			       ARRAY_SIZE(tids), &cnt, &len) == ENOMEM);
	/* The driver says so, with the figures it weighed. */
	hfi1_drv_pin_refusal(drv, &refusal);
	CHILD_CHECK(refusal.limit == HFI1_DRV_PIN_SHARE);
	CHILD_CHECK(!refusal.cap_ipc_lock);
	CHILD_CHECK(refusal.asked == (share + 1) * pg);
	CHILD_CHECK(refusal.rlimit_memlock == MEMLOCK_LIMIT);
	CHILD_CHECK(refusal.user_contexts == 1);
	CHILD_CHECK(refusal.share == share * pg);
	CHILD_CHECK(refusal.context_pinned == 0);
	CHILD_CHECK(refusal.process_pinned == 0);
	softhfi_get_stats(drv, &st);
	CHILD_CHECK(st.tids_used == 0 && st.pinned_pages == 0);
	CHILD_CHECK(!tid_update(drv, buf, share * pg, tids, ARRAY_SIZE(tids),
				&cnt, &len));
	CHILD_CHECK(len == share * pg);
	CHILD_CHECK(softhfi_process_pinned_pages() == share);
	CHILD_CHECK(tid_update(drv, buf + share * pg, pg, &one, 1, NULL,
			       NULL) == ENOMEM);
	softhfi_get_stats(drv, &st);
	CHILD_CHECK(st.tids_used == cnt && st.pinned_pages == share);

	/* TID_FREE gives the pages back to the account. */
	CHILD_CHECK(!tid_free(drv, tids, cnt, &freed) && freed == cnt);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);
	CHILD_CHECK(
		!tid_update(drv, buf + share * pg, pg, &one, 1, NULL, NULL));
	CHILD_CHECK(!tid_update(drv, buf, (share - 1) * pg, tids,
				ARRAY_SIZE(tids), &cnt, NULL));
	CHILD_CHECK(tid_update(drv, buf + (share - 1) * pg, pg, tids + cnt, 1,
			       NULL, NULL) == ENOMEM);
	CHILD_CHECK(!tid_free(drv, tids, cnt, &freed) && freed == cnt);
	CHILD_CHECK(!tid_free(drv, &one, 1, &freed) && freed == 1);
	softhfi_get_stats(drv, &st);
	CHILD_CHECK(st.tids_used == 0 && st.pinned_pages == 0);
	hfi1_drv_close(drv);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);

	/*
	 * io_uring's own charge is per user: with another process of the
	 * user holding the rest of the limit, a TID_UPDATE well within this
	 * context's share fails in io_uring, with ENOMEM, and leaves nothing
	 * behind.
	 */
	drv = open_ctx(0, 0, 1);
	CHILD_CHECK(drv);
	CHILD_CHECK(!pipe2(up, O_CLOEXEC) && !pipe2(down, O_CLOEXEC));
	filler = fork();
	CHILD_CHECK(filler >= 0);
	if (!filler) {
		/* To see EOF on @down if this child fails. */
		close(up[0]);
		close(down[1]);
		filler_main(up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	CHILD_CHECK(token_wait(up[0], 'F', CHILD_DEADLINE_MS));
	/*
	 * Rings closed shortly before (this child's earlier ones, the probe's
	 * in child_wait_memlock_drained()) may give their pages back to the
	 * user after the filler was full: a page that fits then is given
	 * back, and the filler tops up, until none fits. The deadline only
	 * bounds the deferred teardowns; ENOMEM must come.
	 */
	end = now_ms() + DEADLINE_MS;
	while (!(err = tid_update(drv, buf, pg, &one, 1, NULL, &len))) {
		CHILD_CHECK(len == pg);
		CHILD_CHECK(!tid_free(drv, &one, 1, &freed) && freed == 1);
		CHILD_CHECK(now_ms() < end);
		token_send(down[1], 'T');
		CHILD_CHECK(token_wait(up[0], 'F', CHILD_DEADLINE_MS));
	}
	CHILD_CHECK(err == ENOMEM);
	/* Refused by the kernel's own count, not by the driver's limit. */
	hfi1_drv_pin_refusal(drv, &refusal);
	CHILD_CHECK(refusal.limit == HFI1_DRV_PIN_KERNEL);
	CHILD_CHECK(!refusal.cap_ipc_lock && refusal.asked == pg);
	CHILD_CHECK(refusal.rlimit_memlock == MEMLOCK_LIMIT);
	softhfi_get_stats(drv, &st);
	CHILD_CHECK(st.tids_used == 0 && st.pinned_pages == 0);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);
	token_send(down[1], 'X');
	CHILD_CHECK(waitpid(filler, &status, 0) == filler);
	CHILD_CHECK(WIFEXITED(status) && !WEXITSTATUS(status));
	CHILD_CHECK(!tid_update_until(drv, buf, pg, &one, 1, &cnt));
	CHILD_CHECK(!tid_free(drv, &one, 1, &freed) && freed == 1);
	hfi1_drv_close(drv);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);
	_exit(0);
}

static void test_memlock_unprivileged(void **state)
{
	const struct passwd *nobody = lookup_nobody();
	struct fixture *f = *state;
	struct child c;

	if (!nobody)
		skip();
	if (child_start(&c))
		memlock_child(nobody);
	child_reap(&c);
	assert_int_equal(softhfi_process_pinned_pages(), f->pinned_at_start);
}

/* 5. fork() */

/* Every command on a context inherited through fork() is EIO. */
static void child_check_inherited_eio(struct hfi1_drv *drv, uint32_t tid,
				      int wire)
{
	struct hfi1_ctxt_info cinfo;
	struct hfi1_base_info binfo;
	struct hfi1_user_info uinfo = { 0 };
	uint32_t tids[4], cnt;
	unsigned long ev = HFI1_EVENT_TID_MMU_NOTIFY;
	char *mine = map_pages(1);
	int vers;

	CHILD_CHECK(mine);
	errno = 0;
	CHILD_CHECK(hfi1_drv_ioctl(drv, HFI1_IOCTL_GET_VERS, &vers) == -1 &&
		    errno == EIO);
	errno = 0;
	CHILD_CHECK(hfi1_drv_ioctl(drv, HFI1_IOCTL_ASSIGN_CTXT, &uinfo) == -1 &&
		    errno == EIO);
	errno = 0;
	CHILD_CHECK(hfi1_drv_ioctl(drv, HFI1_IOCTL_CTXT_INFO, &cinfo) == -1 &&
		    errno == EIO);
	errno = 0;
	CHILD_CHECK(hfi1_drv_ioctl(drv, HFI1_IOCTL_USER_INFO, &binfo) == -1 &&
		    errno == EIO);
	CHILD_CHECK(tid_update(drv, mine, pg, tids, ARRAY_SIZE(tids), &cnt,
			       NULL) == EIO);
	CHILD_CHECK(tid_free(drv, &tid, 1, &cnt) == EIO);
	CHILD_CHECK(tid_inval_read(drv, tids, ARRAY_SIZE(tids), &cnt) == EIO);
	errno = 0;
	CHILD_CHECK(hfi1_drv_ioctl(drv, HFI1_IOCTL_ACK_EVENT, &ev) == -1 &&
		    errno == EIO);
	errno = 0;
	CHILD_CHECK(hfi1_drv_ioctl(drv, HFI1_IOCTL_CREDIT_UPD, NULL) == -1 &&
		    errno == EIO);
	errno = 0;
	CHILD_CHECK(hfi1_drv_place(drv, tid, 0, wire, 16) == -1 &&
		    errno == EIO);
	munmap(mine, pg);
}

/* The child's own context: the notifier starts again in the child. */
static void child_use_fresh_context(void)
{
	uint32_t tid, inval[4], cnt = 0;
	struct softhfi_stats st;
	struct hfi1_drv *drv;
	char data[64];
	char *buf;
	int sv[2];

	CHILD_CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	drv = open_ctx(0, 0, 0);
	CHILD_CHECK(drv);
	buf = map_pages(2);
	CHILD_CHECK(buf);
	CHILD_CHECK(!tid_update(drv, buf, 2 * pg, &tid, 1, &cnt, NULL));
	CHILD_CHECK(cnt == 1);
	CHILD_CHECK(softhfi_process_pinned_pages() == 2);
	memset(data, 0x3c, sizeof(data));
	CHILD_CHECK(write(sv[0], data, sizeof(data)) == sizeof(data));
	CHILD_CHECK(hfi1_drv_place(drv, tid, pg, sv[1], sizeof(data)) ==
		    sizeof(data));
	CHILD_CHECK(all_bytes(buf + pg, 0x3c, sizeof(data)));

	CHILD_CHECK(!munmap(buf, 2 * pg));
	CHILD_CHECK(wait_mmu_event(drv));
	CHILD_CHECK(!tid_inval_read(drv, inval, ARRAY_SIZE(inval), &cnt));
	CHILD_CHECK(cnt == 1 && inval[0] == tid);
	CHILD_CHECK(!tid_free(drv, &tid, 1, &cnt) && cnt == 1);
	softhfi_get_stats(drv, &st);
	CHILD_CHECK(st.tids_used == 0 && st.pinned_pages == 0);
	hfi1_drv_close(drv);
	close(sv[0]);
	close(sv[1]);
}

static void test_fork(void **state)
{
	struct fixture *f = *state;
	struct softhfi_stats st;
	uint32_t tid, cnt;
	struct child c;
	char *buf;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	assert_non_null(buf);
	memset(buf, 0xaa, 2 * pg);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(softhfi_process_pinned_pages(),
			 f->pinned_at_start + 2);

	if (child_start(&c)) {
		/* A new process has pinned nothing (hfi1: a new mm). */
		CHILD_CHECK(softhfi_process_pinned_pages() == 0);
		child_check_inherited_eio(f->drv, tid, f->sv[1]);
		token_send(c.up[1], 'R');
		CHILD_CHECK(token_wait(c.down[0], 'P', CHILD_DEADLINE_MS));
		/* The parent's DMA went to the parent's pages, not ours. */
		CHILD_CHECK(all_bytes(buf, 0xaa, 2 * pg));
		CHILD_CHECK(!munmap(buf, 2 * pg));
		token_send(c.up[1], 'U');
		child_use_fresh_context();
		hfi1_drv_close(f->drv);
		CHILD_CHECK(softhfi_process_pinned_pages() == 0);
		_exit(0);
	}

	parent_expect(&c, 'R');
	assert_int_equal(place(f->sv, f->drv, tid, 100, 0x5c, 256), 256);
	assert_true(all_bytes(buf, 0xaa, 100));
	assert_true(all_bytes(buf + 100, 0x5c, 256));
	assert_true(all_bytes(buf + 356, 0xaa, 2 * pg - 356));
	token_send(c.down[1], 'P');

	/* The child's munmap of its copy leaves the parent's entry be. */
	parent_expect(&c, 'U');
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.invalidations, 0);
	assert_int_equal(st.tids_invalid, 0);
	assert_int_equal(st.pinned_pages, 2);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(place(f->sv, f->drv, tid, pg, 0x5d, 64), 64);
	assert_true(all_bytes(buf + pg, 0x5d, 64));
	child_reap(&c);

	/* Still the parent's, after the child is gone. */
	assert_int_equal(place(f->sv, f->drv, tid, pg + 64, 0x5e, 64), 64);
	assert_true(all_bytes(buf + pg + 64, 0x5e, 64));
	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	assert_int_equal(cnt, 1);
	munmap(buf, 2 * pg);
	close_and_check_pins(f);
}

static void *unmapper_thread(void *arg)
{
	void **range = arg;

	munmap(range[0], (size_t)(uintptr_t)range[1]);
	return NULL;
}

/*
 * A forked child lives on (no exec) while the parent closes its context
 * and unmaps a buffer it had registered: the parent's munmap must not
 * wait for the child.
 */
static void test_fork_parent_unmaps_after_close(void **state)
{
	struct fixture *f = *state;
	struct timespec deadline;
	uint32_t tid, cnt;
	void *range[2];
	struct child c;
	pthread_t th;
	char *buf;
	int err;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	assert_non_null(buf);
	assert_int_equal(tid_update(f->drv, buf, 2 * pg, &tid, 1, &cnt, NULL),
			 0);

	if (child_start(&c)) {
		token_send(c.up[1], 'R');
		CHILD_CHECK(token_wait(c.down[0], 'X', CHILD_DEADLINE_MS));
		_exit(0);
	}
	parent_expect(&c, 'R');
	assert_int_equal(tid_free(f->drv, &tid, 1, &cnt), 0);
	close_and_check_pins(f);

	range[0] = buf;
	range[1] = (void *)(uintptr_t)(2 * pg);
	assert_int_equal(pthread_create(&th, NULL, unmapper_thread, range), 0);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DEADLINE_MS / 1000;
	err = pthread_timedjoin_np(th, NULL, &deadline);
	/* Let the child go; a blocked munmap then completes. */
	token_send(c.down[1], 'X');
	if (err)
		pthread_join(th, NULL);
	child_reap(&c);
	if (err)
		fail_msg("munmap blocked until the forked child exited");
}

/*
 * A forked child starts with nothing pinned, as a new mm does in hfi1:
 * what its parent had pinned does not count against the child's limit.
 */
static void fork_budget_child(const struct passwd *nobody)
{
	size_t share = memlock_share();
	/*
	 * 200 pages: a further share would pass the process's limit (256),
	 * while the user's io_uring charge (with the rings' pages) is below.
	 */
	const size_t counts[4] = { share, share, share, 8 };
	struct hfi1_drv *drv[4], *fresh;
	uint32_t tids[SOFTHFI_MAX_EXPECTED], cnt;
	size_t total = 0, i;
	int up[2], down[2], status;
	pid_t pid;
	char *buf;

	child_become_nobody(nobody, MEMLOCK_LIMIT);
	buf = map_pages(4 * share);
	CHILD_CHECK(buf);
	for (i = 0; i < 4; i++) {
		drv[i] = open_ctx(0, 0, 1);
		CHILD_CHECK(drv[i]);
		CHILD_CHECK(!tid_update(drv[i], buf + i * share * pg,
					counts[i] * pg, tids, ARRAY_SIZE(tids),
					&cnt, NULL));
		total += counts[i];
	}
	CHILD_CHECK(softhfi_process_pinned_pages() == total);
	CHILD_CHECK(total + share > MEMLOCK_LIMIT / pg);

	CHILD_CHECK(!pipe2(up, O_CLOEXEC) && !pipe2(down, O_CLOEXEC));
	pid = fork();
	CHILD_CHECK(pid >= 0);
	if (!pid) {
		CHILD_CHECK(softhfi_process_pinned_pages() == 0);
		for (i = 0; i < 4; i++)
			hfi1_drv_close(drv[i]);
		CHILD_CHECK(softhfi_process_pinned_pages() == 0);
		token_send(up[1], 'C');
		/* Once the parent has closed its contexts too. */
		CHILD_CHECK(token_wait(down[0], 'C', CHILD_DEADLINE_MS));
		fresh = open_ctx(0, 0, 1);
		CHILD_CHECK(fresh);
		CHILD_CHECK(!tid_update_until(fresh, buf, share * pg, tids,
					      ARRAY_SIZE(tids), &cnt));
		CHILD_CHECK(softhfi_process_pinned_pages() == share);
		CHILD_CHECK(!tid_free(fresh, tids, cnt, &cnt));
		hfi1_drv_close(fresh);
		CHILD_CHECK(softhfi_process_pinned_pages() == 0);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	CHILD_CHECK(token_wait(up[0], 'C', CHILD_DEADLINE_MS));
	for (i = 0; i < 4; i++)
		hfi1_drv_close(drv[i]);
	CHILD_CHECK(softhfi_process_pinned_pages() == 0);
	token_send(down[1], 'C');
	CHILD_CHECK(waitpid(pid, &status, 0) == pid);
	CHILD_CHECK(WIFEXITED(status) && !WEXITSTATUS(status));
	_exit(0);
}

static void test_fork_child_pin_budget(void **state)
{
	const struct passwd *nobody = lookup_nobody();
	struct fixture *f = *state;
	struct child c;

	if (!nobody)
		skip();
#ifdef __SANITIZE_ADDRESS__
	/*
	 * This AddressSanitizer (GCC 12's) takes no lock on its allocator
	 * around fork(). The grandchild below, forked while its parent's
	 * notifier threads run, can inherit an allocator lock held and wait
	 * for ever in its first allocation of that size class (seen in 2 of
	 * 7 runs: its notifier threads stuck in the allocator as they exit,
	 * its main thread joining them). The plain build runs the test.
	 */
	skip();
#endif
	if (child_start(&c))
		fork_budget_child(nobody);
	child_reap(&c);
	assert_int_equal(softhfi_process_pinned_pages(), f->pinned_at_start);
}

/* 6. The monitor thread against the allocator */

#define ALLOC_THREADS 3
#define TID_ITERATIONS 1000
#define TID_IN_FLIGHT 4
#define WATCHDOG_SECONDS 60

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	_Atomic unsigned long tid_rounds, alloc_rounds, trims;
} mm_race = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};
static atomic_bool alloc_stop;

static void *watchdog_thread(void *arg)
{
	struct timespec deadline;
	int err = 0;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WATCHDOG_SECONDS;
	pthread_mutex_lock(&mm_race.lock);
	while (!mm_race.done && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&mm_race.cond, &mm_race.lock,
					     &deadline);
	if (!mm_race.done) {
		fprintf(stderr,
			"test_allocator_no_deadlock: no end after %d s "
			"(%lu TID rounds, %lu allocator rounds, %lu trims): "
			"the notifier and the allocator deadlocked\n",
			WATCHDOG_SECONDS, atomic_load(&mm_race.tid_rounds),
			atomic_load(&mm_race.alloc_rounds),
			atomic_load(&mm_race.trims));
		abort();
	}
	pthread_mutex_unlock(&mm_race.lock);
	return NULL;
}

/*
 * Under a sanitizer, its allocator serves malloc() and glibc's arenas are
 * never set up for these threads: malloc_trim() would still run glibc's
 * arena code, and glibc then aborts at thread exit ("malloc assertion
 * failure in __malloc_arena_thread_freeres"). There is no glibc heap to
 * trim then anyway.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GLIBC_MALLOC 0
#else
#define GLIBC_MALLOC 1
#endif

static void *alloc_thread(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	void *small[16];
	unsigned long n = 0;
	size_t i;

	while (!atomic_load(&alloc_stop)) {
		/* Above the mmap threshold: free() munmaps it. */
		size_t big = 160 * 1024 + (rand_r(&seed) % 64) * 4096;
		char *p = malloc(big);

		if (p) {
			memset(p, 1, 4096);
			p[big - 1] = 1;
			free(p);
		}
		for (i = 0; i < 16; i++) {
			small[i] = malloc(16 + rand_r(&seed) % 8192);
			if (small[i])
				*(char *)small[i] = 1;
		}
		for (i = 0; i < 16; i++)
			free(small[i]);
		if (++n % 8 == 0 && GLIBC_MALLOC) {
			malloc_trim(0);
			atomic_fetch_add(&mm_race.trims, 1);
		}
		atomic_fetch_add(&mm_race.alloc_rounds, 1);
	}
	return NULL;
}

struct heap_reg {
	void *buf;
	uint32_t tids[64];
	uint32_t cnt;
	bool freed_early;
};

/* Which of the @n registrations entry @tid belongs to, if any. */
static const struct heap_reg *find_reg(const struct heap_reg *regs,
				       unsigned int n, uint32_t tid)
{
	unsigned int k, i;

	for (k = 0; k < n; k++)
		for (i = 0; i < regs[k].cnt; i++)
			if (regs[k].tids[i] == tid)
				return &regs[k];
	return NULL;
}

/*
 * The TID side of the race; returns NULL or what went wrong. @invals
 * counts the entries TID_INVAL_READ reported, @unmapped the buffers that
 * free() unmapped while they were registered, @lossy the rounds in which
 * the notifier's log had wrapped.
 */
static const char *tid_rounds(struct hfi1_drv *drv, unsigned long *invals,
			      unsigned long *unmapped, unsigned long *lossy)
{
	static char why[128];
	struct heap_reg regs[TID_IN_FLIGHT] = { 0 }, retired = { 0 };
	uint32_t inval[SOFTHFI_MAX_EXPECTED], cnt = 0, freed = 0;
	unsigned int seed = 12345, round, tries, i;
	uint64_t overflows_before[2] = { 0, 0 };
	struct softhfi_stats st;
	bool lost;
	int err;

	for (round = 0; round < TID_ITERATIONS + TID_IN_FLIGHT; round++) {
		struct heap_reg *r = &regs[round % TID_IN_FLIGHT];
		size_t npages;

		/*
		 * TID_INVAL_READ applies all that was unmapped so far: each
		 * entry it names is one still registered whose memory free()
		 * gave back, or the one retired last round if its memory went
		 * just before its TID_FREE. Never an allocated buffer's: the
		 * allocator unmaps or trims only memory that is free.
		 */
		err = tid_inval_read(drv, inval, ARRAY_SIZE(inval), &cnt);
		if (err)
			return "TID_INVAL_READ failed";
		*invals += cnt;

		/*
		 * Unless the allocator threads outran the notifier's log:
		 * then the context assumed all its memory gone and the queue
		 * may hold any entry that was programmed. The stats' drain
		 * may wrap too, and its entries come next round: so this
		 * round's may come from a wrap seen in this or last round.
		 */
		softhfi_get_stats(drv, &st);
		lost = st.overflows != overflows_before[1];
		overflows_before[1] = overflows_before[0];
		overflows_before[0] = st.overflows;
		if (lost)
			(*lossy)++;

		for (i = 0; i < cnt; i++) {
			const struct heap_reg *owner;

			/* Its TID_FREE may have queued it (as hfi1's may). */
			if (find_reg(&retired, 1, inval[i]) &&
			    (retired.freed_early || lost))
				continue;
			owner = find_reg(regs, TID_IN_FLIGHT, inval[i]);
			if (!owner || (!owner->freed_early && !lost)) {
				snprintf(why, sizeof(why),
					 "entry %#x invalidated, but %s",
					 inval[i],
					 owner ? "its buffer is allocated" :
						 "it is not registered");
				return why;
			}
		}

		retired.cnt = 0;

		/* Retire the oldest: sometimes its memory went first. */
		if (r->buf || r->cnt) {
			err = tid_free(drv, r->tids, r->cnt, &freed);
			if (err || freed != r->cnt) {
				snprintf(why, sizeof(why),
					 "TID_FREE: %d, %u of %u", err, freed,
					 r->cnt);
				return why;
			}
			if (!r->freed_early)
				free(r->buf);
			retired = *r;
			r->buf = NULL;
			r->cnt = 0;
		}
		if (round >= TID_ITERATIONS)
			continue;

		/*
		 * Every 4th: above the mmap threshold, freed while registered
		 * (glibc unmaps it, or trims it later if it came from the
		 * top of the heap).
		 */
		npages = round % 4 == 0 ? 64 : 1 + rand_r(&seed) % 16;
		if (posix_memalign(&r->buf, pg, npages * pg))
			return "posix_memalign failed";
		for (tries = 0;; tries++) {
			err = tid_update(drv, r->buf, npages * pg, r->tids,
					 ARRAY_SIZE(r->tids), &r->cnt, NULL);
			/* An allocator's trim raced with the setup. */
			if (err != EBUSY || tries > 100)
				break;
		}
		if (err) {
			snprintf(why, sizeof(why), "TID_UPDATE: %s",
				 strerror(err));
			return why;
		}
		r->freed_early = round % 4 == 0;
		if (r->freed_early) {
			free(r->buf);
			/* A sanitizer's allocator keeps it mapped. */
			if (msync(r->buf, npages * pg, MS_ASYNC) &&
			    errno == ENOMEM)
				(*unmapped)++;
		}
		atomic_store(&mm_race.tid_rounds, round + 1);
	}
	return NULL;
}

static void test_allocator_no_deadlock(void **state)
{
	struct fixture *f = *state;
	pthread_t watchdog, alloc[ALLOC_THREADS];
	unsigned long invals = 0, unmapped = 0, lossy = 0;
	uint32_t inval[SOFTHFI_MAX_EXPECTED], cnt = 0;
	struct softhfi_stats st;
	const char *why;
	uint64_t start = now_ms();
	int i;

	/*
	 * A fixed threshold, so that large frees keep unmapping (glibc's
	 * malloc; a sanitizer's allocator ignores it and unmaps on its own).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	mm_race.done = false;
	atomic_store(&alloc_stop, false);
	assert_int_equal(pthread_create(&watchdog, NULL, watchdog_thread, NULL),
			 0);
	for (i = 0; i < ALLOC_THREADS; i++)
		assert_int_equal(pthread_create(&alloc[i], NULL, alloc_thread,
						(void *)(uintptr_t)(i + 1)),
				 0);

	why = tid_rounds(f->drv, &invals, &unmapped, &lossy);

	atomic_store(&alloc_stop, true);
	for (i = 0; i < ALLOC_THREADS; i++)
		pthread_join(alloc[i], NULL);
	pthread_mutex_lock(&mm_race.lock);
	mm_race.done = true;
	pthread_cond_signal(&mm_race.cond);
	pthread_mutex_unlock(&mm_race.lock);
	pthread_join(watchdog, NULL);
	if (why)
		fail_msg("%s", why);

	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	invals += cnt;
	softhfi_get_stats(f->drv, &st);
	print_message("%lu TID rounds (%lu buffers unmapped while registered, "
		      "%llu invalidations, %llu log overflows seen in %lu "
		      "rounds), %lu allocator rounds, %lu trims in %lu ms\n",
		      atomic_load(&mm_race.tid_rounds), unmapped,
		      (unsigned long long)st.invalidations,
		      (unsigned long long)st.overflows, lossy,
		      atomic_load(&mm_race.alloc_rounds),
		      atomic_load(&mm_race.trims),
		      (unsigned long)(now_ms() - start));
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.tids_invalid, 0);
	assert_int_equal(st.inval_queued, 0);
	assert_int_equal(st.pinned_pages, 0);
	/*
	 * Every buffer that free() unmapped while registered invalidated
	 * its entries (with glibc: every 4th round's).
	 */
	assert_true(st.invalidations >= unmapped);
	assert_int_equal(invals, st.invalidations);
	assert_false(event_word(f->drv) & HFI1_EVENT_TID_MMU_NOTIFY);
	close_and_check_pins(f);
}

/* 7. A context that falls too far behind the notifier's log */

/* Twice the records the notifier's log holds (16384). */
#define LOG_WRAP_EVENTS (2 * 16384)

/*
 * A userfaultfd of the test's own, in missing mode, that also holds the
 * kernel's accesses: a system call that writes to a page it covers
 * sleeps until the test fills the page. -1 if this process may not have
 * one (CAP_SYS_PTRACE or vm.unprivileged_userfaultfd).
 */
static int open_kernel_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd;

	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether a fault arrived on @uffd within the deadline. */
static bool wait_uffd_fault(int uffd)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, DEADLINE_MS) != 1)
		return false;
	return read(uffd, &msg, sizeof(msg)) == sizeof(msg) &&
	       msg.event == UFFD_EVENT_PAGEFAULT;
}

struct stalled_update {
	struct hfi1_drv *drv;
	struct hfi1_tid_info tinfo;
	int err;
};

/* Waits until the notifier has stopped watching @n ranges in all. */
static bool wait_unregistrations(struct hfi1_drv *drv, uint64_t n)
{
	uint64_t end = now_ms() + DEADLINE_MS;
	struct softhfi_stats st;

	for (;;) {
		softhfi_get_stats(drv, &st);
		if (st.uffd_unregistrations >= n)
			return true;
		if (now_ms() > end)
			return false;
		poll_pause();
	}
}

/*
 * A range that nothing is programmed over any more stops being watched at
 * its first event: memory registered once and then trimmed by the
 * allocator over and over (madvise(MADV_DONTNEED) here) costs every
 * context one event, not one per trim. What is programmed next to it
 * stays watched, and the range, programmed again, is watched again.
 */
static void test_unprogrammed_range_unwatched(void **state)
{
	struct fixture *f = *state;
	uint32_t tid0, tid1, inval[8], cnt;
	struct softhfi_stats st;
	uint64_t events, regs, unregs;
	char *buf;
	int i;

	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);
	buf = map_pages(2);
	assert_non_null(buf);
	assert_int_equal(tid_update(f->drv, buf, pg, &tid0, 1, &cnt, NULL), 0);
	assert_int_equal(tid_update(f->drv, buf + pg, pg, &tid1, 1, &cnt, NULL),
			 0);
	assert_int_equal(tid_free(f->drv, &tid1, 1, &cnt), 0);
	softhfi_get_stats(f->drv, &st);
	events = st.events;
	unregs = st.uffd_unregistrations;

	/* The first trim of the page is seen, and it is unwatched. */
	assert_int_equal(madvise(buf + pg, pg, MADV_DONTNEED), 0);
	assert_true(wait_unregistrations(f->drv, unregs + 1));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.events, events + 1);
	assert_int_equal(st.invalidations, 0);
	/* The next ones cost nothing. */
	for (i = 0; i < 100; i++) {
		buf[pg] = 1;
		assert_int_equal(madvise(buf + pg, pg, MADV_DONTNEED), 0);
	}
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.events, events + 1);

	/* The programmed page beside it is watched still. */
	assert_int_equal(madvise(buf, pg, MADV_DONTNEED), 0);
	assert_true(wait_mmu_event(f->drv));
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid0);
	assert_int_equal(tid_free(f->drv, &tid0, 1, &cnt), 0);

	/* Programmed again: registered and watched again. */
	softhfi_get_stats(f->drv, &st);
	regs = st.uffd_registrations;
	assert_int_equal(tid_update(f->drv, buf + pg, pg, &tid1, 1, &cnt, NULL),
			 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.uffd_registrations, regs + 1);
	assert_int_equal(madvise(buf + pg, pg, MADV_DONTNEED), 0);
	assert_true(wait_mmu_event(f->drv));
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(inval[0], tid1);
	assert_int_equal(tid_free(f->drv, &tid1, 1, &cnt), 0);
	munmap(buf, 2 * pg);
	close_and_check_pins(f);
}

static void *stalled_update_thread(void *arg)
{
	struct stalled_update *u = arg;

	if (hfi1_drv_ioctl(u->drv, HFI1_IOCTL_TID_UPDATE, &u->tinfo))
		u->err = errno;
	return NULL;
}

/*
 * More events than the log holds arrive while nothing can drain the
 * context: a TID_UPDATE holds the context's lock, asleep in its copy of
 * the tid list to a page that the test's userfaultfd keeps missing, so
 * the worker waits for the lock. The events are madvise(MADV_DONTNEED)
 * of a range that is watched but has no entry. Once the lock is free the
 * context cannot tell what went away: it must invalidate every entry,
 * the one just programmed included, and count one overflow.
 */
static void test_log_overflow_invalidates_all(void **state)
{
	struct fixture *f = *state;
	uint32_t live[4], inval[8], cnt, i;
	struct stalled_update u = { 0 };
	struct uffdio_register reg = { 0 };
	struct uffdio_zeropage zero = { 0 };
	const char *why = NULL;
	struct softhfi_stats st;
	char *bufs[3], *watched, *stall_buf;
	uint32_t *hole;
	pthread_t th;
	int uffd;

	uffd = open_kernel_uffd();
	if (uffd < 0) {
		print_message("no userfaultfd for kernel faults: %s\n",
			      strerror(errno));
		skip();
	}
	f->drv = open_ctx(0, 0, 0);
	assert_non_null(f->drv);

	/* Three live buffers of 1, 2 and 4 pages: one entry each. */
	for (i = 0; i < 3; i++) {
		bufs[i] = map_pages(1u << i);
		assert_non_null(bufs[i]);
		assert_int_equal(tid_update(f->drv, bufs[i], (1u << i) * pg,
					    &live[i], 1, &cnt, NULL),
				 0);
		assert_int_equal(cnt, 1);
	}
	/* Watched once, no entry now: its events invalidate nothing. */
	watched = map_pages(1);
	assert_non_null(watched);
	assert_int_equal(tid_update(f->drv, watched, pg, inval, 1, &cnt, NULL),
			 0);
	assert_int_equal(tid_free(f->drv, inval, 1, &cnt), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.overflows, 0);

	stall_buf = map_pages(1);
	assert_non_null(stall_buf);
	hole = mmap(NULL, pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(hole != MAP_FAILED);
	reg.range.start = (uintptr_t)hole;
	reg.range.len = pg;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	assert_int_equal(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);

	u.drv = f->drv;
	u.tinfo.vaddr = (uintptr_t)stall_buf;
	u.tinfo.tidlist = (uintptr_t)hole;
	u.tinfo.length = pg;
	assert_int_equal(pthread_create(&th, NULL, stalled_update_thread, &u),
			 0);
	/* No cmocka assert until the thread is released and joined. */
	if (!wait_uffd_fault(uffd))
		why = "TID_UPDATE never wrote its tid list";
	for (i = 0; !why && i < LOG_WRAP_EVENTS; i++)
		if (madvise(watched, pg, MADV_DONTNEED))
			why = "madvise(MADV_DONTNEED) failed";

	zero.range.start = (uintptr_t)hole;
	zero.range.len = pg;
	if (ioctl(uffd, UFFDIO_ZEROPAGE, &zero) && !why)
		why = "UFFDIO_ZEROPAGE failed";
	pthread_join(th, NULL);
	if (why)
		fail_msg("%s", why);
	assert_int_equal(u.err, 0);
	assert_int_equal(u.tinfo.tidcnt, 1);
	live[3] = hole[0];

	/* The worker drains once it has the lock, and raises the event. */
	assert_true(wait_mmu_event(f->drv));
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.overflows, 1);
	assert_int_equal(st.tids_used, 4);
	assert_int_equal(st.tids_invalid, 4);
	assert_int_equal(st.inval_queued, 4);
	assert_int_equal(st.invalidations, 4);
	assert_int_equal(st.pinned_pages, 0);
	errno = 0;
	assert_int_equal(place(f->sv, f->drv, live[0], 0, 0x66, 16), -1);
	assert_int_equal(errno, ESTALE);
	drain_wire(f->sv[1]);
	assert_int_equal(tid_inval_read(f->drv, inval, ARRAY_SIZE(inval), &cnt),
			 0);
	assert_int_equal(cnt, 4);
	assert_true(same_tids(inval, live, 4));
	assert_int_equal(tid_free(f->drv, live, 4, &cnt), 0);
	assert_int_equal(cnt, 4);

	/* The context reads the log afresh: one more event, no overflow. */
	assert_int_equal(madvise(watched, pg, MADV_DONTNEED), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.overflows, 1);
	assert_int_equal(st.tids_used, 0);

	close(uffd);
	munmap(hole, pg);
	munmap(stall_buf, pg);
	munmap(watched, pg);
	for (i = 0; i < 3; i++)
		munmap(bufs[i], (1u << i) * pg);
	close_and_check_pins(f);
}

static int group_setup(void **state)
{
	(void)state;
	pg = sysconf(_SC_PAGESIZE);
	return 0;
}

/* 8. Nothing stays pinned once every context is closed. */
static int group_teardown(void **state)
{
	(void)state;
	if (softhfi_process_pinned_pages()) {
		fprintf(stderr, "%llu pages still pinned\n",
			(unsigned long long)softhfi_process_pinned_pages());
		return -1;
	}
	return 0;
}

#define MM_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* An argument runs only the tests whose names match it (a glob). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		MM_TEST(test_remap_fixed_invalidates),
		MM_TEST(test_registered_range_reused),
		MM_TEST(test_unprogrammed_range_unwatched),
		MM_TEST(test_remap_fixed_during_dma),
		MM_TEST(test_events_sync),
		MM_TEST(test_events_sync_address_reuse),
		MM_TEST(test_madv_dontneed),
		MM_TEST(test_madv_free),
		MM_TEST(test_mremap_move),
		MM_TEST(test_mremap_shrink),
		MM_TEST(test_mremap_grow_keeps),
		MM_TEST(test_partial_munmap),
		MM_TEST(test_freed_entry_no_event),
		MM_TEST(test_update_unwatchable),
		MM_TEST(test_update_races_remap),
		MM_TEST(test_close_while_invalidating),
		MM_TEST(test_ack_event_keeps_queue),
		MM_TEST(test_memlock_unprivileged),
		MM_TEST(test_fork),
		MM_TEST(test_fork_parent_unmaps_after_close),
		MM_TEST(test_fork_child_pin_budget),
		MM_TEST(test_allocator_no_deadlock),
		MM_TEST(test_log_overflow_invalidates_all),
	};

	/*
	 * One malloc arena for every thread (MALLOC_ARENA_MAX=1, common in
	 * HPC), set before any thread allocates: a thread that trims the heap
	 * then holds the one arena lock while it waits for the notifier's
	 * monitor to read the unmapping event, so a monitor that ever called
	 * malloc would deadlock test_allocator_no_deadlock.
	 */
	mallopt(M_ARENA_MAX, 1); /* sanitizers' allocators ignore it */
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("softhfi_mm", tests, group_setup,
					   group_teardown);
}
