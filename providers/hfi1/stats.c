// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The per-context stats file (stats.h, hfi1_stats_file.h).
 *
 * The file is made whole before anyone can take it for valid: it is
 * created empty (O_EXCL, so nothing already there is reused or followed),
 * given its blocks, mapped, filled, and only then gets its magic, after a
 * release fence. A reader that sees the magic sees the rest of the header.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "stats.h"

/* VERBS_LOG_WARN and VERBS_LOG_DEBUG: this unit knows no ibverbs header. */
#define STATS_LOG_WARN 2
#define STATS_LOG_DEBUG 4

/* Names taken by files left behind (HFI1_STATS_KEEP=1, an exec()) skipped. */
#define STATS_NAME_TRIES 64

struct hfi1_stats {
	struct hfi1_stats_file *file; /* mapped, or calloc'd when private */
	char *path; /* NULL when private */
	pid_t pid; /* the opener: only it closes the file */
	bool keep;
	uint64_t ctx_num;
};

/* The process's context numbers, <n> in the files' names. */
static _Atomic uint64_t next_ctx_num;
/* The failure to make a file is logged once per process, not per context. */
static atomic_bool warned;

static void stats_log(void (*log)(void *, int, const char *), void *arg,
		      int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void stats_log(void (*log)(void *, int, const char *), void *arg,
		      int level, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log(arg, level, msg);
}

/* A 0/1 switch from the environment; anything else keeps the default. */
static bool env_switch(const char *name, bool dflt,
		       void (*log)(void *, int, const char *), void *arg)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return dflt;
	if (!strcmp(v, "0"))
		return false;
	if (!strcmp(v, "1"))
		return true;
	stats_log(log, arg, STATS_LOG_WARN, "%s=%s is not 0 or 1: ignored",
		  name, v);
	return dflt;
}

/*
 * Creates the next free libhfi1.<pid>.<n>.stats of @dir, mapped. Returns
 * the mapping with s->path and s->ctx_num set, or NULL with errno set.
 */
static struct hfi1_stats_file *stats_create(struct hfi1_stats *s,
					    const char *dir)
{
	struct hfi1_stats_file *f;
	char path[PATH_MAX];
	int fd = -1, err, i;

	for (i = 0; i < STATS_NAME_TRIES; i++) {
		s->ctx_num = atomic_fetch_add_explicit(&next_ctx_num, 1,
						       memory_order_relaxed);
		if (snprintf(path, sizeof(path),
			     "%s/" HFI1_STATS_NAME_PREFIX
			     "%ld.%llu" HFI1_STATS_NAME_SUFFIX,
			     dir, (long)s->pid,
			     (unsigned long long)s->ctx_num) >=
		    (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		fd = open(path,
			  O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		return NULL;

	/*
	 * Blocks now rather than ftruncate(): a full tmpfs must fail here,
	 * not raise SIGBUS at the cache's first counter store.
	 */
	err = posix_fallocate(fd, 0, sizeof(*f));
	if (err) {
		errno = err;
		goto err_unlink;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED)
		goto err_unlink;
	s->path = strdup(path);
	if (!s->path)
		goto err_unmap;
	close(fd);
	return f;

err_unmap:
	munmap(f, sizeof(*f));
err_unlink:
	err = errno;
	unlink(path);
	close(fd);
	errno = err;
	return NULL;
}

struct hfi1_stats *
hfi1_stats_open(const char *device,
		void (*log)(void *arg, int level, const char *msg), void *arg)
{
	struct hfi1_stats_file *f = NULL;
	struct hfi1_stats *s;
	const char *dir;
	uint64_t start_time = 0;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->pid = getpid();
	s->keep = env_switch("HFI1_STATS_KEEP", false, log, arg);

	if (env_switch("HFI1_STATS", true, log, arg)) {
		dir = getenv("HFI1_STATS_DIR");
		if (!dir || !*dir)
			dir = HFI1_STATS_DEFAULT_DIR;
		/* Without it hfi1_mrstat could not tell this process from
		 * a later one with its pid; 0 would be trusted blindly. */
		err = hfi1_stats_pid_start_time(s->pid, &start_time);
		if (err)
			stats_log(log, arg, STATS_LOG_DEBUG,
				  "no start time in /proc/self/stat: %s",
				  strerror(err));
		f = stats_create(s, dir);
		if (!f && !atomic_exchange(&warned, true))
			stats_log(
				log, arg, STATS_LOG_WARN,
				"cannot publish MR cache counters in %s: %s; hfi1_mrstat will not see this process",
				dir, strerror(errno));
	} else {
		s->ctx_num = atomic_fetch_add_explicit(&next_ctx_num, 1,
						       memory_order_relaxed);
	}
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			goto err_free;
	}
	s->file = f;

	f->version = HFI1_STATS_VERSION;
	f->size = sizeof(*f);
	f->pid = s->pid;
	f->start_time = start_time;
	f->ctx_num = s->ctx_num;
	if (device)
		snprintf(f->device, sizeof(f->device), "%s", device);
	atomic_thread_fence(memory_order_release);
	memcpy(f->magic, HFI1_STATS_MAGIC, sizeof(f->magic));
	return s;

err_free:
	free(s);
	errno = ENOMEM;
	return NULL;
}

void hfi1_stats_close(struct hfi1_stats *s)
{
	if (!s)
		return;
	if (!s->path) {
		free(s->file);
		free(s);
		return;
	}
	/* A forked child shares the parent's file: it is not its to end. */
	if (getpid() == s->pid) {
		atomic_store_explicit(&s->file->closed, 1,
				      memory_order_relaxed);
		if (!s->keep)
			unlink(s->path);
	}
	munmap(s->file, sizeof(*s->file));
	free(s->path);
	free(s);
}

struct hfi1_mrc_counters *hfi1_stats_counters(struct hfi1_stats *s)
{
	return &s->file->counters;
}

void hfi1_stats_set_limits(struct hfi1_stats *s,
			   const struct hfi1_mrc_limits *limits)
{
	struct hfi1_stats_file *f = s->file;

	atomic_store_explicit(&f->limit_enabled, limits->enabled,
			      memory_order_relaxed);
	atomic_store_explicit(&f->limit_max_entries, limits->max_entries,
			      memory_order_relaxed);
	atomic_store_explicit(&f->limit_max_bytes, limits->max_bytes,
			      memory_order_relaxed);
}

const char *hfi1_stats_path(const struct hfi1_stats *s)
{
	return s->path;
}

uint64_t hfi1_stats_ctx_num(const struct hfi1_stats *s)
{
	return s->ctx_num;
}
