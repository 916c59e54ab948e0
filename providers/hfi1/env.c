// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The provider's environment variables (env.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

/* VERBS_LOG_WARN: this unit knows no ibverbs header. */
#define ENV_LOG_WARN 2

/* HFI1_MR_CACHE_MAX_ENTRIES's default. */
#define ENV_MR_CACHE_MAX_ENTRIES 1024

/* The MR cache's limits */

static int parse_size(const char *s, uint64_t *val)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!*s || *s == '-')
		return EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return EINVAL;
	*val = (uint64_t)v << shift;
	return 0;
}

static void env_warn(void (*log)(void *arg, int level, const char *msg),
		     void *arg, const char *name, const char *val)
{
	char msg[256];

	if (!log)
		return;
	snprintf(msg, sizeof(msg), "hfi1: ignoring %s=\"%s\": not %s", name,
		 val,
		 strcmp(name, "HFI1_MR_CACHE") ?
			 "a number with an optional K, M or G suffix" :
			 "0 or 1");
	log(arg, ENV_LOG_WARN, msg);
}

void hfi1_env_mr_cache_limits(struct hfi1_mrc_limits *limits,
			      void (*log)(void *arg, int level,
					  const char *msg),
			      void *arg)
{
	const char *s;
	uint64_t v;

	limits->enabled = true;
	limits->max_entries = ENV_MR_CACHE_MAX_ENTRIES;
	limits->max_bytes = 0;

	s = getenv("HFI1_MR_CACHE");
	if (s) {
		if (!strcmp(s, "0"))
			limits->enabled = false;
		else if (!strcmp(s, "1"))
			limits->enabled = true;
		else
			env_warn(log, arg, "HFI1_MR_CACHE", s);
	}
	s = getenv("HFI1_MR_CACHE_MAX_ENTRIES");
	if (s) {
		if (!parse_size(s, &v))
			limits->max_entries = v;
		else
			env_warn(log, arg, "HFI1_MR_CACHE_MAX_ENTRIES", s);
	}
	s = getenv("HFI1_MR_CACHE_MAX_BYTES");
	if (s) {
		if (!parse_size(s, &v))
			limits->max_bytes = v;
		else
			env_warn(log, arg, "HFI1_MR_CACHE_MAX_BYTES", s);
	}
}
