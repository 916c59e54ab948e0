// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The soft HFI's expected-receive ABI, rule by rule, as hfi1's
 * user_exp_rcv.c has it: the commands, the tidinfo encoding, the page-set
 * split, the groups of 8, partial success and every errno.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "softhfi.h"

#define MIB (1024UL * 1024)
#define TID_LEN(t) HFI1_TID_GET(t, LEN)
#define TID_CTRL(t) HFI1_TID_GET(t, CTRL)
#define TID_IDX(t) HFI1_TID_GET(t, IDX)

static size_t page;

struct fixture {
	struct hfi1_drv *drv;
	char *arena; /* 2 MiB aligned */
	size_t arena_len;
	char *map; /* what to munmap */
	size_t map_len;
	__u32 tids[SOFTHFI_MAX_EXPECTED];
};

/* An arena of @len bytes, 2 MiB aligned so page-set cuts are known. */
static void map_arena(struct fixture *f, size_t len)
{
	size_t align = 2 * MIB;

	f->map_len = len + align;
	f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(f->map, MAP_FAILED);
	f->arena = (char *)(((uintptr_t)f->map + align - 1) & ~(align - 1));
	f->arena_len = len;
	memset(f->arena, 0, len);
}

static int open_with(void **state, unsigned int expected_count,
		     unsigned int contig_pages)
{
	struct softhfi_params params;
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	softhfi_default_params(&params);
	params.expected_count = expected_count;
	params.contig_pages = contig_pages;
	f->drv = softhfi_open(&params);
	if (!f->drv) {
		free(f);
		return -1;
	}
	map_arena(f, 16 * MIB);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return open_with(state, SOFTHFI_MAX_EXPECTED, SOFTHFI_MAX_RUN_PAGES);
}

/* 16 entries, every page its own entry: the limits are easy to reach. */
static int setup_small(void **state)
{
	return open_with(state, 16, 1);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct softhfi_stats st;

	softhfi_get_stats(f->drv, &st);
	hfi1_drv_close(f->drv);
	munmap(f->map, f->map_len);
	free(f);
	assert_int_equal(softhfi_process_pinned_pages(), 0);
	return 0;
}

/* TID_UPDATE; returns 0 or the errno. */
static int tid_update(struct fixture *f, void *vaddr, size_t len,
		      __u32 *tidlist, unsigned int *tidcnt, size_t *mapped)
{
	struct hfi1_tid_info ti = {
		.vaddr = (uintptr_t)vaddr,
		.length = len,
		.tidlist = (uintptr_t)tidlist,
	};

	if (hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_UPDATE, &ti))
		return errno;
	if (tidcnt)
		*tidcnt = ti.tidcnt;
	if (mapped)
		*mapped = ti.length;
	return 0;
}

static int tid_free(struct fixture *f, const __u32 *tidlist, unsigned int cnt,
		    unsigned int *freed)
{
	struct hfi1_tid_info ti = {
		.tidlist = (uintptr_t)tidlist,
		.tidcnt = cnt,
	};
	int ret;

	ret = hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_FREE, &ti);
	if (freed)
		*freed = ti.tidcnt;
	return ret ? errno : 0;
}

static unsigned int rcventry(__u32 tid)
{
	return TID_IDX(tid) * 2 + TID_CTRL(tid) - 1;
}

static void test_context_info(void **state)
{
	struct fixture *f = *state;
	struct hfi1_user_info uinfo = {
		.userversion = HFI1_USER_SWMAJOR << HFI1_SWMAJOR_SHIFT,
	};
	struct hfi1_ctxt_info cinfo;
	struct hfi1_base_info binfo;
	int vers = 0;

	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_GET_VERS, &vers), 0);
	assert_int_equal(vers >> HFI1_SWMAJOR_SHIFT, HFI1_USER_SWMAJOR);
	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_CTXT_INFO, &cinfo),
			 0);
	assert_int_equal(cinfo.rcvtids, SOFTHFI_MAX_EXPECTED);
	assert_int_equal(f->drv->ctxt_info.rcvtids, SOFTHFI_MAX_EXPECTED);
	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_USER_INFO, &binfo),
			 0);
	assert_int_equal(binfo.sw_version, (unsigned int)vers);
	assert_non_null(f->drv->events);
	assert_int_equal(*f->drv->events, 0);

	/* A context is assigned once. */
	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_ASSIGN_CTXT, &uinfo),
			 -1);
	assert_int_equal(errno, EINVAL);
	/* Commands the soft HFI does not serve, and garbage. */
	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_CREDIT_UPD, NULL),
			 -1);
	assert_int_equal(errno, ENOTTY);
	assert_int_equal(hfi1_drv_ioctl(f->drv, 0xdeadbeef, &vers), -1);
	assert_int_equal(errno, ENOTTY);
	/* A bad pointer is EFAULT, as copy_to_user() makes it. */
	assert_int_equal(
		hfi1_drv_ioctl(f->drv, HFI1_IOCTL_CTXT_INFO, (void *)8), -1);
	assert_int_equal(errno, EFAULT);
}

