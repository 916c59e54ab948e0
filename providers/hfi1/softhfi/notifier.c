// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the MMU-notifier stand-in.
 *
 * The hfi1 driver hangs an mmu_interval_notifier on every programmed TID
 * range. User space has no such hook, but a userfaultfd registered in
 * write-protect mode on a range, with nothing ever write-protected, reports
 * munmap (EVENT_UNMAP), madvise DONTNEED/FREE (EVENT_REMOVE) and mremap
 * (EVENT_REMAP) of it and raises no faults.
 *
 * The thread that unmaps blocks until the event has been read. So the
 * monitor thread does nothing but read events and publish them into a
 * lock-free log: no malloc, no free, no printing, no lock that any other
 * thread may hold, no access to user memory. Otherwise an application
 * thread could hold that lock (or the malloc arena lock) while its own
 * free() waits for the monitor, and both would wait for ever.
 *
 * A worker thread then applies the log to every soft context, under the
 * context's lock; each context also drains the log itself before it acts.
 * The monitor raises `reading` before read() and lowers it only after
 * publishing, and the unmapping thread resumes only once read() returned:
 * so whoever drains after munmap() returned sees the event. The address
 * is free before munmap() returns, though (see unmap_in_flight()): the
 * drains also wait for the events the kernel has not handed over yet.
 *
 * A range stays registered after TID_FREE (entries may share pages, and
 * registering costs a system call that takes mmap_lock for writing) until
 * an event over it finds nothing programmed there in any context: the
 * worker then unregisters it (unwatch_idle_locked()). Memory registered
 * once and then trimmed by the allocator over and over (free() of heap
 * memory, madvise(MADV_DONTNEED) of a thread's arena) reports once, not
 * at every trim, which held every thread's lookup up until the monitor
 * had read it, and made every context drain it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "notifier.h"

/*
 * 16384 records of 32 bytes: 512 KiB per process. Ranges stay watched
 * after TID_FREE until their next event; before that was so, a heap that
 * was registered once reported every trim of it, an allocator-heavy
 * process logged some 50,000 events a second, and a worker starved of CPU
 * for a few scheduler slices fell 6,500 behind. A wrap costs every
 * context all its entries (OVERFLOW).
 */
#define INVAL_LOG_ORDER 14
#define INVAL_LOG_SIZE (1u << INVAL_LOG_ORDER)
#define INVAL_LOG_MASK (INVAL_LOG_SIZE - 1)
#define UFFD_READ_BATCH 16
/* REMOVE events whose ranges one pass of unwatch_idle_locked() takes. */
#define UNWATCH_BATCH 64

/*
 * One logged event. A record is rewritten every INVAL_LOG_SIZE events, so
 * readers check its seq before and after (a single-writer seqlock); seq is
 * the record's position in the log plus one, 0 while being rewritten.
 */
struct inval_rec {
	_Atomic uint64_t seq;
	_Atomic uint64_t start;
	_Atomic uint64_t end;
	_Atomic uint32_t reason;
};

struct softhfi_notifier {
	int uffd;
	int stop_fd; /* eventfd: tells both threads to exit */
	int kick_fd; /* eventfd: monitor -> worker, events logged */
	pid_t pid; /* the process the threads run in */
	pthread_t monitor;
	pthread_t worker;
	_Atomic uint64_t head; /* sequence of the next record */
	_Atomic int reading; /* monitor is between read() and publish */
	/* The consumers; under notifier_lock. */
	TAILQ_HEAD(, softhfi_watch) watches;
	unsigned int users;
	/* The next record unwatch_idle_locked() looks at; the worker's. */
	uint64_t unwatch_seq;
	_Atomic uint64_t unregistrations; /* ranges it unregistered */
	struct inval_rec log[INVAL_LOG_SIZE];
};

/* Protects `notifier` and the watch lists; never taken by the monitor. */
static pthread_mutex_t notifier_lock = PTHREAD_MUTEX_INITIALIZER;
static struct softhfi_notifier *notifier;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&notifier_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&notifier_lock);
}

