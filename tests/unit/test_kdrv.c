// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the kernel backend (providers/hfi1/drv/kdrv.c) against a fake
 * /dev/hfi1_N.
 *
 * The fake behaves as the hfi1 driver's file operations do (file_ops.c):
 * GET_VERS and ASSIGN_CTXT are the only commands before a context is
 * assigned (EINVAL otherwise), ASSIGN_CTXT checks the major version
 * (ENODEV) and subctxt_cnt, USER_INFO hands out mmap tokens built as the
 * driver builds them, and mmap() accepts only a valid, shared, one-page
 * EVENTS token for this context. The event "page" is a real memfd page,
 * written through a second mapping that plays the kernel's view, so the
 * word the backend points at can be read, raised and acknowledged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "kdrv.h"

/* The driver's mmap token layout and types (file_ops.c). */
#define TOKEN_MAGIC 0xdabbad00ULL
#define TOKEN_TYPE_STATUS 8
#define TOKEN_TYPE_EVENTS 7
#define TOKEN_TYPE_UREGS 6

static uint64_t make_token(unsigned int type, unsigned int ctxt,
			   unsigned int subctxt, uint64_t offset)
{
	return TOKEN_MAGIC << 32 | (uint64_t)(type & 0xf) << 24 |
	       (uint64_t)(ctxt & 0xff) << 16 | (uint64_t)(subctxt & 0xf) << 12 |
	       (offset & 0xfff);
}

#define FAKE_FD 1017
#define FAKE_PATH "/dev/hfi1_0"
#define EVENT_PAGES 3 /* 160 contexts * 8 subcontexts * 8 bytes */
#define SWVERSION(major, minor) ((major) << HFI1_SWMAJOR_SHIFT | (minor))
/* Initial contents of event word i: its index, and no event bits. */
#define WORD_PATTERN(i) (0x5a00000000000000ULL | (uint64_t)(i) << 16)

enum fake_step {
	STEP_NONE,
	STEP_OPEN,
	STEP_GET_VERS,
	STEP_ASSIGN_CTXT,
	STEP_CTXT_INFO,
	STEP_USER_INFO,
	STEP_MMAP,
};

static struct fake_hfi1 {
	/* What the device is */
	int vers;
	__u16 unit, ctxt, subctxt, first_dyn_alloc_ctxt;
	enum fake_step fail_step;
	int fail_errno;

	/* What it has seen */
	int opens, closes, maps, unmaps;
	int open_flags;
	char path[64];
	unsigned long cmds[16];
	void *cmd_args[16];
	int ncmds;
	struct hfi1_user_info uinfo;
	int map_prot, map_flags;

	/* Its state */
	bool fd_open, assigned;
	struct hfi1_ctxt_info cinfo;
	struct hfi1_base_info binfo;
	size_t page_size;
	int memfd;
	uint64_t *kview; /* all event pages, as the kernel sees them */
	void *umap; /* the one mapping handed out */
	size_t umap_len;
} fake;

static size_t event_index(void)
{
	return (size_t)(fake.ctxt - fake.first_dyn_alloc_ctxt) *
		       HFI1_MAX_SHARED_CTXTS +
	       fake.subctxt;
}

static int fail_here(enum fake_step step)
{
	if (fake.fail_step != step)
		return 0;
	errno = fake.fail_errno;
	return 1;
}

static int fake_open(const char *path, int flags)
{
	if (fail_here(STEP_OPEN))
		return -1;
	if (fake.fd_open) {
		errno = EMFILE; /* this fake serves one fd at a time */
		return -1;
	}
	snprintf(fake.path, sizeof(fake.path), "%s", path);
	fake.open_flags = flags;
	fake.fd_open = true;
	fake.opens++;
	return FAKE_FD;
}

static void fill_ctxt_info(struct hfi1_ctxt_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->runtime_flags =
		HFI1_CAP_SDMA | HFI1_CAP_EXTENDED_PSN | HFI1_CAP_PKEY_CHECK;
	ci->rcvegr_size = 8192;
	ci->num_active = 1;
	ci->unit = fake.unit;
	ci->ctxt = fake.ctxt;
	ci->subctxt = fake.subctxt;
	ci->rcvtids = 2048 + 128;
	ci->credits = 64;
	ci->numa_node = 0;
	ci->rec_cpu = 0xffff;
	ci->send_ctxt = fake.ctxt + 3;
	ci->egrtids = 128;
	ci->rcvhdrq_cnt = 2048;
	ci->rcvhdrq_entsize = 128;
	ci->sdma_ring_size = 128;
}