static void test_bad_params(void **state)
{
	struct softhfi_params params;

	softhfi_default_params(&params);
	params.expected_count = 12; /* not a multiple of 8 */
	assert_null(softhfi_open(&params));
	assert_int_equal(errno, EINVAL);
	softhfi_default_params(&params);
	params.expected_count = 4096;
	assert_null(softhfi_open(&params));
	assert_int_equal(errno, EINVAL);
	softhfi_default_params(&params);
	params.contig_pages = 513;
	assert_null(softhfi_open(&params));
	assert_int_equal(errno, EINVAL);
}

/* LEN 10:0, CTRL 21:20 (1 even, 2 odd), IDX 31:22 (the pair). */
static void test_tidinfo_encoding(void **state)
{
	struct fixture *f = *state;
	unsigned int cnt = 0, i;
	size_t mapped;

	for (i = 0; i < 3; i++) {
		assert_int_equal(tid_update(f, f->arena + i * 2 * MIB, MIB,
					    &f->tids[i], &cnt, &mapped),
				 0);
		assert_int_equal(cnt, 1);
		assert_int_equal(mapped, MIB);
		assert_int_equal(TID_LEN(f->tids[i]), MIB / page);
	}
	assert_int_equal(f->tids[0], (0u << 22) | (1u << 20) | (MIB / page));
	assert_int_equal(f->tids[1], (0u << 22) | (2u << 20) | (MIB / page));
	assert_int_equal(f->tids[2], (1u << 22) | (1u << 20) | (MIB / page));
	assert_int_equal(tid_free(f, f->tids, 3, &cnt), 0);
	assert_int_equal(cnt, 3);
}

/* Power-of-two pieces, at most 2 MiB, cut where contiguity ends. */
static void test_page_set_split(void **state)
{
	struct fixture *f = *state;
	unsigned int cnt = 0, i;
	size_t mapped;

	/* 7 pages: 4 + 2 + 1. */
	assert_int_equal(
		tid_update(f, f->arena, 7 * page, f->tids, &cnt, &mapped), 0);
	assert_int_equal(cnt, 3);
	assert_int_equal(mapped, 7 * page);
	assert_int_equal(TID_LEN(f->tids[0]), 4);
	assert_int_equal(TID_LEN(f->tids[1]), 2);
	assert_int_equal(TID_LEN(f->tids[2]), 1);
	assert_int_equal(tid_free(f, f->tids, cnt, NULL), 0);

	/* 6 MiB from a 2 MiB boundary: three entries of 512 pages. */
	assert_int_equal(
		tid_update(f, f->arena, 6 * MIB, f->tids, &cnt, &mapped), 0);
	assert_int_equal(cnt, 3);
	for (i = 0; i < cnt; i++)
		assert_int_equal(TID_LEN(f->tids[i]), SOFTHFI_MAX_RUN_PAGES);
	assert_int_equal(tid_free(f, f->tids, cnt, NULL), 0);

	/* 2 MiB starting 1 MiB in: cut at the 2 MiB boundary. */
	assert_int_equal(
		tid_update(f, f->arena + MIB, 2 * MIB, f->tids, &cnt, &mapped),
		0);
	assert_int_equal(cnt, 2);
	assert_int_equal(TID_LEN(f->tids[0]), MIB / page);
	assert_int_equal(TID_LEN(f->tids[1]), MIB / page);
	assert_int_equal(tid_free(f, f->tids, cnt, NULL), 0);

	/* A length that is not a whole page covers the last page too. */
	assert_int_equal(
		tid_update(f, f->arena, page + 1, f->tids, &cnt, &mapped), 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(mapped, 2 * page);
	assert_int_equal(tid_free(f, f->tids, cnt, NULL), 0);
}

static void test_update_errors(void **state)
{
	struct fixture *f = *state;
	unsigned int cnt = 0;
	struct softhfi_stats st;
	void *ro;

	assert_int_equal(tid_update(f, f->arena + 1, page, f->tids, NULL, NULL),
			 EINVAL);
	assert_int_equal(tid_update(f, f->arena, 0, f->tids, NULL, NULL),
			 EINVAL);
	/* More pages than the context has entries. */
	assert_int_equal(tid_update(f, f->arena,
				    (SOFTHFI_MAX_EXPECTED + 1) * page, f->tids,
				    NULL, NULL),
			 EINVAL);
	/* Memory that is not mapped, or not writable by the adapter. */
	assert_int_equal(tid_update(f, (void *)page, page, f->tids, NULL, NULL),
			 EFAULT);
	ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(ro, MAP_FAILED);
	assert_int_equal(tid_update(f, ro, page, f->tids, NULL, NULL), EFAULT);
	munmap(ro, page);
	/* Wrapping around the address space. */
	assert_int_equal(tid_update(f, (void *)(UINTPTR_MAX & ~(page - 1)),
				    2 * page, f->tids, NULL, NULL),
			 EFAULT);
	/* A tidlist that cannot be written undoes the programming. */
	assert_int_equal(tid_update(f, f->arena, page, (__u32 *)8, &cnt, NULL),
			 EFAULT);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.pinned_pages, 0);
	assert_int_equal(softhfi_process_pinned_pages(), 0);
}