/*
 * The child has no monitor or worker. It keeps the parent's notifier
 * object (contexts inherited from the parent still point at it and refuse
 * to work, see file_ops.c) but the next attach in the child starts afresh.
 *
 * It must not keep the parent's file descriptors: an open userfaultfd
 * keeps the parent's ranges registered, and once the parent has stopped
 * its notifier, the parent's munmap() of such a range would wait for a
 * reader until the child closed the file or exited.
 */
static void atfork_child(void)
{
	pthread_mutex_init(&notifier_lock, NULL);
	if (notifier) {
		close(notifier->uffd);
		close(notifier->stop_fd);
		close(notifier->kick_fd);
		notifier->uffd = -1;
		notifier->stop_fd = -1;
		notifier->kick_fd = -1;
	}
}

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void publish(struct softhfi_notifier *n, uint64_t start, uint64_t end,
		    enum softhfi_inval_reason reason)
{
	uint64_t h = atomic_load_explicit(&n->head, memory_order_relaxed);
	struct inval_rec *rec = &n->log[h & INVAL_LOG_MASK];

	atomic_store_explicit(&rec->seq, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&rec->start, start, memory_order_relaxed);
	atomic_store_explicit(&rec->end, end, memory_order_relaxed);
	atomic_store_explicit(&rec->reason, reason, memory_order_relaxed);
	atomic_store_explicit(&rec->seq, h + 1, memory_order_release);
	atomic_store_explicit(&n->head, h + 1, memory_order_release);
}

/* Must stay free of malloc, locks and printing: see the top comment. */
static void *monitor_thread(void *arg)
{
	struct softhfi_notifier *n = arg;
	struct uffd_msg msgs[UFFD_READ_BATCH];
	struct pollfd pfd[2] = {
		{ .fd = n->uffd, .events = POLLIN },
		{ .fd = n->stop_fd, .events = POLLIN },
	};
	uint64_t one = 1;
	ssize_t len;
	size_t i;

	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents)
			break;
		if (!pfd[0].revents)
			continue;

		atomic_store(&n->reading, 1);
		len = read(n->uffd, msgs, sizeof(msgs));
		for (i = 0; len > 0 && i < len / sizeof(msgs[0]); i++) {
			struct uffd_msg *m = &msgs[i];

			switch (m->event) {
			case UFFD_EVENT_UNMAP:
				publish(n, m->arg.remove.start,
					m->arg.remove.end, SOFTHFI_INVAL_UNMAP);
				break;
			case UFFD_EVENT_REMOVE:
				publish(n, m->arg.remove.start,
					m->arg.remove.end,
					SOFTHFI_INVAL_REMOVE);
				break;
			case UFFD_EVENT_REMAP:
				publish(n, m->arg.remap.from,
					m->arg.remap.from + m->arg.remap.len,
					SOFTHFI_INVAL_REMAP);
				break;
			default:
				/* No faults: nothing is write-protected. */
				break;
			}
		}
		atomic_store(&n->reading, 0);
		if (len > 0 && write(n->kick_fd, &one, sizeof(one)) < 0)
			continue;
	}
	return NULL;
}

static void drain_to_locked(struct softhfi_watch *w, uint64_t head);
static void unwatch_idle_locked(struct softhfi_notifier *n, uint64_t head);

/* Applies the log to every context, so no one has to call in for it. */
static void *worker_thread(void *arg)
{
	struct softhfi_notifier *n = arg;
	struct pollfd pfd[2] = {
		{ .fd = n->kick_fd, .events = POLLIN },
		{ .fd = n->stop_fd, .events = POLLIN },
	};
	struct softhfi_watch *w;
	uint64_t count, head;

	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents)
			break;
		if (read(n->kick_fd, &count, sizeof(count)) < 0)
			continue;

		pthread_mutex_lock(&notifier_lock);
		/* Every watch applies at least this much below. */
		head = atomic_load_explicit(&n->head, memory_order_acquire);
		TAILQ_FOREACH(w, &n->watches, link)
		{
			/*
			 * What is logged, not what is in flight: those kick
			 * again once logged. Waiting for them here, under
			 * the context's lock, held up every thread that
			 * wanted it, for as long as the unmapping thread
			 * took to be scheduled again.
			 */
			pthread_mutex_lock(w->lock);
			drain_to_locked(
				w, atomic_load_explicit(&n->head,
							memory_order_acquire));
			if (w->unlock)
				w->unlock(w);
			else
				pthread_mutex_unlock(w->lock);
			/* Under notifier_lock: detach waits for it. */
			if (w->after_drain)
				w->after_drain(w);
		}
		unwatch_idle_locked(n, head);
		pthread_mutex_unlock(&notifier_lock);
	}
	return NULL;
}

