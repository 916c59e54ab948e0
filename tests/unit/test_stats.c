// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the per-context stats file (providers/hfi1/stats.c): the
 * file's name, mode and header; counters and limits written through the
 * writer's pointers as a reader outside sees them (a second mapping and
 * pread()); close removing the file or, with HFI1_STATS_KEEP=1, leaving
 * it marked closed; HFI1_STATS=0 making nothing; the fallback to private
 * counters when the directory is unusable, logged once; names already
 * taken skipped, and a random one taken, and logged, when another user
 * holds the name; a forked child's close leaving the parent's file; and
 * a context's open removing the files of this user's dead processes, and
 * nothing else, a bounded number at a time, none with HFI1_STATS_KEEP=1.
 *
 * Each test gets a fresh HFI1_STATS_DIR of its own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "stats.h"

#define LOG_WARN 2 /* VERBS_LOG_WARN */

struct fixture {
	char dir[64];
};

struct log_capture {
	int warnings;
	int lines;
	char last[512];
};

static void capture_log(void *arg, int level, const char *msg)
{
	struct log_capture *lc = arg;

	lc->lines++;
	if (level <= LOG_WARN)
		lc->warnings++;
	snprintf(lc->last, sizeof(lc->last), "%s", msg);
}

static int count_files(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_stats.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	setenv("HFI1_STATS_DIR", fx->dir, 1);
	unsetenv("HFI1_STATS");
	unsetenv("HFI1_STATS_KEEP");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(fx->dir);

	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", fx->dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* What a reader outside the process does: pread() into a copy. */
static void read_file(const char *path, struct hfi1_stats_file *copy)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, copy, sizeof(*copy), 0), sizeof(*copy));
	close(fd);
}