static void fill_base_info(struct hfi1_base_info *bi)
{
	size_t word = event_index() * sizeof(uint64_t);

	memset(bi, 0, sizeof(*bi));
	bi->hw_version = 0x11;
	bi->sw_version = fake.vers;
	bi->jkey = 0x8001;
	bi->bthqp = 0x80;
	bi->user_regbase =
		make_token(TOKEN_TYPE_UREGS, fake.ctxt, fake.subctxt, 0);
	/* The driver: offset_in_page((uctxt_offset + subctxt) * 8). */
	bi->events_bufbase = make_token(TOKEN_TYPE_EVENTS, fake.ctxt,
					fake.subctxt, word % fake.page_size);
	bi->status_bufbase =
		make_token(TOKEN_TYPE_STATUS, fake.ctxt, fake.subctxt, 0);
}

static int fake_ioctl(int fd, unsigned long cmd, void *arg)
{
	if (fake.ncmds < (int)(sizeof(fake.cmds) / sizeof(fake.cmds[0]))) {
		fake.cmd_args[fake.ncmds] = arg;
		fake.cmds[fake.ncmds++] = cmd;
	}
	if (fd != FAKE_FD || !fake.fd_open) {
		errno = EBADF;
		return -1;
	}
	if (cmd != HFI1_IOCTL_ASSIGN_CTXT && cmd != HFI1_IOCTL_GET_VERS &&
	    !fake.assigned) {
		errno = EINVAL;
		return -1;
	}
	if (!arg) {
		errno = EFAULT;
		return -1;
	}

	switch (cmd) {
	case HFI1_IOCTL_GET_VERS:
		if (fail_here(STEP_GET_VERS))
			return -1;
		*(int *)arg = fake.vers;
		return 0;
	case HFI1_IOCTL_ASSIGN_CTXT:
		if (fail_here(STEP_ASSIGN_CTXT))
			return -1;
		if (fake.assigned) {
			errno = EINVAL;
			return -1;
		}
		memcpy(&fake.uinfo, arg, sizeof(fake.uinfo));
		if (fake.uinfo.userversion >> HFI1_SWMAJOR_SHIFT !=
		    (unsigned int)fake.vers >> HFI1_SWMAJOR_SHIFT) {
			errno = ENODEV;
			return -1;
		}
		if (fake.uinfo.subctxt_cnt > HFI1_MAX_SHARED_CTXTS) {
			errno = EINVAL;
			return -1;
		}
		fake.assigned = true;
		fill_ctxt_info(&fake.cinfo);
		fill_base_info(&fake.binfo);
		return 0;
	case HFI1_IOCTL_CTXT_INFO:
		if (fail_here(STEP_CTXT_INFO))
			return -1;
		memcpy(arg, &fake.cinfo, sizeof(fake.cinfo));
		return 0;
	case HFI1_IOCTL_USER_INFO:
		if (fail_here(STEP_USER_INFO))
			return -1;
		memcpy(arg, &fake.binfo, sizeof(fake.binfo));
		return 0;
	case HFI1_IOCTL_ACK_EVENT: {
		unsigned long bits = *(unsigned long *)arg;

		bits &= (1UL << (_HFI1_MAX_EVENT_BIT + 1)) - 1;
		__atomic_fetch_and(&fake.kview[event_index()], ~(uint64_t)bits,
				   __ATOMIC_SEQ_CST);
		return 0;
	}
	default:
		errno = EINVAL;
		return -1;
	}
}