/* Whole groups for whole multiples of 8, partly used groups after. */
static void test_groups_of_eight(void **state)
{
	struct fixture *f = *state;
	__u32 more[SOFTHFI_MAX_EXPECTED];
	unsigned int cnt = 0, i;

	/* Three single entries fill group 0 from its start. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(tid_update(f, f->arena + i * page, page,
					    &f->tids[i], &cnt, NULL),
				 0);
		assert_int_equal(rcventry(f->tids[i]), i);
	}
	/* Eight pieces take the next whole free group. */
	assert_int_equal(
		tid_update(f, f->arena + 2 * MIB, 8 * page, more, &cnt, NULL),
		0);
	assert_int_equal(cnt, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(rcventry(more[i]), 8 + i);
	assert_int_equal(tid_free(f, more, 8, NULL), 0);
	/* Fewer than eight go to the partly used group first. */
	assert_int_equal(
		tid_update(f, f->arena + 2 * MIB, 2 * page, more, &cnt, NULL),
		0);
	assert_int_equal(cnt, 2);
	assert_int_equal(rcventry(more[0]), 3);
	assert_int_equal(rcventry(more[1]), 4);
	assert_int_equal(tid_free(f, more, 2, NULL), 0);
	assert_int_equal(tid_free(f, f->tids, 3, NULL), 0);
}

/* The TID limit: partial success, then ENOSPC; TID_FREE gives back. */
static void test_partial_and_enospc(void **state)
{
	struct fixture *f = *state;
	__u32 more[16];
	unsigned int cnt = 0, freed = 0;
	size_t mapped;

	assert_int_equal(
		tid_update(f, f->arena, 12 * page, f->tids, &cnt, &mapped), 0);
	assert_int_equal(cnt, 12);
	assert_int_equal(mapped, 12 * page);
	/* Only 4 entries remain: partial success, the prefix mapped. */
	assert_int_equal(
		tid_update(f, f->arena + MIB, 8 * page, more, &cnt, &mapped),
		0);
	assert_int_equal(cnt, 4);
	assert_int_equal(mapped, 4 * page);
	assert_int_equal(
		tid_update(f, f->arena + 2 * MIB, page, more + 4, &cnt, NULL),
		ENOSPC);
	/* More pages than expected_count is EINVAL before anything else. */
	assert_int_equal(tid_update(f, f->arena, 17 * page, more, NULL, NULL),
			 EINVAL);

	assert_int_equal(tid_free(f, more, 4, &freed), 0);
	assert_int_equal(freed, 4);
	assert_int_equal(
		tid_update(f, f->arena + 2 * MIB, page, more, &cnt, NULL), 0);
	assert_int_equal(tid_free(f, more, 1, NULL), 0);
	assert_int_equal(tid_free(f, f->tids, 12, NULL), 0);
}

static void test_free_errors(void **state)
{
	struct fixture *f = *state;
	__u32 bad[2];
	unsigned int cnt = 0, freed = 99;

	assert_int_equal(tid_update(f, f->arena, 2 * page, f->tids, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 2);

	/* More than the context has handed out. */
	assert_int_equal(tid_free(f, f->tids, 3, NULL), EINVAL);
	/* CTRL 0 and 3 are not entries. */
	bad[0] = f->tids[0] & ~(3u << 20);
	assert_int_equal(tid_free(f, bad, 1, NULL), EINVAL);
	bad[0] = f->tids[0] | (3u << 20);
	assert_int_equal(tid_free(f, bad, 1, NULL), EINVAL);
	/* A pair past expected_count. */
	bad[0] = (8u << 22) | (1u << 20) | 1;
	assert_int_equal(tid_free(f, bad, 1, NULL), EINVAL);
	/* An entry of this context that is not programmed. */
	bad[0] = (3u << 22) | (1u << 20) | 1;
	assert_int_equal(tid_free(f, bad, 1, NULL), EBADF);
	/* A list that cannot be read. */
	assert_int_equal(tid_free(f, (__u32 *)8, 1, NULL), EFAULT);

	/* It stops at the first bad entry; the ones before are freed. */
	bad[0] = f->tids[0];
	bad[1] = 0;
	assert_int_equal(tid_free(f, bad, 2, &freed), EINVAL);
	assert_int_equal(freed, 2); /* not written back on error */
	assert_int_equal(tid_free(f, &f->tids[0], 1, NULL), EBADF);
	assert_int_equal(tid_free(f, &f->tids[1], 1, &freed), 0);
	assert_int_equal(freed, 1);
	assert_int_equal(tid_free(f, &f->tids[1], 1, NULL), EINVAL);
}

static void test_get_vers_efault(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_GET_VERS, NULL), -1);
	assert_int_equal(errno, EFAULT);
}