static void test_header(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats_file copy;
	struct hfi1_stats *s;
	char want[PATH_MAX];
	uint64_t start_time;
	struct stat st;

	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	assert_non_null(hfi1_stats_path(s));
	snprintf(want, sizeof(want), "%s/libhfi1.%d.%llu.stats", fx->dir,
		 (int)getpid(), (unsigned long long)hfi1_stats_ctx_num(s));
	assert_string_equal(hfi1_stats_path(s), want);

	assert_int_equal(stat(want, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, sizeof(struct hfi1_stats_file));

	read_file(want, &copy);
	assert_memory_equal(copy.magic, HFI1_STATS_MAGIC, 8);
	assert_int_equal(copy.version, HFI1_STATS_VERSION);
	assert_int_equal(copy.size, sizeof(copy));
	assert_int_equal(copy.pid, getpid());
	assert_int_equal(hfi1_stats_pid_start_time(getpid(), &start_time), 0);
	assert_true(start_time > 0);
	assert_int_equal(copy.start_time, start_time);
	assert_int_equal(copy.ctx_num, hfi1_stats_ctx_num(s));
	assert_string_equal(copy.device, "hfi1_0");
	assert_int_equal(copy.closed, 0);
	assert_int_equal(copy.counters.hits, 0);
	assert_int_equal(copy.counters.pinned_bytes, 0);
	hfi1_stats_close(s);
}

static void test_start_time_of_other_pid(void **state)
{
	uint64_t mine, init;

	(void)state;
	assert_int_equal(hfi1_stats_pid_start_time(getpid(), &mine), 0);
	/* pid 1 started no later than this process. */
	if (hfi1_stats_pid_start_time(1, &init) == 0)
		assert_true(init <= mine);
	assert_int_equal(hfi1_stats_pid_start_time(-1, &init), ENOENT);
}

static void test_device_name_truncated(void **state)
{
	struct hfi1_stats_file copy;
	struct hfi1_stats *s;
	char name[200];

	(void)state;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	s = hfi1_stats_open(name, NULL, NULL);
	assert_non_null(s);
	read_file(hfi1_stats_path(s), &copy);
	assert_int_equal(strnlen(copy.device, sizeof(copy.device)),
			 sizeof(copy.device) - 1);
	hfi1_stats_close(s);
}

static void test_counters_seen_by_reader(void **state)
{
	struct hfi1_mrc_limits limits = { .enabled = true,
					  .max_entries = 1024,
					  .max_bytes = 1 << 20 };
	struct hfi1_stats_file *map, copy;
	struct hfi1_mrc_counters *c;
	struct hfi1_stats *s;
	int fd;

	(void)state;
	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	c = hfi1_stats_counters(s);
	fd = open(hfi1_stats_path(s), O_RDONLY);
	assert_true(fd >= 0);
	map = mmap(NULL, sizeof(*map), PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	close(fd);

	atomic_store_explicit(&c->hits, 7, memory_order_relaxed);
	atomic_store_explicit(&c->misses, 3, memory_order_relaxed);
	atomic_store_explicit(&c->evictions, 2, memory_order_relaxed);
	atomic_store_explicit(&c->invalidations, 5, memory_order_relaxed);
	atomic_store_explicit(&c->invalidated_in_use, 1, memory_order_relaxed);
	atomic_store_explicit(&c->failures, 4, memory_order_relaxed);
	atomic_store_explicit(&c->entries, 9, memory_order_relaxed);
	atomic_store_explicit(&c->idle_entries, 6, memory_order_relaxed);
	atomic_store_explicit(&c->pinned_bytes, 123456, memory_order_relaxed);
	atomic_store_explicit(&c->tids_used, 11, memory_order_relaxed);
	hfi1_stats_set_limits(s, &limits);

	assert_int_equal(atomic_load(&map->counters.hits), 7);
	assert_int_equal(atomic_load(&map->counters.pinned_bytes), 123456);
	assert_int_equal(atomic_load(&map->limit_max_bytes), 1 << 20);

	read_file(hfi1_stats_path(s), &copy);
	assert_int_equal(copy.counters.hits, 7);
	assert_int_equal(copy.counters.misses, 3);
	assert_int_equal(copy.counters.evictions, 2);
	assert_int_equal(copy.counters.invalidations, 5);
	assert_int_equal(copy.counters.invalidated_in_use, 1);
	assert_int_equal(copy.counters.failures, 4);
	assert_int_equal(copy.counters.entries, 9);
	assert_int_equal(copy.counters.idle_entries, 6);
	assert_int_equal(copy.counters.pinned_bytes, 123456);
	assert_int_equal(copy.counters.tids_used, 11);
	assert_int_equal(copy.limit_enabled, 1);
	assert_int_equal(copy.limit_max_entries, 1024);
	assert_int_equal(copy.limit_max_bytes, 1 << 20);

	/* Later stores are seen too: the mapping is the file. */
	atomic_store_explicit(&c->hits, 8, memory_order_relaxed);
	assert_int_equal(atomic_load(&map->counters.hits), 8);
	hfi1_stats_close(s);
	/* The reader's mapping outlives the name: it sees the close. */
	assert_int_equal(atomic_load(&map->closed), 1);
	munmap(map, sizeof(*map));
}

static void test_close_unlinks(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats *s;
	char path[PATH_MAX];

	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	snprintf(path, sizeof(path), "%s", hfi1_stats_path(s));
	assert_int_equal(access(path, F_OK), 0);
	hfi1_stats_close(s);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_files(fx->dir), 0);
	hfi1_stats_close(NULL);
}

static void test_keep(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats_file copy;
	struct hfi1_stats *s;
	char path[PATH_MAX];

	setenv("HFI1_STATS_KEEP", "1", 1);
	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	snprintf(path, sizeof(path), "%s", hfi1_stats_path(s));
	atomic_store(&hfi1_stats_counters(s)->misses, 42);
	hfi1_stats_close(s);

	assert_int_equal(count_files(fx->dir), 1);
	read_file(path, &copy);
	assert_int_equal(copy.closed, 1);
	assert_int_equal(copy.counters.misses, 42);
}

static void test_disabled(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_mrc_limits limits = { .enabled = true, .max_entries = 5 };
	struct hfi1_stats *s1, *s2;
	struct log_capture lc = {};

	setenv("HFI1_STATS", "0", 1);
	s1 = hfi1_stats_open("hfi1_0", capture_log, &lc);
	s2 = hfi1_stats_open("hfi1_0", capture_log, &lc);
	assert_non_null(s1);
	assert_non_null(s2);
	assert_null(hfi1_stats_path(s1));
	assert_int_equal(count_files(fx->dir), 0);
	/* The counters are usable, and each context has its own. */
	assert_ptr_not_equal(hfi1_stats_counters(s1), hfi1_stats_counters(s2));
	assert_true(hfi1_stats_ctx_num(s1) != hfi1_stats_ctx_num(s2));
	atomic_store(&hfi1_stats_counters(s1)->hits, 1);
	assert_int_equal(atomic_load(&hfi1_stats_counters(s2)->hits), 0);
	hfi1_stats_set_limits(s1, &limits);
	/* Publishing nothing on request is not worth a warning. */
	assert_int_equal(lc.warnings, 0);
	hfi1_stats_close(s1);
	hfi1_stats_close(s2);
	assert_int_equal(count_files(fx->dir), 0);
}

static void test_bad_switch_value_warns(void **state)
{
	struct fixture *fx = *state;
	struct log_capture lc = {};
	struct hfi1_stats *s;

	setenv("HFI1_STATS", "yes", 1);
	s = hfi1_stats_open("hfi1_0", capture_log, &lc);
	assert_non_null(s);
	assert_int_equal(lc.warnings, 1);
	assert_non_null(strstr(lc.last, "HFI1_STATS=yes"));
	/* The default, publishing, holds. */
	assert_non_null(hfi1_stats_path(s));
	assert_int_equal(count_files(fx->dir), 1);
	hfi1_stats_close(s);
}

/*
 * Unusable directories for root as for anyone: one that does not exist
 * and one that is a regular file. The first failure of the process is
 * logged, later ones are not; the counters work either way.
 */
static void test_unwritable_dir_falls_back(void **state)
{
	struct fixture *fx = *state;
	struct log_capture lc = {};
	struct hfi1_stats *s1, *s2;
	char file[PATH_MAX];
	int fd;

	setenv("HFI1_STATS_DIR", "/nonexistent/libhfi1-stats", 1);
	s1 = hfi1_stats_open("hfi1_0", capture_log, &lc);
	assert_non_null(s1);
	assert_null(hfi1_stats_path(s1));
	assert_int_equal(lc.warnings, 1);
	assert_non_null(strstr(lc.last, "/nonexistent/libhfi1-stats"));
	atomic_store(&hfi1_stats_counters(s1)->hits, 3);

	snprintf(file, sizeof(file), "%s/plain", fx->dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	setenv("HFI1_STATS_DIR", file, 1);
	s2 = hfi1_stats_open("hfi1_0", capture_log, &lc);
	assert_non_null(s2);
	assert_null(hfi1_stats_path(s2));
	assert_int_equal(lc.warnings, 1);
	assert_int_equal(count_files(fx->dir), 1);
	hfi1_stats_close(s1);
	hfi1_stats_close(s2);
}

/* A name already taken (a kept file of an earlier image with this pid,
 * or anything else) is neither reused nor followed: the next is taken. */
static void test_taken_name_skipped(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats *s1, *s2;
	char taken[PATH_MAX], target[PATH_MAX];
	uint64_t n;
	int fd;

	s1 = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s1);
	n = hfi1_stats_ctx_num(s1);
	snprintf(taken, sizeof(taken), "%s/libhfi1.%d.%llu.stats", fx->dir,
		 (int)getpid(), (unsigned long long)n + 1);
	fd = open(taken, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	snprintf(taken, sizeof(taken), "%s/libhfi1.%d.%llu.stats", fx->dir,
		 (int)getpid(), (unsigned long long)n + 2);
	snprintf(target, sizeof(target), "%s/target", fx->dir);
	assert_int_equal(symlink(target, taken), 0);

	s2 = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s2);
	assert_int_equal(hfi1_stats_ctx_num(s2), n + 3);
	assert_int_equal(access(target, F_OK), -1);
	hfi1_stats_close(s1);
	hfi1_stats_close(s2);
	/* The two strangers stay. */
	assert_int_equal(count_files(fx->dir), 2);
}

/*
 * A name another user's file holds (anyone may make files in /dev/shm,
 * under names they can predict): the context takes a random one of its
 * own, new and 0600, keeps its number, and logs where it went. Root only:
 * the file must belong to someone else.
 */
static void test_name_taken_by_another_user(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats_file copy;
	struct log_capture lc = {};
	char taken[PATH_MAX], want[PATH_MAX + 128];
	struct hfi1_stats *s1, *s2;
	const char *path, *tag;
	struct stat st;
	uint64_t n;
	int fd;

	if (geteuid() != 0)
		skip();
	s1 = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s1);
	n = hfi1_stats_ctx_num(s1) + 1;
	snprintf(taken, sizeof(taken), "%s/libhfi1.%d.%llu.stats", fx->dir,
		 (int)getpid(), (unsigned long long)n);
	fd = open(taken, O_CREAT | O_EXCL | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchown(fd, 65534, 65534), 0);
	close(fd);

	s2 = hfi1_stats_open("hfi1_0", capture_log, &lc);
	assert_non_null(s2);
	assert_int_equal(hfi1_stats_ctx_num(s2), n);
	path = hfi1_stats_path(s2);
	assert_non_null(path);
	/* <dir>/libhfi1.<pid>.<n>.<16 hex digits>.stats */
	assert_int_equal(strncmp(path, taken, strlen(taken) - 5), 0);
	tag = path + strlen(taken) - 5;
	assert_int_equal(strspn(tag, "0123456789abcdef"), HFI1_STATS_TAG_LEN);
	assert_string_equal(tag + HFI1_STATS_TAG_LEN, ".stats");
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	read_file(path, &copy);
	assert_int_equal(copy.pid, getpid());
	assert_int_equal(copy.ctx_num, n);

	assert_int_equal(lc.warnings, 1);
	snprintf(
		want, sizeof(want),
		"%s belongs to uid 65534, not to this process: its MR cache counters are in %s",
		taken, path);
	assert_string_equal(lc.last, want);

	hfi1_stats_close(s2);
	hfi1_stats_close(s1);
	/* Only the stranger stays, untouched. */
	assert_int_equal(count_files(fx->dir), 1);
	assert_int_equal(lstat(taken, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_size, 0);
}

/* A pid that ran and is gone: a child's, reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return pid;
}

/* @dir/libhfi1.<pid>.<n>.stats: a whole file that says @pid, @n and
 * @start_time, owned by @uid. */
static void plant(const char *dir, pid_t pid, uint64_t n, uint64_t start_time,
		  uid_t uid)
{
	struct hfi1_stats_file f = { .version = HFI1_STATS_VERSION,
				     .size = sizeof(f),
				     .pid = pid,
				     .start_time = start_time,
				     .ctx_num = n,
				     .device = "hfi1_0" };
	char path[PATH_MAX];
	int fd;

	memcpy(f.magic, HFI1_STATS_MAGIC, sizeof(f.magic));
	snprintf(path, sizeof(path), "%s/libhfi1.%d.%llu.stats", dir, (int)pid,
		 (unsigned long long)n);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, &f, sizeof(f)), sizeof(f));
	if (uid != geteuid())
		assert_int_equal(fchown(fd, uid, uid), 0);
	close(fd);
}

