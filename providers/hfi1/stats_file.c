// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What the per-context stats file's writer (stats.c) and its readers
 * (hfi1_mrstat) share beyond the layout of hfi1_stats_file.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hfi1_stats_file.h"

/* The start of /proc/<pid>/<file>, NUL-terminated, into @buf; 0 or errno. */
static int read_proc(long pid, const char *file, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = read(fd, buf, size - 1);
	err = errno;
	close(fd);
	if (n < 0)
		return err;
	buf[n] = 0;
	return 0;
}

int hfi1_stats_pid_start_time(long pid, uint64_t *start_time)
{
	char buf[1024], *p, *end;
	unsigned long long v;
	int err, i;

	err = read_proc(pid, "stat", buf, sizeof(buf));
	if (err)
		return err;
	/* The command name (field 2) may hold spaces and ')': skip past
	 * its last ')'. Field 3 follows it. */
	p = strrchr(buf, ')');
	if (!p)
		return EINVAL;
	p++;
	for (i = 3; i < 22; i++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return EINVAL;
	}
	errno = 0;
	v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1 || (*end != ' ' && *end != '\n' && *end))
		return EINVAL;
	*start_time = v;
	return 0;
}

bool hfi1_stats_parse_name(const char *name, long *pid, uint64_t *n)
{
	size_t len = strlen(name), plen = strlen(HFI1_STATS_NAME_PREFIX),
	       slen = strlen(HFI1_STATS_NAME_SUFFIX);
	unsigned long long v;
	const char *p;
	char *end;

	if (len <= plen + slen || strncmp(name, HFI1_STATS_NAME_PREFIX, plen) ||
	    strcmp(name + len - slen, HFI1_STATS_NAME_SUFFIX))
		return false;
	p = name + plen;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || *end != '.' || v == 0 || v > INT_MAX)
		return false;
	*pid = v;
	p = end + 1;
	if (*p < '0' || *p > '9')
		return false;
	v = strtoull(p, &end, 10);
	if (errno)
		return false;
	p = end;
	/* A tag: the writer's own name, when the first was taken. */
	if (*p == '.' && strcmp(p, HFI1_STATS_NAME_SUFFIX)) {
		if (strspn(p + 1, "0123456789abcdef") != HFI1_STATS_TAG_LEN)
			return false;
		p += 1 + HFI1_STATS_TAG_LEN;
	}
	if (strcmp(p, HFI1_STATS_NAME_SUFFIX))
		return false;
	*n = v;
	return true;
}

int hfi1_stats_read(int dirfd, const char *name, struct hfi1_stats_file *f,
		    struct stat *st, char *why, size_t whylen)
{
	ssize_t got;
	uint64_t n;
	long pid;
	int fd, err;

	if (!hfi1_stats_parse_name(name, &pid, &n)) {
		snprintf(why, whylen,
			 "not a libhfi1.<pid>.<n>[.<tag>].stats name");
		return EINVAL;
	}
	/* O_NONBLOCK: a FIFO under the name must not hang us. */
	fd = openat(dirfd, name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		snprintf(why, whylen, "%s", strerror(err));
		return err;
	}
	if (fstat(fd, st)) {
		snprintf(why, whylen, "%s", strerror(errno));
		close(fd);
		return EIO;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "not a regular file");
		close(fd);
		return EINVAL;
	}
	got = pread(fd, f, sizeof(*f), 0);
	close(fd);
	if (got < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return EIO;
	}
	/*
	 * The version before the length: the file of a libhfi1 whose layout
	 * is shorter than ours says so, not that it is truncated.
	 */
	if ((size_t)got < offsetof(struct hfi1_stats_file, pid)) {
		snprintf(why, whylen, "truncated (%zd of %zu bytes)", got,
			 sizeof(*f));
		return EINVAL;
	}
	if (memcmp(f->magic, HFI1_STATS_MAGIC, sizeof(f->magic))) {
		snprintf(why, whylen, "bad magic");
		return EINVAL;
	}
	if (f->version != HFI1_STATS_VERSION || f->size != sizeof(*f)) {
		snprintf(why, whylen,
			 "version %" PRIu32 ", size %" PRIu32
			 ": this tool reads version %d, size %zu",
			 f->version, f->size, HFI1_STATS_VERSION, sizeof(*f));
		return EINVAL;
	}
	if ((size_t)got < sizeof(*f)) {
		snprintf(why, whylen, "truncated (%zd of %zu bytes)", got,
			 sizeof(*f));
		return EINVAL;
	}
	/* Never trust the header's pid beyond the name's: it goes to kill(). */
	if (f->pid != (uint64_t)pid || f->ctx_num != n) {
		snprintf(why, whylen,
			 "header (pid %" PRIu64 ", context %" PRIu64
			 ") does not match the name",
			 f->pid, f->ctx_num);
		return EINVAL;
	}
	if (!memchr(f->device, 0, sizeof(f->device))) {
		snprintf(why, whylen, "device name not terminated");
		return EINVAL;
	}
	return 0;
}

bool hfi1_stats_pid_alive(long pid, uint64_t start_time)
{
	uint64_t now;

	if (pid <= 0 || pid > INT_MAX)
		return false;
	if (kill(pid, 0) && errno != EPERM)
		return false;
	if (!start_time)
		return true;
	if (hfi1_stats_pid_start_time(pid, &now))
		return false;
	return now == start_time;
}

int hfi1_stats_pid_uid(long pid, uid_t *uid)
{
	char buf[4096], *p;
	unsigned int real, eff;
	int err;

	err = read_proc(pid, "status", buf, sizeof(buf));
	if (err)
		return err;
	/* "Uid:\t<real>\t<effective>\t<saved>\t<fs>", after "Name:", which
	 * cannot hold a newline (the kernel escapes it). */
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%u %u", &real, &eff) != 2)
		return EINVAL;
	*uid = eff;
	return 0;
}

bool hfi1_stats_stale(int dirfd, const char *name, uid_t owner)
{
	struct hfi1_stats_file f;
	struct stat st;
	uint64_t n;
	uid_t uid;
	long pid;

	if (!hfi1_stats_parse_name(name, &pid, &n))
		return false;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(st.st_mode) || (owner != (uid_t)-1 && st.st_uid != owner))
		return false;
	/* Whatever it holds: a crash between create and fill leaves zeros. */
	if (!hfi1_stats_pid_alive(pid, 0))
		return true;
	if (hfi1_stats_read(dirfd, name, &f, &st, NULL, 0) ||
	    (owner != (uid_t)-1 && st.st_uid != owner))
		return false;
	/* Without a start time it cannot be told from the live process's. */
	if (!f.start_time || hfi1_stats_pid_alive(pid, f.start_time))
		return false;
	return !hfi1_stats_pid_uid(pid, &uid) && uid == st.st_uid;
}
