// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The per-context stats file (stats.h, hfi1_stats_file.h).
 *
 * The file is made whole before anyone can take it for valid: it is
 * created empty (O_EXCL, so nothing already there is reused or followed;
 * under a random name when another user took the usual one),
 * given its blocks, mapped, filled, and only then gets its magic, after a
 * release fence. A reader that sees the magic sees the rest of the header.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "stats.h"

/* VERBS_LOG_WARN and VERBS_LOG_DEBUG: this unit knows no ibverbs header. */
#define STATS_LOG_WARN 2
#define STATS_LOG_DEBUG 4

/* Names taken by files left behind (HFI1_STATS_KEEP=1, an exec()) skipped. */
#define STATS_NAME_TRIES 64
/* Random names tried when another user took ours: one would do. */
#define STATS_TAG_TRIES 4
/* Files of dead processes one open removes at most; the next take the rest. */
#define STATS_CLEAN_MAX 64

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
 * Removes from @dir files of this user's processes that are gone
 * (hfi1_stats_stale()), which would otherwise pile up there: a process
 * that exits without closing its contexts leaves them. A few readdir()
 * entries and stats per file of this user: cheap enough for each open.
 */
static void stats_clean(const char *dir, void (*log)(void *, int, const char *),
			void *arg)
{
	uid_t me = geteuid();
	struct dirent *de;
	int removed = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return;
	while (removed < STATS_CLEAN_MAX && (de = readdir(d))) {
		if (hfi1_stats_stale(dirfd(d), de->d_name, me) &&
		    !unlinkat(dirfd(d), de->d_name, 0))
			removed++;
	}
	closedir(d);
	if (removed)
		stats_log(
			log, arg, STATS_LOG_DEBUG,
			"removed %d stats file(s) of processes that are gone from %s",
			removed, dir);
}

/* A new file for this process only: O_EXCL, so nothing already there
 * is reused or followed. */
static int stats_open_new(const char *path)
{
	return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		    0600);
}

/* 64 bits that nobody can guess, short of a kernel without getrandom(). */
static uint64_t stats_tag(void)
{
	struct timespec ts;
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) == sizeof(v))
		return v;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)&v;
}

/*
 * @dir's libhfi1.<pid>.<n>.stats, or with @tag libhfi1.<pid>.<n>.<tag>.stats,
 * into @path (PATH_MAX); false when it does not fit.
 */
static bool stats_name(char *path, const char *dir, pid_t pid, uint64_t n,
		       const uint64_t *tag)
{
	int len;

	if (tag)
		len = snprintf(path, PATH_MAX,
			       "%s/" HFI1_STATS_NAME_PREFIX
			       "%ld.%llu.%0*llx" HFI1_STATS_NAME_SUFFIX,
			       dir, (long)pid, (unsigned long long)n,
			       HFI1_STATS_TAG_LEN, (unsigned long long)*tag);
	else
		len = snprintf(path, PATH_MAX,
			       "%s/" HFI1_STATS_NAME_PREFIX
			       "%ld.%llu" HFI1_STATS_NAME_SUFFIX,
			       dir, (long)pid, (unsigned long long)n);
	return len < PATH_MAX;
}

/*
 * Another user's file holds @path, @s's name: anyone may make files in
 * /dev/shm, under names they can predict, to keep this process from
 * publishing or to have theirs read for its. The context takes a name
 * of its own that nobody can guess, and says where it went. The new
 * file's descriptor with @path changed to its name, or -1 with errno.
 */
static int stats_open_tagged(struct hfi1_stats *s, const char *dir, char *path,
			     uid_t owner,
			     void (*log)(void *, int, const char *), void *arg)
{
	char tagged[PATH_MAX];
	uint64_t tag;
	int fd = -1, i;

	for (i = 0; i < STATS_TAG_TRIES; i++) {
		tag = stats_tag();
		if (!stats_name(tagged, dir, s->pid, s->ctx_num, &tag)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = stats_open_new(tagged);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		return -1;
	stats_log(
		log, arg, STATS_LOG_WARN,
		"%s belongs to uid %u, not to this process: its MR cache counters are in %s",
		path, (unsigned int)owner, tagged);
	memcpy(path, tagged, PATH_MAX);
	return fd;
}

/*
 * Creates the next free libhfi1.<pid>.<n>.stats of @dir (a tagged name
 * when another user holds it), mapped. Returns the mapping with s->path
 * and s->ctx_num set, or NULL with errno set.
 */
static struct hfi1_stats_file *
stats_create(struct hfi1_stats *s, const char *dir,
	     void (*log)(void *, int, const char *), void *arg)
{
	struct hfi1_stats_file *f;
	char path[PATH_MAX];
	struct stat st;
	int fd = -1, err, i;

	for (i = 0; i < STATS_NAME_TRIES; i++) {
		s->ctx_num = atomic_fetch_add_explicit(&next_ctx_num, 1,
						       memory_order_relaxed);
		if (!stats_name(path, dir, s->pid, s->ctx_num, NULL)) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		fd = stats_open_new(path);
		if (fd >= 0 || errno != EEXIST)
			break;
		/* A name of ours (a kept file of an earlier image of this
		 * process) or gone again: the next number. */
		if (lstat(path, &st) || st.st_uid == geteuid())
			continue;
		fd = stats_open_tagged(s, dir, path, st.st_uid, log, arg);
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
		/* Files kept on purpose stay: hfi1_mrstat -- CMD reads those
		 * of all CMD's processes once they are done. */
		if (!s->keep)
			stats_clean(dir, log, arg);
		f = stats_create(s, dir, log, arg);
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

struct hfi1_data_counters *hfi1_stats_data(struct hfi1_stats *s)
{
	return &s->file->data;
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