static bool exists(const char *dir, pid_t pid, uint64_t n)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/libhfi1.%d.%llu.stats", dir, (int)pid,
		 (unsigned long long)n);
	return !lstat(path, &st);
}

/*
 * A context's open removes the files of this user's processes that are
 * gone: whole or half made when the pid is gone, a whole one that says
 * another start time than the process now at its pid (its user's). It
 * leaves a live process's file, one without a start time, anything but a
 * regular file, and (as root) another user's.
 */
static void test_open_removes_dead_files(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX], target[PATH_MAX];
	pid_t dead = dead_pid(), me = getpid();
	uint64_t start_time;
	struct hfi1_stats *s;
	int fd;

	assert_int_equal(hfi1_stats_pid_start_time(me, &start_time), 0);
	plant(fx->dir, dead, 0, start_time, geteuid());
	snprintf(path, sizeof(path), "%s/libhfi1.%d.1.stats", fx->dir,
		 (int)dead);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600); /* half made */
	assert_true(fd >= 0);
	close(fd);
	plant(fx->dir, me, 900, start_time + 1, geteuid()); /* pid reused */
	plant(fx->dir, me, 901, start_time, geteuid()); /* a live one */
	plant(fx->dir, me, 902, 0, geteuid()); /* cannot be told */
	snprintf(target, sizeof(target), "%s/target", fx->dir);
	fd = open(target, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/libhfi1.%d.2.stats", fx->dir,
		 (int)dead);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/libhfi1.%d.3.stats", fx->dir,
		 (int)dead);
	assert_int_equal(mkfifo(path, 0600), 0);
	if (geteuid() == 0) {
		plant(fx->dir, dead, 4, 1, 65534);
		plant(fx->dir, me, 903, start_time + 1, 65534);
	}

	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	assert_false(exists(fx->dir, dead, 0));
	assert_false(exists(fx->dir, dead, 1));
	assert_false(exists(fx->dir, me, 900));
	assert_true(exists(fx->dir, me, 901));
	assert_true(exists(fx->dir, me, 902));
	assert_true(exists(fx->dir, dead, 2));
	assert_int_equal(access(target, F_OK), 0);
	assert_true(exists(fx->dir, dead, 3));
	if (geteuid() == 0) {
		assert_true(exists(fx->dir, dead, 4));
		assert_true(exists(fx->dir, me, 903));
	}
	hfi1_stats_close(s);
}