int softhfi_notifier_open_uffd(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd;

	/* USER_MODE_ONLY is what an unprivileged process may ask for. */
	fd = syscall(SYS_userfaultfd,
		     O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static int start_threads(struct softhfi_notifier *n)
{
	sigset_t all, old;
	int err;

	/* The threads inherit this mask: no signal handler runs in them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&n->monitor, NULL, monitor_thread, n);
	if (!err) {
		err = pthread_create(&n->worker, NULL, worker_thread, n);
		if (err) {
			uint64_t one = 1;

			if (write(n->stop_fd, &one, sizeof(one)) < 0)
				abort();
			pthread_join(n->monitor, NULL);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

static struct softhfi_notifier *notifier_create(int *errp)
{
	const uint64_t events = UFFD_FEATURE_EVENT_UNMAP |
				UFFD_FEATURE_EVENT_REMOVE |
				UFFD_FEATURE_EVENT_REMAP;
	struct softhfi_notifier *n;
	int err;

	n = calloc(1, sizeof(*n));
	if (!n) {
		*errp = ENOMEM;
		return NULL;
	}
	TAILQ_INIT(&n->watches);
	n->pid = getpid();

	/* Shared memory can be watched only where the kernel allows WP. */
	n->uffd = softhfi_notifier_open_uffd(events |
					     UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	if (n->uffd == -EINVAL)
		n->uffd = softhfi_notifier_open_uffd(events);
	if (n->uffd < 0) {
		err = -n->uffd;
		goto err_free;
	}
	n->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (n->stop_fd < 0) {
		err = errno;
		goto err_close_uffd;
	}
	n->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->kick_fd < 0) {
		err = errno;
		goto err_close_stop;
	}
	err = start_threads(n);
	if (err)
		goto err_close_kick;
	return n;

err_close_kick:
	close(n->kick_fd);
err_close_stop:
	close(n->stop_fd);
err_close_uffd:
	close(n->uffd);
err_free:
	free(n);
	*errp = err;
	return NULL;
}

/* Caller holds notifier_lock. */
static void notifier_destroy_locked(struct softhfi_notifier *n)
{
	uint64_t one = 1;

	/*
	 * The worker may be waiting for notifier_lock: let it go while the
	 * threads stop. Nobody else can find @n any more.
	 */
	notifier = NULL;
	pthread_mutex_unlock(&notifier_lock);
	if (write(n->stop_fd, &one, sizeof(one)) < 0)
		abort();
	pthread_join(n->monitor, NULL);
	pthread_join(n->worker, NULL);
	pthread_mutex_lock(&notifier_lock);
	/* Closing the uffd unregisters every range and frees any waiter. */
	close(n->uffd);
	close(n->stop_fd);
	close(n->kick_fd);
	free(n);
}

int softhfi_notifier_attach(struct softhfi_watch *w)
{
	int err = 0;

	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&notifier_lock);
	/* A notifier inherited through fork() has no threads here. */
	if (notifier && notifier->pid != getpid())
		notifier = NULL;
	if (!notifier)
		notifier = notifier_create(&err);
	if (notifier) {
		w->notifier = notifier;
		atomic_store_explicit(&w->cursor, atomic_load(&notifier->head),
				      memory_order_release);
		w->reg_start = w->reg_end = 0;
		TAILQ_INSERT_TAIL(&notifier->watches, w, link);
		notifier->users++;
	}
	pthread_mutex_unlock(&notifier_lock);
	return err;
}

void softhfi_notifier_detach(struct softhfi_watch *w)
{
	struct softhfi_notifier *n = w->notifier;

	if (!n)
		return;
	/* In a forked child the parent's notifier is not ours to stop. */
	if (n->pid != getpid()) {
		w->notifier = NULL;
		return;
	}
	/* The worker walks the list and drains through w->notifier. */
	pthread_mutex_lock(&notifier_lock);
	TAILQ_REMOVE(&n->watches, w, link);
	w->notifier = NULL;
	if (--n->users == 0)
		notifier_destroy_locked(n);
	pthread_mutex_unlock(&notifier_lock);
}

static bool read_rec(struct softhfi_notifier *n, uint64_t seq, uint64_t *start,
		     uint64_t *end, uint32_t *reason);

/*
 * Scanning more of the log than this to keep the last registered range
 * costs more than registering it again.
 */
#define REG_SCAN_MAX 64

/*
 * Whether [reg_start, reg_end) may have stopped being registered: an
 * UNMAP or REMAP over it logged since reg_seq (a REMOVE leaves the
 * registration), or more logged than is worth reading. Otherwise moves
 * reg_seq up to head. Caller holds w->lock.
 */
static bool registered_range_gone_locked(struct softhfi_watch *w)
{
	struct softhfi_notifier *n = w->notifier;
	uint64_t head = atomic_load_explicit(&n->head, memory_order_acquire);
	uint64_t seq, s, e;
	uint32_t reason;

	if (head - w->reg_seq > REG_SCAN_MAX)
		return true;
	for (seq = w->reg_seq; seq < head; seq++) {
		if (!read_rec(n, seq, &s, &e, &reason))
			return true;
		if (reason != SOFTHFI_INVAL_REMOVE && s < w->reg_end &&
		    w->reg_start < e)
			return true;
	}
	w->reg_seq = head;
	return false;
}

/*
 * Whether all that is mapped in [start, end) is private anonymous memory
 * (no file: inode 0 in /proc/self/maps), which userfaultfd always
 * watches. False when it cannot tell.
 */
static bool range_anonymous(uint64_t start, uint64_t end)
{
	unsigned long long lo, hi, inode;
	char *line = NULL;
	size_t cap = 0;
	bool anon = true;
	FILE *maps;

	maps = fopen("/proc/self/maps", "re");
	if (!maps)
		return false;
	while (anon && getline(&line, &cap, maps) > 0) {
		if (sscanf(line, "%llx-%llx %*s %*x %*x:%*x %llu", &lo, &hi,
			   &inode) != 3)
			anon = false;
		else if (lo >= end)
			break;
		else if (hi > start && inode)
			anon = false;
	}
	free(line);
	fclose(maps);
	return anon;
}

/* Registrations of a range found mapped after a refusal: see below. */
#define WATCH_TRIES 4

/*
 * UFFDIO_REGISTER of @reg failed with @err. userfaultfd refuses a range
 * with nothing mapped in it (EINVAL, or ENOMEM) as it refuses memory it
 * can never watch (EINVAL), and msync() tells a hole from a mapping only
 * after the fact: another thread may have mapped the range again since.
 * So a range found mapped is registered again, WATCH_TRIES times at most:
 * memory that cannot be watched is refused every time. So can a range
 * that another thread keeps unmapping and mapping again; /proc/self/maps
 * then tells them apart, as anonymous memory is always watched.
 *
 * Returns 0 once registered; EFAULT if nothing is mapped at the first
 * look; EBUSY if the range changed under the call (nothing mapped at a
 * later look, or anonymous memory refused): the caller tries again, as
 * after an unmapping during the setup; EOPNOTSUPP for memory that cannot
 * be watched (also for EPERM, a shared mapping that may not be written,
 * and EBUSY, one that another userfaultfd watches). Caller holds w->lock.
 */
static int watch_refused(struct softhfi_watch *w, struct uffdio_register *reg,
			 int err)
{
	uint64_t start = reg->range.start, len = reg->range.len;
	unsigned int tries;

	for (tries = 1;; tries++) {
		if (msync((void *)(uintptr_t)start, len, MS_ASYNC) &&
		    errno == ENOMEM)
			return tries == 1 ? EFAULT : EBUSY;
		if (err != EINVAL && err != ENOMEM)
			return EOPNOTSUPP;
		if (tries == WATCH_TRIES)
			break;
		w->registrations++;
		if (!ioctl(w->notifier->uffd, UFFDIO_REGISTER, reg))
			return 0;
		err = errno;
	}
	return range_anonymous(start, start + len) ? EBUSY : EOPNOTSUPP;
}

int softhfi_notifier_watch(struct softhfi_watch *w, uint64_t start,
			   uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	uint64_t seq;
	int err = 0;

	/* Not start + len: a range at the top of memory would wrap. */
	if (start >= w->reg_start && start < w->reg_end &&
	    len <= w->reg_end - start && !registered_range_gone_locked(w))
		return 0;
	/* An unmapping logged from here on may be of what we register. */
	seq = atomic_load_explicit(&w->notifier->head, memory_order_acquire);
	w->registrations++;
	if (ioctl(w->notifier->uffd, UFFDIO_REGISTER, &reg))
		err = watch_refused(w, &reg, errno);
	if (err) {
		w->reg_start = w->reg_end = 0;
		return err;
	}
	w->reg_start = start;
	w->reg_end = start + len;
	w->reg_seq = seq;
	return 0;
}

/*
 * Whether the kernel has taken away a watched range whose event the
 * monitor has not read yet. munmap() and mremap() take the range away
 * under mmap_lock but queue their event only after dropping it
 * (userfaultfd_unmap_complete()): in between, another thread's mmap() can
 * be handed the same address and look it up, before the unmapping thread
 * has even returned. hfi1's notifier runs before the address is free;
 * ours cannot, so those who must not miss the event ask the kernel: it
 * counts such events in the userfaultfd's mmap_changing, from before the
 * range goes away until read() takes the event, and fails
 * UFFDIO_WRITEPROTECT with EAGAIN while any is counted, before it looks
 * at the (here empty, hence EINVAL) range. One system call; errno kept.
 */
static bool unmap_in_flight(struct softhfi_notifier *n)
{
	struct uffdio_writeprotect wp = { 0 };
	int saved = errno;
	bool busy;

	busy = ioctl(n->uffd, UFFDIO_WRITEPROTECT, &wp) && errno == EAGAIN;
	errno = saved;
	return busy;
}

/*
 * Wait out the events the kernel owes the monitor and a read() in
 * progress in the monitor: both are short, the monitor reads at once.
 * In that order: once an event is no longer counted in the kernel, read()
 * has taken it, so `reading` is raised or head is past it.
 */
static uint64_t settled_head(struct softhfi_notifier *n)
{
	unsigned int spins = 0;

	while (unmap_in_flight(n) || atomic_load(&n->reading)) {
		if (++spins > 64)
			sched_yield();
	}
	return atomic_load_explicit(&n->head, memory_order_acquire);
}

/*
 * Only wait out a read() in progress in the monitor: then every unmapping
 * whose munmap() has returned is below head (see
 * softhfi_notifier_pending_returned()).
 */
static uint64_t returned_head(struct softhfi_notifier *n)
{
	unsigned int spins = 0;

	while (atomic_load(&n->reading)) {
		if (++spins > 64)
			sched_yield();
	}
	return atomic_load_explicit(&n->head, memory_order_acquire);
}

/*
 * What is logged, without waiting: an event still in flight (its
 * unmapping took effect already) is logged at or after the sequence
 * returned, so changed_since() reports it. An unmapping of the range under
 * way when the setup starts then fails it as one during the setup does,
 * rather than every setup asking the kernel.
 */
uint64_t softhfi_notifier_seq(struct softhfi_watch *w)
{
	return atomic_load_explicit(&w->notifier->head, memory_order_acquire);
}

/* Reads record @seq; false if it was overwritten (the log wrapped). */
static bool read_rec(struct softhfi_notifier *n, uint64_t seq, uint64_t *start,
		     uint64_t *end, uint32_t *reason)
{
	struct inval_rec *rec = &n->log[seq & INVAL_LOG_MASK];
	uint64_t s1, s2;

	s1 = atomic_load_explicit(&rec->seq, memory_order_acquire);
	*start = atomic_load_explicit(&rec->start, memory_order_relaxed);
	*end = atomic_load_explicit(&rec->end, memory_order_relaxed);
	*reason = atomic_load_explicit(&rec->reason, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	s2 = atomic_load_explicit(&rec->seq, memory_order_relaxed);
	return s1 == seq + 1 && s2 == seq + 1;
}

bool softhfi_notifier_changed_since(struct softhfi_watch *w, uint64_t seq,
				    uint64_t start, uint64_t end)
{
	struct softhfi_notifier *n = w->notifier;
	uint64_t head = settled_head(n);
	uint64_t s, e;
	uint32_t reason;

	if (head - seq > INVAL_LOG_SIZE)
		return true;
	for (; seq < head; seq++) {
		if (!read_rec(n, seq, &s, &e, &reason))
			return true;
		if (s < end && start < e)
			return true;
	}
	return false;
}

/* Apply the log up to @head. Caller holds w->lock. */
static void drain_to_locked(struct softhfi_watch *w, uint64_t head)
{
	struct softhfi_notifier *n = w->notifier;
	uint64_t cursor =
		atomic_load_explicit(&w->cursor, memory_order_relaxed);
	uint64_t c, s, e;
	uint32_t reason;

	if (cursor == head)
		return;
	w->events += head - cursor;
	if (head - cursor > INVAL_LOG_SIZE)
		goto overflow;
	for (c = cursor; c < head; c++) {
		if (!read_rec(n, c, &s, &e, &reason))
			goto overflow;
		w->invalidate(w, s, e, reason);
	}
	goto out;

overflow:
	w->invalidate(w, 0, UINT64_MAX, SOFTHFI_INVAL_OVERFLOW);
out:
	/* After the effects: see softhfi_notifier_pending(). */
	atomic_store_explicit(&w->cursor, head, memory_order_release);
}

struct unwatch_range {
	uint64_t start, end; /* end == start: dropped */
};

/*
 * Unregister what @r names that no watch has programmed over. Every
 * watch's lock is held across, so that no TID_UPDATE programs a range
 * between the look and the UFFDIO_UNREGISTER, and no watch keeps one as
 * the last range it registered (it would skip registering it again).
 * Caller holds notifier_lock, which orders the watches' locks.
 */
static void unwatch_ranges_locked(struct softhfi_notifier *n,
				  const struct unwatch_range *r,
				  unsigned int nr)
{
	struct softhfi_watch *w;
	unsigned int i;

	TAILQ_FOREACH(w, &n->watches, link)
	{
		pthread_mutex_lock(w->lock);
	}
	for (i = 0; i < nr; i++) {
		struct uffdio_range range = {
			.start = r[i].start,
			.len = r[i].end - r[i].start,
		};
		bool busy = false;

		if (!range.len)
			continue;
		TAILQ_FOREACH(w, &n->watches, link)
		{
			if (!w->programmed ||
			    w->programmed(w, r[i].start, r[i].end)) {
				busy = true;
				break;
			}
		}
		if (busy)
			continue;
		TAILQ_FOREACH(w, &n->watches, link)
		{
			if (r[i].start < w->reg_end && w->reg_start < r[i].end)
				w->reg_start = w->reg_end = 0;
		}
		/* Part of it may be unmapped by now: what is left goes. */
		if (!ioctl(n->uffd, UFFDIO_UNREGISTER, &range))
			atomic_fetch_add_explicit(&n->unregistrations, 1,
						  memory_order_relaxed);
	}
	TAILQ_FOREACH(w, &n->watches, link)
	{
		if (w->unlock)
			w->unlock(w);
		else
			pthread_mutex_unlock(w->lock);
	}
}

/*
 * Stop watching the ranges of the REMOVE events logged below @head over
 * which nothing is programmed. The event invalidated whatever was, in
 * every watch (each has applied the log up to @head), so only an entry
 * programmed since keeps a range watched. madvise(DONTNEED, FREE) leaves
 * a range registered, and a heap reports every trim of it otherwise; an
 * UNMAP or a REMAP takes the registration with the mapping, and one
 * logged after a REMOVE drops the REMOVE's range here: the address may
 * be another mapping's by now. Records the log has overwritten are
 * skipped: their ranges report again at their next event. Caller (the
 * worker) holds notifier_lock.
 */
static void unwatch_idle_locked(struct softhfi_notifier *n, uint64_t head)
{
	struct unwatch_range r[UNWATCH_BATCH];
	uint64_t seq = n->unwatch_seq, s, e;
	unsigned int nr, i;
	uint32_t reason;

	if (head - seq > INVAL_LOG_SIZE)
		seq = head - INVAL_LOG_SIZE;
	while (seq < head) {
		for (nr = 0; seq < head && nr < UNWATCH_BATCH; seq++) {
			if (!read_rec(n, seq, &s, &e, &reason))
				continue;
			if (reason != SOFTHFI_INVAL_REMOVE) {
				for (i = 0; i < nr; i++)
					if (s < r[i].end && r[i].start < e)
						r[i].end = r[i].start;
				continue;
			}
			/* A heap trimmed over and over: the same range. */
			if (nr && r[nr - 1].start == s && r[nr - 1].end == e)
				continue;
			r[nr].start = s;
			r[nr].end = e;
			nr++;
		}
		if (nr)
			unwatch_ranges_locked(n, r, nr);
	}
	n->unwatch_seq = head;
}

uint64_t softhfi_notifier_unregistrations(struct softhfi_watch *w)
{
	return atomic_load_explicit(&w->notifier->unregistrations,
				    memory_order_relaxed);
}

void softhfi_notifier_drain_locked(struct softhfi_watch *w)
{
	drain_to_locked(w, settled_head(w->notifier));
}

void softhfi_notifier_drain_returned_locked(struct softhfi_watch *w)
{
	drain_to_locked(w, returned_head(w->notifier));
}

bool softhfi_notifier_pending_locked(struct softhfi_watch *w)
{
	struct softhfi_notifier *n = w->notifier;

	return unmap_in_flight(n) || atomic_load(&n->reading) ||
	       atomic_load_explicit(&n->head, memory_order_acquire) !=
		       atomic_load_explicit(&w->cursor, memory_order_relaxed);
}

/*
 * `reading` is raised before the monitor's read() and lowered after
 * publishing, and an unmapping thread resumes only after that read(): so
 * once munmap() has returned, either `reading` is set or head is past its
 * event. An address it freed can be mapped again before that, though: the
 * kernel's count of unread events (unmap_in_flight()) covers the gap, and
 * is looked at first, so that once it says none, `reading` or head shows
 * the event. A cursor equal to head was stored (release) by the drain that
 * applied everything before head, after it did.
 */
bool softhfi_notifier_pending(struct softhfi_watch *w)
{
	struct softhfi_notifier *n = w->notifier;

	return unmap_in_flight(n) || atomic_load(&n->reading) ||
	       atomic_load_explicit(&n->head, memory_order_acquire) !=
		       atomic_load_explicit(&w->cursor, memory_order_acquire);
}

/*
 * softhfi_notifier_pending() less unmap_in_flight(), for the unmappings
 * whose munmap() has returned before the call. The monitor raises
 * `reading` before the read() that lets the unmapping thread go on, so
 * that munmap() returns after the store; a caller ordered after the
 * return loads that 1 or a later store. A later 0 is stored after the
 * event's publish (both seq_cst), so head is then past the event; and a
 * cursor equal to head was stored by a drain after it applied the event
 * (release, paired with the acquire here).
 */
bool softhfi_notifier_pending_returned(struct softhfi_watch *w)
{
	struct softhfi_notifier *n = w->notifier;

	return atomic_load(&n->reading) ||
	       atomic_load_explicit(&n->head, memory_order_acquire) !=
		       atomic_load_explicit(&w->cursor, memory_order_acquire);
}