static bool wait_event(struct fixture *f)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		if (__atomic_load_n(f->drv->events, __ATOMIC_ACQUIRE) &
		    HFI1_EVENT_TID_MMU_NOTIFY)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < 5);
	return false;
}

/* munmap: invalidated at once, queued, event raised, freed on TID_FREE. */
static void test_invalidate_on_munmap(void **state)
{
	struct fixture *f = *state;
	struct hfi1_tid_info inval = { 0 };
	__u32 queued[SOFTHFI_MAX_EXPECTED];
	struct softhfi_stats st;
	unsigned long ack = HFI1_EVENT_TID_MMU_NOTIFY;
	unsigned int cnt = 0;
	int sv[2];
	char *buf;

	buf = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(buf, MAP_FAILED);
	assert_int_equal(tid_update(f, buf, 4 * page, f->tids, &cnt, NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

	munmap(buf, 4 * page);
	/* Nothing lands in an invalidated entry, without waiting. */
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(hfi1_drv_place(f->drv, f->tids[0], 0, sv[0], 1), -1);
	assert_int_equal(errno, ESTALE);
	assert_true(wait_event(f));

	/* Acknowledging the bit does not lose the queued entry. */
	assert_int_equal(hfi1_drv_ioctl(f->drv, HFI1_IOCTL_ACK_EVENT, &ack), 0);
	assert_true(*f->drv->events & HFI1_EVENT_TID_MMU_NOTIFY);

	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_invalid, cnt);
	assert_int_equal(st.pinned_pages, 0);

	inval.tidlist = (uintptr_t)queued;
	assert_int_equal(
		hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_INVAL_READ, &inval), 0);
	assert_int_equal(inval.tidcnt, cnt);
	assert_memory_equal(queued, f->tids, cnt * sizeof(__u32));
	assert_false(*f->drv->events & HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(
		hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_INVAL_READ, &inval), 0);
	assert_int_equal(inval.tidcnt, 0);

	/* The slot is still taken until TID_FREE. */
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, cnt);
	assert_int_equal(tid_free(f, f->tids, cnt, NULL), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.tids_used, 0);
	assert_int_equal(st.tids_invalid, 0);
	close(sv[0]);
	close(sv[1]);
}