static void *fake_mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	uint64_t token = (uint64_t)off;
	size_t page;
	void *p;

	if (fail_here(STEP_MMAP))
		return MAP_FAILED;
	if (fd != FAKE_FD || !fake.fd_open) {
		errno = EBADF;
		return MAP_FAILED;
	}
	/* mmap(2) itself: the offset is a multiple of the page size. */
	if (token & (fake.page_size - 1)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	/* hfi1_file_mmap(): magic, context, subcontext, VM_SHARED. */
	if (token >> 32 != TOKEN_MAGIC || !fake.assigned ||
	    (token >> 16 & 0xff) != fake.ctxt ||
	    (token >> 12 & 0xf) != fake.subctxt || !(flags & MAP_SHARED)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	/* Only the event page is served here; it is exactly one page. */
	if ((token >> 24 & 0xf) != TOKEN_TYPE_EVENTS || len != fake.page_size ||
	    fake.umap) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	/* The driver maps the page that holds this context's words. */
	page = event_index() * sizeof(uint64_t) / fake.page_size;
	p = mmap(addr, len, prot, MAP_SHARED, fake.memfd,
		 (off_t)(page * fake.page_size));
	if (p == MAP_FAILED)
		return MAP_FAILED;
	fake.map_prot = prot;
	fake.map_flags = flags;
	fake.umap = p;
	fake.umap_len = len;
	fake.maps++;
	return p;
}

static int fake_munmap(void *addr, size_t len)
{
	if (!fake.umap || addr != fake.umap || len != fake.umap_len) {
		errno = EINVAL;
		return -1;
	}
	if (munmap(addr, len))
		return -1;
	fake.umap = NULL;
	fake.unmaps++;
	return 0;
}

static int fake_close(int fd)
{
	if (fd != FAKE_FD || !fake.fd_open) {
		errno = EBADF;
		return -1;
	}
	fake.fd_open = false;
	fake.assigned = false;
	fake.closes++;
	return 0;
}

static const struct hfi1_kdrv_sys fake_sys = {
	.open = fake_open,
	.ioctl = fake_ioctl,
	.mmap = fake_mmap,
	.munmap = fake_munmap,
	.close = fake_close,
};

static int setup(void **state)
{
	size_t i, len;

	(void)state;

	memset(&fake, 0, sizeof(fake));
	fake.vers = SWVERSION(HFI1_USER_SWMAJOR, HFI1_USER_SWMINOR);
	fake.unit = 0;
	fake.first_dyn_alloc_ctxt = 9;
	fake.ctxt = 17;
	fake.subctxt = 0;
	fake.page_size = sysconf(_SC_PAGESIZE);

	len = EVENT_PAGES * fake.page_size;
	fake.memfd = memfd_create("hfi1-events", MFD_CLOEXEC);
	if (fake.memfd < 0 || ftruncate(fake.memfd, len))
		return -1;
	fake.kview = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fake.memfd, 0);
	if (fake.kview == MAP_FAILED)
		return -1;
	for (i = 0; i < len / sizeof(uint64_t); i++)
		fake.kview[i] = WORD_PATTERN(i);
	return 0;
}

static int teardown(void **state)
{
	(void)state;

	if (fake.umap)
		munmap(fake.umap, fake.umap_len);
	munmap(fake.kview, EVENT_PAGES * fake.page_size);
	close(fake.memfd);
	return 0;
}

static void assert_all_released(void)
{
	assert_false(fake.fd_open);
	assert_int_equal(fake.opens, fake.closes);
	assert_int_equal(fake.maps, fake.unmaps);
	assert_null(fake.umap);
}