/* Files kept on purpose stay: hfi1_mrstat -- CMD reads them after. */
static void test_open_keep_removes_nothing(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats *s;
	pid_t dead = dead_pid();

	plant(fx->dir, dead, 0, 1, geteuid());
	setenv("HFI1_STATS_KEEP", "1", 1);
	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	assert_true(exists(fx->dir, dead, 0));
	hfi1_stats_close(s);
	unsetenv("HFI1_STATS_KEEP");
	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	assert_false(exists(fx->dir, dead, 0));
	hfi1_stats_close(s);
}

/* An open removes a bounded number; the next ones take the rest. */
static void test_open_removes_a_bounded_number(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats *s;
	pid_t dead = dead_pid();
	int i;

	for (i = 0; i < 100; i++)
		plant(fx->dir, dead, i, 1, geteuid());
	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	/* 64 of them removed, and this context's file made. */
	assert_int_equal(count_files(fx->dir), 100 - 64 + 1);
	hfi1_stats_close(s);
	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	assert_int_equal(count_files(fx->dir), 1);
	hfi1_stats_close(s);
}

/*
 * The child checks without cmocka (it would unwind into the child's copy
 * of the runner) and answers through its exit status: the step that
 * failed, 0 when none did.
 */
static int child_run(const char *parent_path)
{
	struct hfi1_stats *mine;
	char mine_prefix[64];

	if (access(parent_path, F_OK))
		return 1;
	mine = hfi1_stats_open("hfi1_0", NULL, NULL);
	if (!mine || !hfi1_stats_path(mine))
		return 2;
	snprintf(mine_prefix, sizeof(mine_prefix), "/libhfi1.%d.",
		 (int)getpid());
	if (!strstr(hfi1_stats_path(mine), mine_prefix))
		return 3;
	hfi1_stats_close(mine);
	return 0;
}

static void test_fork_child_close(void **state)
{
	struct fixture *fx = *state;
	struct hfi1_stats_file copy;
	struct hfi1_stats *s;
	char path[PATH_MAX];
	int status;
	pid_t pid;

	s = hfi1_stats_open("hfi1_0", NULL, NULL);
	assert_non_null(s);
	snprintf(path, sizeof(path), "%s", hfi1_stats_path(s));
	atomic_store(&hfi1_stats_counters(s)->hits, 10);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = child_run(path);

		/* The child's copy of the parent's context. */
		hfi1_stats_close(s);
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Still the parent's, still open; the child's own file is gone. */
	assert_int_equal(count_files(fx->dir), 1);
	read_file(path, &copy);
	assert_int_equal(copy.closed, 0);
	assert_int_equal(copy.pid, getpid());
	assert_int_equal(copy.counters.hits, 10);
	hfi1_stats_close(s);
	assert_int_equal(count_files(fx->dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_time_of_other_pid,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_name_truncated,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_seen_by_reader,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_unlinks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_switch_value_warns,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_dir_falls_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_taken_name_skipped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_name_taken_by_another_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_removes_dead_files,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_keep_removes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_open_removes_a_bounded_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_close, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