/* TID_INVAL_READ into a bad list is EFAULT and keeps the queue. */
static void test_inval_read_efault_keeps_queue(void **state)
{
	struct fixture *f = *state;
	struct hfi1_tid_info inval = { .tidlist = 8 };
	__u32 queued[SOFTHFI_MAX_EXPECTED];
	unsigned int cnt = 0;
	char *buf;

	buf = mmap(NULL, page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(buf, MAP_FAILED);
	assert_int_equal(tid_update(f, buf, page, f->tids, &cnt, NULL), 0);
	munmap(buf, page);
	assert_true(wait_event(f));
	assert_int_equal(
		hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_INVAL_READ, &inval), -1);
	assert_int_equal(errno, EFAULT);
	assert_true(*f->drv->events & HFI1_EVENT_TID_MMU_NOTIFY);
	inval.tidlist = (uintptr_t)queued;
	assert_int_equal(
		hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_INVAL_READ, &inval), 0);
	assert_int_equal(inval.tidcnt, 1);
	assert_int_equal(queued[0], f->tids[0]);
	/* Nothing queued: nothing is written to the list, however bad. */
	inval.tidlist = 0x8000000000000000ULL;
	assert_int_equal(
		hfi1_drv_ioctl(f->drv, HFI1_IOCTL_TID_INVAL_READ, &inval), 0);
	assert_int_equal(inval.tidcnt, 0);
	assert_int_equal(tid_free(f, f->tids, 1, NULL), 0);
}

/* Placement: bytes from a socket land in the entry at the offset. */
static void test_place(void **state)
{
	struct fixture *f = *state;
	char msg[3 * 4096];
	unsigned int cnt = 0, i;
	int sv[2];

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 7 + 1);
	assert_int_equal(tid_update(f, f->arena, 4 * page, f->tids, &cnt, NULL),
			 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], msg, sizeof(msg)), sizeof(msg));
	assert_int_equal(
		hfi1_drv_place(f->drv, f->tids[0], 100, sv[0], sizeof(msg)),
		sizeof(msg));
	assert_memory_equal(f->arena + 100, msg, sizeof(msg));
	assert_int_equal(f->arena[99], 0);
	assert_int_equal(f->arena[100 + sizeof(msg)], 0);

	/* Outside the entry, a bad tidinfo, an entry not programmed. */
	assert_int_equal(
		hfi1_drv_place(f->drv, f->tids[0], 4 * page - 1, sv[0], 2), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(
		hfi1_drv_place(f->drv, f->tids[0] & ~(3u << 20), 0, sv[0], 1),
		-1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hfi1_drv_place(f->drv, (5u << 22) | (1u << 20) | 4, 0,
					sv[0], 1),
			 -1);
	assert_int_equal(errno, EBADF);
	/* End of file: what arrived is placed. */
	assert_int_equal(write(sv[1], "abc", 3), 3);
	close(sv[1]);
	assert_int_equal(hfi1_drv_place(f->drv, f->tids[0], 0, sv[0], 10), 3);
	assert_memory_equal(f->arena, "abc", 3);
	close(sv[0]);
	assert_int_equal(tid_free(f, f->tids, 1, NULL), 0);
	/* Freed: no more placement. */
	assert_int_equal(hfi1_drv_place(f->drv, f->tids[0], 0, 0, 1), -1);
	assert_int_equal(errno, EBADF);
}

/*
 * Placement after a skip: the skipped bytes go nowhere, the rest lands; a
 * refused range still reads the skip (the stream stays whole); a skip
 * cut short by the end of the stream places nothing.
 */
