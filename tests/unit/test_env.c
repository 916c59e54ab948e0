// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The provider's environment variables (providers/hfi1/env.c): the MR
 * cache's limits from HFI1_MR_CACHE, HFI1_MR_CACHE_MAX_ENTRIES and
 * HFI1_MR_CACHE_MAX_BYTES, their defaults, size suffixes, and malformed
 * values ignored with a warning each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "env.h"

/* What the log callback saw. */
struct logs {
	unsigned int logs;
	char last_log[512];
};

static void cb_log(void *arg, int level, const char *msg)
{
	struct logs *f = arg;

	(void)level;
	f->logs++;
	snprintf(f->last_log, sizeof(f->last_log), "%s", msg);
}

static void test_mr_cache_limits(void **state)
{
	struct logs logs = { 0 }, *f = &logs;
	struct hfi1_mrc_limits l;

	unsetenv("HFI1_MR_CACHE");
	unsetenv("HFI1_MR_CACHE_MAX_ENTRIES");
	unsetenv("HFI1_MR_CACHE_MAX_BYTES");
	hfi1_env_mr_cache_limits(&l, cb_log, f);
	assert_true(l.enabled);
	assert_int_equal(l.max_entries, 1024);
	assert_int_equal(l.max_bytes, 0);
	assert_int_equal(f->logs, 0);

	setenv("HFI1_MR_CACHE", "0", 1);
	setenv("HFI1_MR_CACHE_MAX_ENTRIES", "77", 1);
	setenv("HFI1_MR_CACHE_MAX_BYTES", "3M", 1);
	hfi1_env_mr_cache_limits(&l, cb_log, f);
	assert_false(l.enabled);
	assert_int_equal(l.max_entries, 77);
	assert_int_equal(l.max_bytes, 3 << 20);
	setenv("HFI1_MR_CACHE_MAX_BYTES", "2g", 1);
	hfi1_env_mr_cache_limits(&l, cb_log, f);
	assert_int_equal(l.max_bytes, 2ULL << 30);
	assert_int_equal(f->logs, 0);

	/* Malformed: ignored, one warning each. */
	setenv("HFI1_MR_CACHE", "yes", 1);
	setenv("HFI1_MR_CACHE_MAX_ENTRIES", "-1", 1);
	setenv("HFI1_MR_CACHE_MAX_BYTES", "12Q", 1);
	hfi1_env_mr_cache_limits(&l, cb_log, f);
	assert_true(l.enabled);
	assert_int_equal(l.max_entries, 1024);
	assert_int_equal(l.max_bytes, 0);
	assert_int_equal(f->logs, 3);
	assert_non_null(strstr(f->last_log, "HFI1_MR_CACHE_MAX_BYTES"));
	unsetenv("HFI1_MR_CACHE");
	unsetenv("HFI1_MR_CACHE_MAX_ENTRIES");
	unsetenv("HFI1_MR_CACHE_MAX_BYTES");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mr_cache_limits),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("env", tests, NULL, NULL);
}
