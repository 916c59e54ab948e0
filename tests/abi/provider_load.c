// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * provider_load PROVIDER.so load|refuse
 *
 * dlopen()s the provider the way libibverbs' load_driver() does (RTLD_NOW)
 * and checks the outcome: "load" with the real libibverbs, "refuse" when
 * LD_LIBRARY_PATH puts a libibverbs with another private ABI first, in
 * which case the loader must name the version the provider needs.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *err;
	void *handle;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PROVIDER.so load|refuse\n", argv[0]);
		return 2;
	}
	handle = dlopen(argv[1], RTLD_NOW);
	err = handle ? NULL : dlerror();
	if (!strcmp(argv[2], "load")) {
		if (!handle) {
			printf("FAIL: the provider did not load: %s\n", err);
			return 1;
		}
		printf("ok: the provider loads into this libibverbs\n");
		return 0;
	}
	if (handle) {
		printf("FAIL: the provider loaded into a foreign libibverbs\n");
		return 1;
	}
	if (!strstr(err, "IBVERBS_PRIVATE_34")) {
		printf("FAIL: refused, but not for the private ABI: %s\n", err);
		return 1;
	}
	printf("ok: refused: %s\n", err);
	return 0;
}