/* Opens, checks everything the backend learnt, closes. */
static void open_and_check(void)
{
	static const __u8 zero_uuid[16];
	const unsigned long seq[] = {
		HFI1_IOCTL_GET_VERS,
		HFI1_IOCTL_ASSIGN_CTXT,
		HFI1_IOCTL_CTXT_INFO,
		HFI1_IOCTL_USER_INFO,
	};
	struct hfi1_drv *drv;
	size_t idx = event_index();
	int i;

	drv = hfi1_kdrv_open(FAKE_PATH, &fake_sys);
	assert_non_null(drv);
	assert_non_null(drv->ops);
	assert_non_null(drv->ops->ioctl);
	assert_non_null(drv->ops->close);

	/* open(2) as the driver expects it */
	assert_string_equal(fake.path, FAKE_PATH);
	assert_int_equal(fake.open_flags, O_RDWR | O_CLOEXEC);

	/* the command sequence, nothing more */
	assert_int_equal(fake.ncmds, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(fake.cmds[i], seq[i]);

	/* what ASSIGN_CTXT was given */
	assert_int_equal(fake.uinfo.userversion,
			 SWVERSION(HFI1_USER_SWMAJOR, HFI1_USER_SWMINOR));
	assert_int_equal(fake.uinfo.pad, 0);
	assert_int_equal(fake.uinfo.subctxt_cnt, 0);
	assert_int_equal(fake.uinfo.subctxt_id, 0);
	assert_memory_not_equal(fake.uinfo.uuid, zero_uuid, 16);
	assert_int_equal(fake.uinfo.uuid[6] >> 4, 4);

	/* what came back, copied whole */
	assert_memory_equal(&drv->ctxt_info, &fake.cinfo, sizeof(fake.cinfo));
	assert_memory_equal(&drv->base_info, &fake.binfo, sizeof(fake.binfo));
	assert_int_equal(drv->ctxt_info.ctxt, fake.ctxt);
	assert_int_equal(drv->ctxt_info.subctxt, fake.subctxt);

	/* the event page: one read-only shared page, the right word */
	assert_int_equal(fake.maps, 1);
	assert_int_equal(fake.map_prot, PROT_READ);
	assert_true(fake.map_flags & MAP_SHARED);
	assert_ptr_equal((const void *)((uintptr_t)drv->events &
					~(uintptr_t)(fake.page_size - 1)),
			 fake.umap);
	assert_int_equal(*drv->events, WORD_PATTERN(idx));

	/* the driver raises a bit: the provider sees it */
	__atomic_fetch_or(&fake.kview[idx], HFI1_EVENT_TID_MMU_NOTIFY,
			  __ATOMIC_SEQ_CST);
	assert_int_equal(__atomic_load_n(drv->events, __ATOMIC_ACQUIRE),
			 WORD_PATTERN(idx) | HFI1_EVENT_TID_MMU_NOTIFY);
	/* ... through hfi1_drv_events() too; the kernel has no event fd */
	assert_int_equal(hfi1_drv_events(drv),
			 WORD_PATTERN(idx) | HFI1_EVENT_TID_MMU_NOTIFY);
	assert_int_equal(drv->event_fd, -1);

	hfi1_drv_close(drv);
	assert_int_equal(fake.closes, 1);
	assert_int_equal(fake.unmaps, 1);
	assert_all_released();
}

static void test_open_success(void **state)
{
	(void)state;
	open_and_check();
}

static void test_events_word_on_later_page(void **state)
{
	(void)state;

	/* word (80 - 9) * 8 = 568: byte 4544, the second page */
	fake.ctxt = 80;
	open_and_check();
}

static void test_events_word_of_subctxt(void **state)
{
	(void)state;

	/*
	 * With subctxt_cnt 0 the driver always answers subcontext 0; the
	 * fake answers 3 here, as for a shared context, to show that the
	 * word comes from the token and not from the context number alone.
	 */
	fake.ctxt = 80;
	fake.subctxt = 3;
	open_and_check();
}

static void test_minor_version_differs(void **state)
{
	(void)state;

	fake.vers = SWVERSION(HFI1_USER_SWMAJOR, HFI1_USER_SWMINOR + 7);
	open_and_check();
}

static void test_ioctl_forwards(void **state)
{
	unsigned long bits = HFI1_EVENT_LID_CHANGE;
	struct hfi1_drv *drv;
	size_t idx = event_index();
	int vers = 0;

	(void)state;

	drv = hfi1_kdrv_open(FAKE_PATH, &fake_sys);
	assert_non_null(drv);

	/* same fd, same argument pointer, the driver's answer */
	assert_int_equal(hfi1_drv_ioctl(drv, HFI1_IOCTL_GET_VERS, &vers), 0);
	assert_int_equal(fake.cmds[fake.ncmds - 1], HFI1_IOCTL_GET_VERS);
	assert_ptr_equal(fake.cmd_args[fake.ncmds - 1], &vers);
	assert_int_equal(vers, fake.vers);

	/* ACK_EVENT reaches the driver, which clears the bit */
	fake.kview[idx] |= HFI1_EVENT_LID_CHANGE | HFI1_EVENT_LINKDOWN;
	assert_int_equal(hfi1_drv_ioctl(drv, HFI1_IOCTL_ACK_EVENT, &bits), 0);
	assert_ptr_equal(fake.cmd_args[fake.ncmds - 1], &bits);
	assert_int_equal(*drv->events, WORD_PATTERN(idx) | HFI1_EVENT_LINKDOWN);

	/* failures come back as ioctl(2)'s: -1 and errno */
	errno = 0;
	assert_int_equal(
		hfi1_drv_ioctl(drv, HFI1_IOCTL_CTXT_RESET + 0x100, &bits), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(hfi1_drv_ioctl(drv, HFI1_IOCTL_ACK_EVENT, NULL), -1);
	assert_int_equal(errno, EFAULT);

	hfi1_drv_close(drv);
	assert_all_released();
}

static void test_each_step_unwinds(void **state)
{
	static const struct {
		enum fake_step step;
		int err;
		int ncmds; /* commands the device should have seen */
	} cases[] = {
		/* clang-format off */
		{ STEP_OPEN, ENXIO, 0 },
		{ STEP_GET_VERS, ENOTTY, 1 },
		{ STEP_ASSIGN_CTXT, EBUSY, 2 },
		{ STEP_CTXT_INFO, EFAULT, 3 },
		{ STEP_USER_INFO, EFAULT, 4 },
		{ STEP_MMAP, EAGAIN, 4 },
		/* clang-format on */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(teardown(state), 0);
		assert_int_equal(setup(state), 0);
		fake.fail_step = cases[i].step;
		fake.fail_errno = cases[i].err;

		errno = 0;
		assert_null(hfi1_kdrv_open(FAKE_PATH, &fake_sys));
		assert_int_equal(errno, cases[i].err);
		assert_int_equal(fake.ncmds, cases[i].ncmds);
		assert_int_equal(fake.opens,
				 cases[i].step == STEP_OPEN ? 0 : 1);
		assert_int_equal(fake.maps, 0);
		assert_all_released();
	}
}

static void test_version_mismatch(void **state)
{
	static const int bad[] = {
		SWVERSION(HFI1_USER_SWMAJOR - 1, HFI1_USER_SWMINOR),
		SWVERSION(HFI1_USER_SWMAJOR + 1, 0),
		0,
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(teardown(state), 0);
		assert_int_equal(setup(state), 0);
		fake.vers = bad[i];

		errno = 0;
		assert_null(hfi1_kdrv_open(FAKE_PATH, &fake_sys));
		assert_int_equal(errno, EPROTONOSUPPORT);
		/* GET_VERS only: no context was asked for */
		assert_int_equal(fake.ncmds, 1);
		assert_int_equal(fake.cmds[0], HFI1_IOCTL_GET_VERS);
		assert_false(fake.assigned);
		assert_all_released();
	}
}

static void test_open_failure_errno(void **state)
{
	static const int errs[] = { ENOENT, EACCES, ENXIO, EINVAL };
	size_t i;

	(void)state;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		fake.fail_step = STEP_OPEN;
		fake.fail_errno = errs[i];
		errno = 0;
		assert_null(hfi1_kdrv_open(FAKE_PATH, &fake_sys));
		assert_int_equal(errno, errs[i]);
		/* nothing was opened, so nothing may be closed */
		assert_int_equal(fake.opens, 0);
		assert_int_equal(fake.closes, 0);
		assert_int_equal(fake.ncmds, 0);
	}
}

static void test_close_releases(void **state)
{
	struct hfi1_drv *drv;
	int round;

	(void)state;

	/* Open and close again and again: nothing piles up. */
	for (round = 0; round < 5; round++) {
		drv = hfi1_kdrv_open(FAKE_PATH, &fake_sys);
		assert_non_null(drv);
		assert_true(fake.fd_open);
		assert_non_null(fake.umap);
		hfi1_drv_close(drv);
		assert_all_released();
	}
	assert_int_equal(fake.opens, 5);
	assert_int_equal(fake.maps, 5);

	hfi1_drv_close(NULL); /* a no-op, like free(NULL) */
}

static void test_real_device_absent(void **state)
{
	(void)state;

	/* sys == NULL: the real open(2), on a node that does not exist */
	errno = 0;
	assert_null(hfi1_kdrv_open("/nonexistent/hfi1_0", NULL));
	assert_int_equal(errno, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_success, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_events_word_on_later_page,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_word_of_subctxt,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_minor_version_differs,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ioctl_forwards, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_each_step_unwinds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_version_mismatch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_failure_errno, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_close_releases, setup,
						teardown),
		cmocka_unit_test(test_real_device_absent),
	};

	return cmocka_run_group_tests_name("kdrv", tests, NULL, NULL);
}