static void test_place_after(void **state)
{
	struct fixture *f = *state;
	const char hdr[] = "HEADER", body[] = "payload";
	unsigned int cnt = 0;
	char rest[8];
	int sv[2];

	assert_int_equal(tid_update(f, f->arena, 4 * page, f->tids, &cnt, NULL),
			 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], hdr, 6), 6);
	assert_int_equal(write(sv[1], body, 7), 7);
	assert_int_equal(
		hfi1_drv_place_after(f->drv, 6, f->tids[0], 10, sv[0], 7), 7);
	assert_memory_equal(f->arena + 10, body, 7);
	assert_int_equal(f->arena[9], 0);
	assert_int_equal(f->arena[17], 0);

	/* Refused (outside the entry): the skip is read all the same. */
	assert_int_equal(write(sv[1], hdr, 6), 6);
	assert_int_equal(write(sv[1], "tail", 4), 4);
	assert_int_equal(hfi1_drv_place_after(f->drv, 6, f->tids[0],
					      4 * page - 1, sv[0], 2),
			 -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(read(sv[0], rest, 4), 4);
	assert_memory_equal(rest, "tail", 4);

	/* Too long a skip. */
	assert_int_equal(hfi1_drv_place_after(f->drv,
					      HFI1_DRV_PLACE_SKIP_MAX + 1,
					      f->tids[0], 0, sv[0], 1),
			 -1);
	assert_int_equal(errno, EINVAL);

	/* The stream ends inside the skip: nothing lands. */
	memset(f->arena, 0, 64);
	assert_int_equal(write(sv[1], "HEA", 3), 3);
	close(sv[1]);
	assert_int_equal(
		hfi1_drv_place_after(f->drv, 6, f->tids[0], 0, sv[0], 7), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(f->arena[0], 0);
	close(sv[0]);
	assert_int_equal(tid_free(f, f->tids, 1, NULL), 0);
}

/* Pinned pages are accounted per context and per process. */
static void test_pin_accounting(void **state)
{
	struct fixture *f = *state;
	struct softhfi_stats st;
	unsigned int cnt = 0;
	uint64_t before = softhfi_process_pinned_pages();

	assert_int_equal(tid_update(f, f->arena, 2 * MIB, f->tids, &cnt, NULL),
			 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.pinned_pages, 2 * MIB / page);
	assert_int_equal(softhfi_process_pinned_pages(),
			 before + 2 * MIB / page);
	assert_int_equal(tid_free(f, f->tids, cnt, NULL), 0);
	softhfi_get_stats(f->drv, &st);
	assert_int_equal(st.pinned_pages, 0);
	assert_int_equal(softhfi_process_pinned_pages(), before);
}

/*
 * The cache_size cap applies even with CAP_IPC_LOCK, and the driver says
 * that it is what refused, with the figures it weighed.
 */
static void test_cache_size_cap(void **state)
{
	struct hfi1_drv_pin_refusal r;
	struct softhfi_params params;
	struct fixture f = { 0 };
	unsigned int cnt = 0;

	softhfi_default_params(&params);
	params.cache_size_mb = 1;
	f.drv = softhfi_open(&params);
	assert_non_null(f.drv);
	map_arena(&f, 4 * MIB);
	hfi1_drv_pin_refusal(f.drv, &r);
	assert_int_equal(r.limit, HFI1_DRV_PIN_NONE);
	assert_int_equal(tid_update(&f, f.arena, MIB, f.tids, &cnt, NULL), 0);
	assert_int_equal(
		tid_update(&f, f.arena + MIB, page, f.tids + 1, NULL, NULL),
		ENOMEM);
	hfi1_drv_pin_refusal(f.drv, &r);
	assert_int_equal(r.context_pinned, MIB);
	assert_int_equal(r.asked, page);
	assert_int_equal(r.cache_size, MIB);
	/* Without CAP_IPC_LOCK the share may come first (8 MiB / 4 / N). */
	if (r.cap_ipc_lock)
		assert_int_equal(r.limit, HFI1_DRV_PIN_CACHE_SIZE);
	else
		assert_true(r.limit == HFI1_DRV_PIN_CACHE_SIZE ||
			    r.limit == HFI1_DRV_PIN_SHARE);
	assert_int_equal(tid_free(&f, f.tids, cnt, NULL), 0);
	assert_int_equal(
		tid_update(&f, f.arena + MIB, page, f.tids, &cnt, NULL), 0);
	assert_int_equal(tid_free(&f, f.tids, cnt, NULL), 0);
	hfi1_drv_close(f.drv);
	munmap(f.map, f.map_len);
}

/* Two contexts watch the same memory: both see the unmapping. */
static void test_two_contexts_same_buffer(void **state)
{
	struct fixture *f = *state;
	struct softhfi_params params;
	struct fixture g = { 0 };
	unsigned int cnt = 0;
	char *buf;

	softhfi_default_params(&params);
	g.drv = softhfi_open(&params);
	assert_non_null(g.drv);
	buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(buf, MAP_FAILED);
	assert_int_equal(tid_update(f, buf, 2 * page, f->tids, &cnt, NULL), 0);
	assert_int_equal(tid_update(&g, buf, 2 * page, g.tids, &cnt, NULL), 0);
	munmap(buf, 2 * page);
	assert_true(wait_event(f));
	assert_true(wait_event(&g));
	assert_int_equal(tid_free(f, f->tids, 1, NULL), 0);
	assert_int_equal(tid_free(&g, g.tids, 1, NULL), 0);
	hfi1_drv_close(g.drv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_context_info, setup,
						teardown),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test_setup_teardown(test_get_vers_efault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tidinfo_encoding, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_page_set_split, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_update_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_groups_of_eight,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_partial_and_enospc,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_free_errors, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalidate_on_munmap,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_inval_read_efault_keeps_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place_after, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pin_accounting, setup,
						teardown),
		cmocka_unit_test(test_cache_size_cap),
		cmocka_unit_test_setup_teardown(test_two_contexts_same_buffer,
						setup, teardown),
	};

	page = sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
