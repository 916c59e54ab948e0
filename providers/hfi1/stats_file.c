// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What the per-context stats file's writer (stats.c) and its readers
 * (hfi1_mrstat) share beyond the layout of hfi1_stats_file.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfi1_stats_file.h"

int hfi1_stats_pid_start_time(long pid, uint64_t *start_time)
{
	char path[64], buf[1024], *p, *end;
	unsigned long long v;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int err = errno;

		close(fd);
		return err;
	}
	close(fd);
	buf[n] = 0;
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
