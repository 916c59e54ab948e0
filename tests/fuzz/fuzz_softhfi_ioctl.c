// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target: the soft HFI's ioctl entry (softhfi/, with its notifier).
 *
 * Each input opens one soft context with small parameters taken from the
 * input, runs a sequence of operations on it and closes it. Addresses come
 * from a few arenas this file owns (read-write, read-only, PROT_NONE, a
 * shared memfd mapping, with PROT_NONE guards between them), or are NULL,
 * misaligned or wild (always unmapped: non-canonical or below
 * mmap_min_addr), so the fuzzer never makes the soft HFI write into memory
 * it does not expect to be written.
 *
 * A shadow model follows what the context must hold: the entries
 * programmed and their ranges, which of them the fuzzer invalidated
 * (munmap, madvise, mremap, MAP_FIXED over them), the invalidation queue
 * and the event bit. Every result is predicted and checked, and so are
 * softhfi_get_stats() and the kernel's own count of pinned pages (VmPin).
 * After the context is closed, softhfi_process_pinned_pages() must be 0,
 * no file descriptor may remain, and VmPin must come back to where it
 * was: the "never leaks pins" checks. A violation aborts.
 *
 * Input: three header bytes, then operations of one opcode byte and its
 * operands; a short input reads as zeros.
 *   byte 0: bits 1:0 expected_count (64, 8, 16, 1024), bits 3:2
 *           cache_size_mb (256, 1, 2, 4), bits 5:4 user_contexts - 1,
 *           bit 6 drop CAP_IPC_LOCK, bit 7 RLIMIT_MEMLOCK 1 MiB (with 6)
 *   byte 1: contig_pages (bit 7: 1 + 4 * bits 6:0, else a table)
 *   byte 2: reserved
 *   opcode % 8: TID_UPDATE, TID_FREE, TID_INVAL_READ, ACK_EVENT, raw
 *   ioctl, memory operation, hfi1_drv_place, TID_UPDATE again (the
 *   operation that builds state the others act on).
 * tests/fuzz/gen_corpus.py writes the seed corpus in this format, and
 * FUZZ_SOFTHFI_TRACE=1 in the environment shows what an input does.
 *
 * Errors the soft HFI may report here: EINVAL, EFAULT, ENOMEM, ENOSPC,
 * EBADF, ENOTTY, EOPNOTSUPP (memory userfaultfd refuses: this program's
 * text, which TID_UPDATE is pointed at too, or the memfd on a kernel
 * without write-protect for shmem), ESTALE (placement into an invalidated
 * entry). EBUSY (an invalidation while TID_UPDATE pins) cannot happen:
 * nothing unmaps concurrently.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "softhfi.h"

#define MAX_OPS 64
#define GUARD_PAGES 16
/* Past the last arena: more than any TID_UPDATE can span. */
#define TAIL_GUARD_PAGES (2 * SOFTHFI_MAX_EXPECTED)
#define MAX_PLACE_BYTES 64
#define NOTIFY ((uint64_t)HFI1_EVENT_TID_MMU_NOTIFY)

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr,                                  \
				"fuzz_softhfi_ioctl:%d: %s: ", __LINE__, \
				#cond);                                  \
			fprintf(stderr, __VA_ARGS__);                    \
			fputc('\n', stderr);                             \
			abort();                                         \
		}                                                        \
	} while (0)

/* ------------------------------------------------------------------ */
/* Input */

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t in_u8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint16_t in_u16(struct input *in)
{
	uint16_t v = in_u8(in);

	return v | (uint16_t)in_u8(in) << 8;
}

static uint32_t in_u32(struct input *in)
{
	uint32_t v = in_u16(in);

	return v | (uint32_t)in_u16(in) << 16;
}

static uint64_t in_u64(struct input *in)
{
	uint64_t v = in_u32(in);

	return v | (uint64_t)in_u32(in) << 32;
}

/* FUZZ_SOFTHFI_TRACE=1: one line per operation on stderr, to triage. */
static bool tracing;

static void __attribute__((format(printf, 1, 2))) trace(const char *fmt, ...)
{
	va_list ap;

	if (!tracing)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A word the soft HFI wrote, wherever it is. */
static uint32_t load_u32(uint64_t addr)
{
	uint32_t v;

	memcpy(&v, (void *)(uintptr_t)addr, sizeof(v));
	return v;
}

/* ------------------------------------------------------------------ */
/* Memory the fuzzer owns */

enum { AR_RW, AR_RO, AR_NONE, AR_SHM, NR_ARENAS };

struct arena {
	char *base;
	size_t pages;
	int prot;
};

static size_t page;
/*
 * Guards and arenas. An address the fuzzer makes is in here, where every
 * page is mapped, or in memory that is never mapped.
 */
static char *reserve_base, *reserve_end;
static struct arena arenas[NR_ARENAS];
static char *landing; /* where mremap moves arena pages to */
/*
 * This program's text: a file mapping, which userfaultfd refuses
 * (EOPNOTSUPP) and which cannot be pinned for writing (EFAULT) either.
 */
static uint64_t text_start, text_end;
static size_t landing_len;
static int shm_fd = -1;
static uint64_t vmpin_base; /* VmPin with no context open */
static uint64_t vmpin_start; /* VmPin when this input started */
static time_t vmpin_clean; /* when VmPin was last seen at its base */
static struct rlimit memlock_orig;

/*
 * Buffers the soft HFI is pointed at, besides the arenas. The ioctl
 * writes some of them with process_vm_writev(), behind ASan's back; they
 * are plain static memory, so nothing tracks them.
 */
static uint8_t arg_buf[512] __attribute__((aligned(64)));
static uint32_t list_buf[SOFTHFI_MAX_EXPECTED + 16];

static const size_t arena_pages[NR_ARENAS] = {
	[AR_RW] = 1100, /* room for a 1024-page update and misalignment */
	[AR_RO] = 16,
	[AR_NONE] = 16,
	[AR_SHM] = 32,
};
static const int arena_prot[NR_ARENAS] = {
	[AR_RW] = PROT_READ | PROT_WRITE,
	[AR_RO] = PROT_READ,
	[AR_NONE] = PROT_NONE,
	[AR_SHM] = PROT_READ | PROT_WRITE,
};

/* (Re)map pages [pg, pg + n) of arena @k as at start. */
static void arena_map(int k, size_t pg, size_t n, int fixed)
{
	struct arena *a = &arenas[k];
	char *want = a->base + pg * page;
	void *p;

	if (k == AR_SHM)
		p = mmap(want, n * page, a->prot, MAP_SHARED | fixed, shm_fd,
			 pg * page);
	else
		p = mmap(want, n * page, a->prot,
			 MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1, 0);
	CHECK(p == want, "cannot map arena %d pages %zu+%zu: %s", k, pg, n,
	      strerror(errno));
	/* Small pages only: the VmPin check counts pages one by one. */
	if (k != AR_SHM)
		madvise(want, n * page, MADV_NOHUGEPAGE);
}

static void landing_reset(size_t len)
{
	void *p = mmap(landing, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		       -1, 0);

	CHECK(p == landing, "cannot reset landing zone: %s", strerror(errno));
}

/*
 * Reserve @len bytes of address space far below where mmap(NULL) places
 * anything (top-down, from below the stack), so that a hole an operation
 * leaves for a moment is never where another thread's mmap(NULL) lands:
 * threads just started by softhfi_open() map memory while they start
 * (ASan's per-thread state), concurrently with the operations.
 */
static char *reserve(size_t len)
{
	static uintptr_t hint = 0x300000000000ull;
	void *p;

	p = mmap((void *)hint, len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			 MAP_FIXED_NOREPLACE,
		 -1, 0);
	if (p == MAP_FAILED)
		p = mmap(NULL, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);
	hint = (uintptr_t)p + len + (1ull << 30);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void find_text(void)
{
	uint64_t fn = (uintptr_t)LLVMFuzzerTestOneInput, start, end;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/maps", "re");
	CHECK(f, "/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2 &&
		    start <= fn && fn < end) {
			text_start = start;
			text_end = end;
		}
	}
	fclose(f);
	CHECK(text_start, "no text mapping");
}

static void setup_memory(void)
{
	size_t total = GUARD_PAGES + TAIL_GUARD_PAGES, off;
	int k;

	for (k = 0; k < NR_ARENAS; k++)
		total += arena_pages[k] + GUARD_PAGES;
	reserve_base = reserve(total * page);
	reserve_end = reserve_base + total * page;

	shm_fd = memfd_create("fuzz_softhfi", MFD_CLOEXEC);
	CHECK(shm_fd >= 0, "memfd_create: %s", strerror(errno));
	CHECK(!ftruncate(shm_fd, arena_pages[AR_SHM] * page), "ftruncate: %s",
	      strerror(errno));

	off = GUARD_PAGES;
	for (k = 0; k < NR_ARENAS; k++) {
		arenas[k].base = reserve_base + off * page;
		arenas[k].pages = arena_pages[k];
		arenas[k].prot = arena_prot[k];
		arena_map(k, 0, arena_pages[k], MAP_FIXED);
		off += arena_pages[k] + GUARD_PAGES;
	}

	landing_len = arena_pages[AR_RW] * page;
	landing = reserve(landing_len);
	find_text();
}

/* The arena that holds all of [addr, addr + len), or -1. */
static int arena_of(uint64_t addr, uint64_t len)
{
	int k;

	if (addr + len < addr)
		return -1;
	for (k = 0; k < NR_ARENAS; k++) {
		uint64_t b = (uintptr_t)arenas[k].base;

		if (addr >= b && addr + len <= b + arenas[k].pages * page)
			return k;
	}
	return -1;
}

static bool in_buf(uint64_t addr, uint64_t len, const void *buf, size_t size)
{
	uint64_t b = (uintptr_t)buf;

	return addr + len >= addr && addr >= b && addr + len <= b + size;
}

#define ACC_R 1
#define ACC_W 2

/* What process_vm_readv/writev can do on [addr, addr + len). */
static int access_of(uint64_t addr, uint64_t len)
{
	int k;

	if (!len)
		return ACC_R | ACC_W;
	if (in_buf(addr, len, arg_buf, sizeof(arg_buf)) ||
	    in_buf(addr, len, list_buf, sizeof(list_buf)))
		return ACC_R | ACC_W;
	k = arena_of(addr, len);
	if (k < 0)
		return 0;
	return (arenas[k].prot & PROT_READ ? ACC_R : 0) |
	       (arenas[k].prot & PROT_WRITE ? ACC_W : 0);
}

/* Copy @len bytes to @addr as far as it is writable memory of ours. */
static void poke(uint64_t addr, const void *src, size_t len)
{
	size_t n;

	for (n = len; n; n--)
		if (access_of(addr, n) & ACC_W)
			break;
	if (n)
		memcpy((void *)(uintptr_t)addr, src, n);
}

/* An address as the trace shows it: arena and offset, or raw. */
static const char *where(uint64_t addr)
{
	static const char *const names[NR_ARENAS] = { "rw", "ro", "none",
						      "shm" };
	static char buf[4][48];
	static unsigned int n;
	char *s = buf[n++ % 4];
	int k;

	for (k = 0; k < NR_ARENAS; k++) {
		int64_t off = addr - (uintptr_t)arenas[k].base;

		if (off >= -(int64_t)(GUARD_PAGES * page) &&
		    off < (int64_t)((arenas[k].pages + GUARD_PAGES) * page)) {
			snprintf(s, sizeof(buf[0]), "%s%+lld", names[k],
				 (long long)off);
			return s;
		}
	}
	if (in_buf(addr, 1, arg_buf, sizeof(arg_buf)))
		snprintf(s, sizeof(buf[0]), "arg_buf");
	else if (in_buf(addr, 1, list_buf, sizeof(list_buf)))
		snprintf(s, sizeof(buf[0]), "list_buf");
	else
		snprintf(s, sizeof(buf[0]), "%#llx", (unsigned long long)addr);
	return s;
}

/* An address that is never mapped. */
static uint64_t wild_addr(uint64_t raw)
{
	switch (raw & 3) {
	case 0:
		return raw | 1ULL << 63; /* the kernel's half */
	case 1:
		return (raw & ((1ULL << 56) - 1)) |
		       1ULL << 62; /* non-canonical */
	case 2:
		return (raw >> 2) & 0xff8; /* below mmap_min_addr */
	default:
		return UINT64_MAX - ((raw >> 2) & 0xffff);
	}
}

/*
 * A pointer the soft HFI is given: mostly @buf, sometimes a place in an
 * arena, from its start or its end (so that a struct or list may run into
 * the guard), NULL or wild.
 */
static uint64_t pick_ptr(struct input *in, void *buf)
{
	uint8_t sel = in_u8(in);
	uint64_t off;
	int k;

	switch (sel % 8) {
	case 3:
	case 4:
		k = sel & 0x80 ? AR_SHM : sel % 8 == 3 ? AR_RW : AR_RO;
		off = in_u16(in) % (arenas[k].pages * page);
		if (sel & 0x40)
			return (uintptr_t)arenas[k].base +
			       arenas[k].pages * page - off;
		return (uintptr_t)arenas[k].base + off;
	case 5:
		return (uintptr_t)arenas[AR_NONE].base + in_u8(in);
	case 6:
		return 0;
	case 7:
		return wild_addr(in_u64(in));
	default:
		return (uintptr_t)buf;
	}
}

static uint64_t read_vmpin_pages(void)
{
	char buf[4096], *s;
	ssize_t n;
	int fd;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open /proc/self/status: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0, "read /proc/self/status");
	buf[n] = 0;
	s = strstr(buf, "VmPin:");
	if (!s)
		return 0; /* not reported by this kernel: nothing to check */
	return strtoull(s + 6, NULL, 10) * 1024 / page;
}

/* The lowest free file descriptor. */
static int lowest_free_fd(void)
{
	int fd = fcntl(shm_fd, F_DUPFD_CLOEXEC, 0);

	CHECK(fd >= 0, "F_DUPFD: %s", strerror(errno));
	close(fd);
	return fd;
}

/* CAP_IPC_LOCK in this thread's effective set, if permitted. */
static bool set_cap_ipc_lock(bool on)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	unsigned int i = CAP_TO_INDEX(CAP_IPC_LOCK);
	unsigned int bit = CAP_TO_MASK(CAP_IPC_LOCK);

	if (syscall(SYS_capget, &hdr, data))
		return false;
	if (on && (data[i].permitted & bit))
		data[i].effective |= bit;
	else
		data[i].effective &= ~bit;
	syscall(SYS_capset, &hdr, data);
	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[i].effective & bit;
}

/* ------------------------------------------------------------------ */
/* The shadow model of one context */

struct slot {
	bool held; /* handed out by TID_UPDATE, not yet freed */
	bool invalid; /* its memory changed since: must be invalidated */
	uint32_t tidinfo;
	uint64_t vaddr;
	uint32_t npages;
};

static struct model {
	struct hfi1_drv *drv;
	struct softhfi_params params;
	bool cap; /* CAP_IPC_LOCK: no RLIMIT_MEMLOCK */
	bool low_memlock; /* RLIMIT_MEMLOCK of 1 MiB */
	uint64_t memlock_pages;
	struct slot slot[SOFTHFI_MAX_EXPECTED];
	unsigned int held;
	unsigned int invalid;
	uint64_t pinned; /* pages of entries held and valid */
	uint64_t invalidations;
	/*
	 * The ids invalidated since the last TID_INVAL_READ, in no
	 * particular order. The soft HFI queues at most expected_count of
	 * them (hfi1 too); which ones when there are more depends on the
	 * order of the kernel's events.
	 */
	uint32_t queue[4 * SOFTHFI_MAX_EXPECTED];
	unsigned int invalidated; /* in queue[], or more if it is full */
	unsigned int queued; /* min(invalidated, expected_count) */
	/* Freed tidinfo words, to free or place again. */
	uint32_t stale[16];
	unsigned int nstale;
} m;

static unsigned int count_of(void)
{
	return m.params.expected_count;
}

static int decode_tid(uint32_t tidinfo)
{
	unsigned int ctrl = HFI1_TID_GET(tidinfo, CTRL);
	unsigned int rcv;

	if (ctrl == 0 || ctrl == 3)
		return -1;
	rcv = (HFI1_TID_GET(tidinfo, IDX) << 1) + ctrl - 1;
	return rcv < count_of() ? (int)rcv : -1;
}

static uint32_t encode_tid(unsigned int rcv, uint32_t npages)
{
	return (rcv >> 1) << HFI1_TID_IDX_SHIFT |
	       (1u << (rcv & 1)) << HFI1_TID_CTRL_SHIFT |
	       (npages & HFI1_TID_LEN_MASK);
}

static void model_free(unsigned int rcv)
{
	struct slot *s = &m.slot[rcv];

	if (s->invalid)
		m.invalid--;
	else
		m.pinned -= s->npages;
	m.held--;
	m.stale[m.nstale++ % 16] = s->tidinfo;
	memset(s, 0, sizeof(*s));
}

/* The memory [start, end) changed: every entry on it is invalidated. */
static void model_touch(uint64_t start, uint64_t end)
{
	unsigned int i;

	for (i = 0; i < count_of(); i++) {
		struct slot *s = &m.slot[i];

		if (!s->held || s->invalid)
			continue;
		if (s->vaddr + (uint64_t)s->npages * page <= start ||
		    s->vaddr >= end)
			continue;
		s->invalid = true;
		m.invalid++;
		m.pinned -= s->npages;
		m.invalidations++;
		if (m.invalidated < sizeof(m.queue) / sizeof(m.queue[0]))
			m.queue[m.invalidated] = encode_tid(i, s->npages);
		m.invalidated++;
		if (m.queued < count_of())
			m.queued++;
	}
}

static void check_vmpin(void)
{
	struct softhfi_stats st;
	uint64_t pin;

	softhfi_get_stats(m.drv, &st);
	pin = read_vmpin_pages();
	/*
	 * The kernel holds no pin the soft HFI does not account. Rings of
	 * earlier inputs may still be letting go of theirs: VmPin only
	 * goes down from what it was when this input started.
	 */
	CHECK(pin <= vmpin_start + st.pinned_pages,
	      "VmPin %llu pages, %llu at start, soft HFI %llu",
	      (unsigned long long)pin, (unsigned long long)vmpin_start,
	      (unsigned long long)st.pinned_pages);
}

static void check_model(void)
{
	struct softhfi_stats st;
	uint64_t events;

	softhfi_get_stats(m.drv, &st);
	CHECK(st.tids_used == m.held, "tids_used %u, model %u", st.tids_used,
	      m.held);
	CHECK(st.tids_used <= count_of(), "tids_used %u", st.tids_used);
	CHECK(st.tids_invalid == m.invalid, "tids_invalid %u, model %u",
	      st.tids_invalid, m.invalid);
	CHECK(st.inval_queued == m.queued, "inval_queued %u, model %u",
	      st.inval_queued, m.queued);
	CHECK(st.pinned_pages == m.pinned, "pinned_pages %llu, model %llu",
	      (unsigned long long)st.pinned_pages,
	      (unsigned long long)m.pinned);
	CHECK(st.invalidations == m.invalidations,
	      "invalidations %llu, model %llu",
	      (unsigned long long)st.invalidations,
	      (unsigned long long)m.invalidations);
	/* One context in the process: its pins are all the process's. */
	CHECK(softhfi_process_pinned_pages() == st.pinned_pages,
	      "process pinned %llu, context %llu",
	      (unsigned long long)softhfi_process_pinned_pages(),
	      (unsigned long long)st.pinned_pages);
	/* Set exactly while invalidations are queued; nothing else. */
	events = __atomic_load_n(m.drv->events, __ATOMIC_ACQUIRE);
	CHECK(events == (m.queued ? NOTIFY : 0), "events %#llx with %u queued",
	      (unsigned long long)events, m.queued);
}

static void expect_errno(int rc, int want, const char *what)
{
	if (!want) {
		CHECK(rc == 0, "%s: -1/%s, expected success", what,
		      strerror(errno));
		return;
	}
	CHECK(rc == -1 && errno == want, "%s: %d/%s, expected %s", what, rc,
	      rc ? strerror(errno) : "-", strerror(want));
}

/* ------------------------------------------------------------------ */
/* TID_UPDATE */

struct piece {
	uint32_t idx; /* first page, from the start of the buffer */
	uint32_t count;
};

/* find_phys_blocks() as hfi1 does it, with the soft HFI's runs. */
static unsigned int model_pieces(uint64_t vaddr, unsigned int npages,
				 struct piece *p)
{
	unsigned int contig = m.params.contig_pages, idx = 0, n = 0;
	uint64_t first = vaddr / page;

	while (idx < npages) {
		unsigned int run = contig - (first + idx) % contig;

		if (run > npages - idx)
			run = npages - idx;
		while (run) {
			unsigned int c =
				run > SOFTHFI_MAX_RUN_PAGES ?
					SOFTHFI_MAX_RUN_PAGES :
					1u << (31 - __builtin_clz(run));

			p[n].idx = idx;
			p[n].count = c;
			n++;
			idx += c;
			run -= c;
		}
	}
	return n;
}

static uint64_t pick_vaddr(struct input *in)
{
	uint8_t sel = in_u8(in);
	uint64_t addr;
	int k, pg;

	switch (sel % 8) {
	case 5:
		k = 1 + (sel >> 3) % 4;
		if (k < NR_ARENAS)
			break;
		/* One of the first 256 pages of text. */
		return text_start + in_u8(in) * page % (text_end - text_start);
	case 6:
		return sel & 0x80 ? 0 : in_u16(in) & 0xfff;
	case 7:
		return wild_addr(in_u64(in));
	default:
		k = AR_RW;
		break;
	}
	pg = (int)(in_u16(in) % (arenas[k].pages + 2 * GUARD_PAGES)) -
	     GUARD_PAGES;
	addr = (uintptr_t)arenas[k].base + (int64_t)pg * (int64_t)page;
	if (sel & 0x40)
		addr += 1 + in_u16(in) % (page - 1);
	return addr;
}

static uint32_t pick_length(struct input *in)
{
	uint8_t sel = in_u8(in);

	switch (sel % 4) {
	case 0:
		return (1 + in_u8(in) % 32) * page;
	case 1:
		return (1 + in_u8(in)) * page - in_u16(in) % page;
	case 2:
		return in_u32(in);
	default:
		return (1 + in_u16(in) % 1100) * page;
	}
}

/*
 * One TID_UPDATE of @tinfo (its tidlist pointer already chosen) with the
 * struct at @argp. Predicts the outcome, checks it and records what was
 * programmed.
 */
static void do_update(uint64_t argp, struct hfi1_tid_info tinfo)
{
	static struct piece pieces[2 * SOFTHFI_MAX_EXPECTED + 2];
	struct hfi1_tid_info seen = { 0 };
	uint64_t vaddr, end, cache_pages, share;
	unsigned int npages = 0, nsets, avail, k = 0, i, pg;
	int acc = access_of(argp, sizeof(tinfo)), want = 0, rc;
	bool pinning = false, maybe_eopnotsupp = false;

	poke(argp, &tinfo, sizeof(tinfo));
	if (acc & ACC_R)
		memcpy(&seen, (void *)(uintptr_t)argp, sizeof(seen));
	vaddr = seen.vaddr;

	/* What exp_rcv_setup() must answer. */
	if (!(acc & ACC_R)) {
		want = EFAULT;
	} else if (vaddr & (page - 1) || !seen.length) {
		want = EINVAL;
	} else if (vaddr + seen.length < vaddr) {
		want = EFAULT;
	} else if ((npages = (seen.length + page - 1) / page) > count_of()) {
		want = EINVAL;
	} else {
		end = vaddr + (uint64_t)npages * page;
		cache_pages =
			(uint64_t)m.params.cache_size_mb * 1024 * 1024 / page;
		share = m.memlock_pages / m.params.user_contexts / 4;
		if (m.pinned + npages > cache_pages ||
		    (!m.cap && m.pinned + npages > m.memlock_pages) ||
		    (!m.cap && m.pinned + npages > share)) {
			want = ENOMEM;
		} else if (vaddr >= text_start && vaddr < text_end) {
			/* Refused by userfaultfd, or not pinned. */
			maybe_eopnotsupp = true;
			want = EFAULT;
		} else if (vaddr < (uintptr_t)reserve_base ||
			   vaddr >= (uintptr_t)reserve_end) {
			/* Never mapped: the watch fails. */
			want = EFAULT;
		} else {
			CHECK(end <= (uintptr_t)reserve_end, "past the guard");
			/* A memfd range may be refused by userfaultfd. */
			maybe_eopnotsupp =
				end > (uintptr_t)arenas[AR_SHM].base &&
				vaddr < (uintptr_t)arenas[AR_SHM].base +
						arenas[AR_SHM].pages * page;
			nsets = model_pieces(vaddr, npages, pieces);
			avail = count_of() - m.held;
			if (nsets > avail)
				nsets = avail;
			/* Pinned: the pieces in writable memory, a prefix. */
			for (k = 0; k < nsets; k++) {
				int a = arena_of(
					vaddr + (uint64_t)pieces[k].idx * page,
					(uint64_t)pieces[k].count * page);

				if (a != AR_RW && a != AR_SHM)
					break;
			}
			if (!nsets)
				want = ENOSPC;
			else if (!k)
				want = EFAULT;
			pinning = nsets;
		}
	}
	/* Copied out: the tidlist, then tidcnt and length. */
	if (!want && (!(access_of(seen.tidlist, 4ull * k) & ACC_W) ||
		      !(access_of(argp + 16, 8) & ACC_W)))
		want = EFAULT;

	errno = 0;
	rc = hfi1_drv_ioctl(m.drv, HFI1_IOCTL_TID_UPDATE,
			    (void *)(uintptr_t)argp);
	trace("TID_UPDATE vaddr %s length %u (%u pages) tidlist %s arg %s: "
	      "%d %s, expected %s with %u entries",
	      where(vaddr), seen.length, npages, where(seen.tidlist),
	      where(argp), rc, rc ? strerror(errno) : "", strerror(want), k);
	if (rc && maybe_eopnotsupp && errno == EOPNOTSUPP)
		return;
	if (pinning && !m.cap) {
		/*
		 * Without CAP_IPC_LOCK io_uring charges the pins to the
		 * user's locked_vm, which other processes share: ENOMEM, or
		 * a shorter prefix, whose copy-out may then fit.
		 */
		if (rc) {
			CHECK(errno == ENOMEM ||
				      (errno == EFAULT && want == EFAULT),
			      "TID_UPDATE: %s, expected %s or ENOMEM",
			      strerror(errno), strerror(want));
			return;
		}
	} else {
		expect_errno(rc, want, "TID_UPDATE");
		if (rc)
			return;
	}
	memcpy(&seen, (void *)(uintptr_t)argp, sizeof(seen));
	CHECK(seen.tidcnt >= 1 && seen.tidcnt <= count_of(),
	      "TID_UPDATE tidcnt %u of %u", seen.tidcnt, count_of());
	CHECK(m.cap ? seen.tidcnt == k : seen.tidcnt <= k,
	      "TID_UPDATE tidcnt %u, expected %u", seen.tidcnt, k);
	CHECK(seen.tidcnt <= count_of() - m.held, "tidcnt %u, %u free",
	      seen.tidcnt, count_of() - m.held);
	for (i = 0, pg = 0; i < seen.tidcnt; i++) {
		uint32_t id = load_u32(seen.tidlist + 4ull * i),
			 len = HFI1_TID_GET(id, LEN);
		int rcv = decode_tid(id);
		struct slot *s;

		CHECK(rcv >= 0, "TID_UPDATE returned bad tidinfo %#x", id);
		s = &m.slot[rcv];
		CHECK(!s->held, "TID_UPDATE handed out entry %d twice", rcv);
		CHECK(len == pieces[i].count && pg == pieces[i].idx,
		      "entry %u: %u pages at %u, expected %u at %u", i, len, pg,
		      pieces[i].count, pieces[i].idx);
		CHECK(!(id & ~(HFI1_TID_LEN_MASK |
			       HFI1_TID_CTRL_MASK << HFI1_TID_CTRL_SHIFT |
			       HFI1_TID_IDX_MASK << HFI1_TID_IDX_SHIFT)),
		      "tidinfo %#x has stray bits", id);
		s->held = true;
		s->tidinfo = id;
		s->vaddr = vaddr + (uint64_t)pg * page;
		s->npages = len;
		m.held++;
		m.pinned += len;
		pg += len;
	}
	CHECK(seen.length == (uint64_t)pg * page,
	      "TID_UPDATE length %u for %u pages", seen.length, pg);
}

static void op_update(struct input *in)
{
	struct hfi1_tid_info tinfo = { 0 };
	uint64_t argp;

	tinfo.vaddr = pick_vaddr(in);
	tinfo.length = pick_length(in);
	tinfo.tidlist = pick_ptr(in, list_buf);
	tinfo.tidcnt = in_u8(in) % 4 ? 0 : in_u32(in); /* ignored */
	argp = pick_ptr(in, arg_buf);
	/* The struct and the list must not overlap: tidcnt would land
	 * in the list and the model would lose the entries. */
	if (argp < tinfo.tidlist + 4ull * SOFTHFI_MAX_EXPECTED &&
	    tinfo.tidlist < argp + sizeof(tinfo))
		argp = (uintptr_t)arg_buf;
	if (argp == (uintptr_t)arg_buf && tinfo.tidlist >= (uintptr_t)arg_buf &&
	    tinfo.tidlist < (uintptr_t)arg_buf + sizeof(arg_buf))
		tinfo.tidlist = (uintptr_t)list_buf;
	do_update(argp, tinfo);
}

/* ------------------------------------------------------------------ */
/* TID_FREE */

/* The id of the @n-th entry held (round and round), if any. */
static bool held_tid(unsigned int n, uint32_t *tid)
{
	unsigned int i;

	for (i = 0; m.held && i < (n / m.held + 1) * count_of(); i++) {
		struct slot *s = &m.slot[i % count_of()];

		if (s->held && !n--) {
			*tid = s->tidinfo;
			return true;
		}
	}
	return false;
}

static uint32_t pick_tid(struct input *in)
{
	uint8_t sel = in_u8(in);
	unsigned int nstale = m.nstale < 16 ? m.nstale : 16;
	uint32_t tid;

	switch (sel % 8) {
	case 0:
	case 1:
	case 2:
	case 3:
		if (held_tid(sel >> 3, &tid))
			return tid;
		return in_u32(in);
	case 4:
		return nstale ? m.stale[(sel >> 3) % nstale] : 0;
	case 5:
		/* A held entry's id with one bit flipped. */
		if (!held_tid(in_u8(in), &tid))
			tid = 0;
		return tid ^ 1u << (sel >> 3);
	default:
		return in_u32(in);
	}
}

static void op_free(struct input *in)
{
	struct hfi1_tid_info tinfo = { 0 }, seen = { 0 };
	static unsigned int freed[SOFTHFI_MAX_EXPECTED];
	static bool gone[SOFTHFI_MAX_EXPECTED];
	uint32_t list[32];
	unsigned int n = in_u8(in) % 33, i, nfreed = 0;
	uint64_t argp, listp;
	int acc, want = 0, rc;

	for (i = 0; i < n; i++)
		list[i] = pick_tid(in);
	tinfo.tidcnt = in_u8(in) % 8 ? n : in_u32(in);
	listp = pick_ptr(in, list_buf);
	poke(listp, list, 4 * n);
	tinfo.tidlist = listp;
	argp = pick_ptr(in, arg_buf);
	poke(argp, &tinfo, sizeof(tinfo));

	acc = access_of(argp, sizeof(tinfo));
	if (acc & ACC_R)
		memcpy(&seen, (void *)(uintptr_t)argp, sizeof(seen));
	if (!(acc & ACC_R)) {
		want = EFAULT;
	} else if (seen.tidcnt > m.held) {
		want = EINVAL;
	} else if (!(access_of(seen.tidlist, 4ull * seen.tidcnt) & ACC_R)) {
		want = EFAULT;
	} else {
		memset(gone, 0, sizeof(gone));
		for (i = 0; i < seen.tidcnt; i++) {
			int rcv = decode_tid(load_u32(seen.tidlist + 4ull * i));

			if (rcv < 0) {
				want = EINVAL;
				break;
			}
			/* Not held, or freed by an earlier word. */
			if (!m.slot[rcv].held || gone[rcv]) {
				want = EBADF;
				break;
			}
			gone[rcv] = true;
			freed[nfreed++] = rcv;
		}
		if (!want && !(access_of(argp + 16, 4) & ACC_W))
			want = EFAULT;
	}

	errno = 0;
	rc = hfi1_drv_ioctl(m.drv, HFI1_IOCTL_TID_FREE,
			    (void *)(uintptr_t)argp);
	trace("TID_FREE tidcnt %u of %u held, tidlist %s arg %s: %d %s, "
	      "expected %s with %u freed",
	      seen.tidcnt, m.held, where(seen.tidlist), where(argp), rc,
	      rc ? strerror(errno) : "", strerror(want), nfreed);
	expect_errno(rc, want, "TID_FREE");
	/* Freed up to the first bad word, whatever is returned. */
	for (i = 0; i < nfreed; i++)
		model_free(freed[i]);
	if (!rc) {
		memcpy(&seen, (void *)(uintptr_t)argp, sizeof(seen));
		CHECK(seen.tidcnt == nfreed, "TID_FREE tidcnt %u, freed %u",
		      seen.tidcnt, nfreed);
	}
}

/* ------------------------------------------------------------------ */
/* TID_INVAL_READ, ACK_EVENT */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether the sorted @a[0..na) are among the sorted @b[0..nb). */
static bool sub_multiset(const uint32_t *a, unsigned int na, const uint32_t *b,
			 unsigned int nb)
{
	unsigned int i = 0, j = 0;

	while (i < na && j < nb) {
		if (a[i] == b[j])
			i++;
		else if (a[i] < b[j])
			return false;
		j++;
	}
	return i == na;
}

static void op_inval_read(struct input *in)
{
	static uint32_t got[SOFTHFI_MAX_EXPECTED];
	struct hfi1_tid_info tinfo = { 0 }, seen = { 0 };
	uint64_t argp;
	int acc, want = 0, rc;

	tinfo.tidlist = pick_ptr(in, list_buf);
	tinfo.tidcnt = in_u32(in); /* ignored */
	argp = pick_ptr(in, arg_buf);
	if (argp < tinfo.tidlist + 4ull * SOFTHFI_MAX_EXPECTED &&
	    tinfo.tidlist < argp + sizeof(tinfo))
		argp = (uintptr_t)arg_buf;
	if (argp == (uintptr_t)arg_buf && tinfo.tidlist >= (uintptr_t)arg_buf &&
	    tinfo.tidlist < (uintptr_t)arg_buf + sizeof(arg_buf))
		tinfo.tidlist = (uintptr_t)list_buf;
	poke(argp, &tinfo, sizeof(tinfo));

	acc = access_of(argp, sizeof(tinfo));
	if (acc & ACC_R)
		memcpy(&seen, (void *)(uintptr_t)argp, sizeof(seen));
	if (!(acc & ACC_R) ||
	    !(access_of(seen.tidlist, 4ull * m.queued) & ACC_W) ||
	    !(access_of(argp + 16, 4) & ACC_W))
		want = EFAULT;

	errno = 0;
	rc = hfi1_drv_ioctl(m.drv, HFI1_IOCTL_TID_INVAL_READ,
			    (void *)(uintptr_t)argp);
	trace("TID_INVAL_READ tidlist %s arg %s, %u queued: %d %s, expected %s",
	      where(seen.tidlist), where(argp), m.queued, rc,
	      rc ? strerror(errno) : "", strerror(want));
	expect_errno(rc, want, "TID_INVAL_READ");
	if (rc)
		return; /* the queue is kept: check_model() sees it */

	memcpy(&seen, (void *)(uintptr_t)argp, sizeof(seen));
	CHECK(seen.tidcnt == m.queued, "TID_INVAL_READ tidcnt %u, queued %u",
	      seen.tidcnt, m.queued);
	if (m.queued)
		memcpy(got, (void *)(uintptr_t)seen.tidlist, 4ull * m.queued);
	qsort(got, m.queued, 4, cmp_u32);
	if (m.invalidated <= sizeof(m.queue) / sizeof(m.queue[0])) {
		qsort(m.queue, m.invalidated, 4, cmp_u32);
		/* All of them, or as many as fit, of those invalidated. */
		CHECK(m.invalidated > m.queued ?
			      sub_multiset(got, m.queued, m.queue,
					   m.invalidated) :
			      !memcmp(got, m.queue, 4ull * m.queued),
		      "TID_INVAL_READ returned other ids than invalidated");
	}
	m.queued = 0;
	m.invalidated = 0;
}

/* ACK_EVENT of the word at @argp. */
static void do_ack(uint64_t argp)
{
	int rc, want = access_of(argp, sizeof(unsigned long)) & ACC_R ? 0 :
									EFAULT;

	errno = 0;
	rc = hfi1_drv_ioctl(m.drv, HFI1_IOCTL_ACK_EVENT,
			    (void *)(uintptr_t)argp);
	trace("ACK_EVENT arg %s: %d %s, expected %s", where(argp), rc,
	      rc ? strerror(errno) : "", strerror(want));
	expect_errno(rc, want, "ACK_EVENT");
}

static void op_ack(struct input *in)
{
	unsigned long events;
	uint8_t sel = in_u8(in);
	uint64_t argp;

	events = sel & 1 ? in_u64(in) : sel & 2 ? NOTIFY : ~0UL;
	argp = pick_ptr(in, arg_buf);
	poke(argp, &events, sizeof(events));
	do_ack(argp);
}

/* ------------------------------------------------------------------ */
/* Any command */

static const unsigned long known_cmds[] = {
	HFI1_IOCTL_GET_VERS,	   HFI1_IOCTL_ASSIGN_CTXT,
	HFI1_IOCTL_CTXT_INFO,	   HFI1_IOCTL_USER_INFO,
	HFI1_IOCTL_TID_UPDATE,	   HFI1_IOCTL_TID_FREE,
	HFI1_IOCTL_CREDIT_UPD,	   HFI1_IOCTL_RECV_CTRL,
	HFI1_IOCTL_POLL_TYPE,	   HFI1_IOCTL_ACK_EVENT,
	HFI1_IOCTL_SET_PKEY,	   HFI1_IOCTL_CTXT_RESET,
	HFI1_IOCTL_TID_INVAL_READ,
};

static void op_raw(struct input *in)
{
	uint8_t sel = in_u8(in), bytes[64];
	unsigned long cmd;
	uint64_t argp;
	size_t size = 0;
	int want = 0, rc, i;

	if (sel & 0x80)
		cmd = in_u64(in);
	else
		cmd = known_cmds[sel %
				 (sizeof(known_cmds) / sizeof(known_cmds[0]))];
	if (sel & 0x40)
		cmd ^= 1UL << (in_u8(in) % 64);
	for (i = 0; i < (int)sizeof(bytes); i++)
		bytes[i] = in_u8(in);

	if (cmd == HFI1_IOCTL_TID_UPDATE) {
		struct hfi1_tid_info t;

		memcpy(&t, bytes, sizeof(t));
		/* Only the arenas and their guards, or unmapped. */
		if (t.vaddr < (uintptr_t)reserve_base ||
		    t.vaddr >= (uintptr_t)reserve_end)
			t.vaddr = wild_addr(t.vaddr);
		t.tidlist = (uintptr_t)list_buf;
		do_update((uintptr_t)arg_buf, t);
		return;
	}
	if (cmd == HFI1_IOCTL_TID_FREE || cmd == HFI1_IOCTL_TID_INVAL_READ) {
		struct input sub = { bytes, sizeof(bytes) };

		if (cmd == HFI1_IOCTL_TID_FREE)
			op_free(&sub);
		else
			op_inval_read(&sub);
		return;
	}

	argp = pick_ptr(in, arg_buf);
	poke(argp, bytes, sizeof(bytes));
	switch (cmd) {
	case HFI1_IOCTL_GET_VERS:
		want = access_of(argp, sizeof(int)) & ACC_W ? 0 : EFAULT;
		break;
	case HFI1_IOCTL_ASSIGN_CTXT:
		/* Assigned already. */
		size = sizeof(struct hfi1_user_info);
		want = access_of(argp, size) & ACC_R ? EINVAL : EFAULT;
		break;
	case HFI1_IOCTL_CTXT_INFO:
		size = sizeof(struct hfi1_ctxt_info);
		want = access_of(argp, size) & ACC_W ? 0 : EFAULT;
		break;
	case HFI1_IOCTL_USER_INFO:
		size = sizeof(struct hfi1_base_info);
		want = access_of(argp, size) & ACC_W ? 0 : EFAULT;
		break;
	case HFI1_IOCTL_ACK_EVENT:
		do_ack(argp);
		return;
	default:
		want = ENOTTY;
		break;
	}
	errno = 0;
	rc = hfi1_drv_ioctl(m.drv, cmd, (void *)(uintptr_t)argp);
	trace("ioctl %#lx arg %s: %d %s, expected %s", cmd, where(argp), rc,
	      rc ? strerror(errno) : "", strerror(want));
	expect_errno(rc, want, "raw ioctl");
	if (rc)
		return;
	if (cmd == HFI1_IOCTL_GET_VERS) {
		int vers;

		memcpy(&vers, (void *)(uintptr_t)argp, sizeof(vers));
		CHECK(vers >> HFI1_SWMAJOR_SHIFT == HFI1_USER_SWMAJOR,
		      "GET_VERS %#x", vers);
	} else if (cmd == HFI1_IOCTL_CTXT_INFO) {
		struct hfi1_ctxt_info ci;

		memcpy(&ci, (void *)(uintptr_t)argp, sizeof(ci));
		CHECK(ci.rcvtids == count_of(), "CTXT_INFO rcvtids %u",
		      ci.rcvtids);
	} else if (cmd == HFI1_IOCTL_USER_INFO) {
		struct hfi1_base_info bi;

		memcpy(&bi, (void *)(uintptr_t)argp, sizeof(bi));
		CHECK(bi.events_bufbase == (uintptr_t)m.drv->events,
		      "USER_INFO events_bufbase %#llx",
		      (unsigned long long)bi.events_bufbase);
	}
}

/* ------------------------------------------------------------------ */
/* Memory operations on the arenas */

static void op_mem(struct input *in)
{
	uint8_t sel = in_u8(in);
	int k = sel & 4 ? AR_RW : sel & 3;
	struct arena *a = &arenas[k];
	size_t pg = in_u16(in) % a->pages;
	size_t n = 1 + in_u16(in) % (a->pages - pg);
	char *addr = a->base + pg * page;
	size_t len = n * page;
	bool touched = false;
	void *p;

	switch ((sel >> 3) % 7) {
	case 0:
		CHECK(!munmap(addr, len), "munmap: %s", strerror(errno));
		/* reserve() keeps others' mmap() away; never clobber. */
		arena_map(k, pg, n, MAP_FIXED_NOREPLACE);
		touched = true;
		break;
	case 1:
	case 2:
		/*
		 * MADV_FREE only where it works: on a shared mapping the
		 * kernel reports the range removed, then fails (EINVAL).
		 */
		CHECK(!madvise(addr, len,
			       (sel >> 3) % 7 == 2 && k != AR_SHM ?
				       MADV_FREE :
				       MADV_DONTNEED),
		      "madvise: %s", strerror(errno));
		touched = true;
		break;
	case 3:
	case 4:
		p = mremap(addr, len, len,
			   MREMAP_MAYMOVE | MREMAP_FIXED |
				   ((sel >> 3) % 7 == 4 ? MREMAP_DONTUNMAP : 0),
			   landing);
		if (p == MAP_FAILED) {
			/*
			 * A move of several VMAs may fail half way, some
			 * moved (Linux 6.17 on): map the range anew.
			 */
			arena_map(k, pg, n, MAP_FIXED);
		} else if ((sel >> 3) % 7 == 3) {
			arena_map(k, pg, n, MAP_FIXED_NOREPLACE);
		}
		landing_reset(len);
		touched = true;
		break;
	case 5:
		arena_map(k, pg, n, MAP_FIXED);
		touched = true;
		break;
	default:
		/* Protection changes are no invalidation. */
		mprotect(addr, len, PROT_NONE);
		CHECK(!mprotect(addr, len, a->prot), "mprotect: %s",
		      strerror(errno));
		break;
	}
	trace("memory operation %d on %s, %zu pages%s", (sel >> 3) % 7,
	      where((uintptr_t)addr), n, touched ? "" : " (no invalidation)");
	if (touched)
		model_touch((uintptr_t)addr, (uintptr_t)addr + len);
	/* Every page of the reservation is mapped again. */
	CHECK(!msync(reserve_base, reserve_end - reserve_base, MS_ASYNC),
	      "hole in the arenas after operation %d: %s", (sel >> 3) % 7,
	      strerror(errno));
}

/* ------------------------------------------------------------------ */
/* hfi1_drv_place */

static void op_place(struct input *in)
{
	uint8_t data[MAX_PLACE_BYTES], sel;
	uint32_t tid = pick_tid(in);
	size_t offset, len, n, i, want_n = 0;
	int fds[2], rcv = decode_tid(tid), want = 0;
	struct slot *s = rcv >= 0 ? &m.slot[rcv] : NULL;
	uint64_t size = 0;
	ssize_t rc;

	sel = in_u8(in);
	n = in_u8(in) % (MAX_PLACE_BYTES + 1);
	for (i = 0; i < n; i++)
		data[i] = in_u8(in);
	offset = sel & 1 ? in_u64(in) : in_u16(in) * 7ul;
	len = sel & 2 ? in_u64(in) : in_u8(in) % (MAX_PLACE_BYTES + 8);

	if (!s) {
		want = EINVAL;
	} else if (!s->held) {
		want = EBADF;
	} else if (s->invalid) {
		want = ESTALE;
	} else {
		size = (uint64_t)s->npages * page;
		if (HFI1_TID_GET(tid, LEN) != s->npages || offset > size ||
		    len > size - offset)
			want = EINVAL;
		else
			want_n = len < n ? len : n;
	}

	CHECK(!pipe2(fds, O_CLOEXEC), "pipe2: %s", strerror(errno));
	CHECK(write(fds[1], data, n) == (ssize_t)n, "write to pipe");
	close(fds[1]);
	errno = 0;
	rc = hfi1_drv_place(m.drv, tid, offset, fds[0], len);
	close(fds[0]);
	trace("hfi1_drv_place tidinfo %#x offset %zu len %zu, %zu in the pipe: "
	      "%zd %s, expected %s",
	      tid, offset, len, n, rc, rc < 0 ? strerror(errno) : "",
	      strerror(want));
	if (want) {
		CHECK(rc == -1 && errno == want,
		      "hfi1_drv_place: %zd/%s, expected %s", rc,
		      rc < 0 ? strerror(errno) : "-", strerror(want));
		return;
	}
	CHECK(rc == (ssize_t)want_n, "hfi1_drv_place: %zd/%s, expected %zu", rc,
	      rc < 0 ? strerror(errno) : "-", want_n);
	/* A valid entry's pages are the ones mapped at its address. */
	CHECK(!memcmp((void *)(uintptr_t)(s->vaddr + offset), data, want_n),
	      "hfi1_drv_place: the data is not at the entry's address");
}

/* ------------------------------------------------------------------ */

static void pick_params(struct input *in)
{
	static const unsigned int counts[] = { 64, 8, 16, 1024 };
	static const unsigned int cache_mb[] = { 256, 1, 2, 4 };
	static const unsigned int contig[] = { 512, 1,	 2,  4,	 8,   16,
					       3,   5,	 7,  64, 128, 256,
					       511, 100, 33, 9 };
	uint8_t b0 = in_u8(in), b1 = in_u8(in);

	(void)in_u8(in);
	softhfi_default_params(&m.params);
	m.params.expected_count = counts[b0 & 3];
	m.params.cache_size_mb = cache_mb[(b0 >> 2) & 3];
	m.params.user_contexts = 1 + ((b0 >> 4) & 3);
	m.params.contig_pages =
		b1 & 0x80 ? 1 + 4 * (b1 & 0x7f) : contig[b1 & 15];

	m.cap = set_cap_ipc_lock(!(b0 & 0x40));
	m.low_memlock = !m.cap && (b0 & 0x80);
}

/*
 * The pin limit for this input's commands, set once the context is open
 * (io_uring charges its rings to the same limit).
 */
static void set_memlock(void)
{
	struct rlimit rl = memlock_orig;

	if (m.low_memlock && rl.rlim_cur > (1 << 20))
		rl.rlim_cur = 1 << 20;
	setrlimit(RLIMIT_MEMLOCK, &rl);
	CHECK(!getrlimit(RLIMIT_MEMLOCK, &rl), "getrlimit");
	m.memlock_pages = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX / 2 :
							 rl.rlim_cur / page;
}

/*
 * With no context open VmPin must come back to its base. A closed ring
 * lets go of its pins asynchronously (some 10-20 ms later), so this waits,
 * and is done only now and then and at exit.
 */
static void wait_vmpin_base(void)
{
	int tries;

	for (tries = 0; read_vmpin_pages() != vmpin_base; tries++) {
		CHECK(tries < 10000,
		      "pins leaked: VmPin %llu pages with no context, "
		      "%llu at start",
		      (unsigned long long)read_vmpin_pages(),
		      (unsigned long long)vmpin_base);
		usleep(1000);
	}
	vmpin_clean = time(NULL);
}

static void check_at_exit(void)
{
	wait_vmpin_base();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct softhfi_params params;
	struct hfi1_drv *drv;

	page = sysconf(_SC_PAGESIZE);
	tracing = getenv("FUZZ_SOFTHFI_TRACE");
	setup_memory();
	getrlimit(RLIMIT_MEMLOCK, &memlock_orig);
	vmpin_base = read_vmpin_pages();

	/* Can this process have a soft context at all? */
	softhfi_default_params(&params);
	drv = softhfi_open(&params);
	if (!drv) {
		fprintf(stderr,
			"fuzz_softhfi_ioctl: softhfi_open: %s: "
			"userfaultfd or io_uring not available; skipped\n",
			strerror(errno));
		exit(77);
	}
	hfi1_drv_close(drv);
	wait_vmpin_base();
	atexit(check_at_exit);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	unsigned int ops = 0;
	bool dirty = false;
	int fd_before;

	vmpin_start = read_vmpin_pages();
	if (vmpin_start == vmpin_base)
		vmpin_clean = time(NULL);
	else if (time(NULL) - vmpin_clean > 10)
		wait_vmpin_base();
	vmpin_start = read_vmpin_pages();
	fd_before = lowest_free_fd();

	memset(&m, 0, sizeof(m));
	pick_params(&in);
	setrlimit(RLIMIT_MEMLOCK, &memlock_orig);
	m.drv = softhfi_open(&m.params);
	if (!m.drv && errno == ENOMEM && !m.cap) {
		/* Earlier rings' pins may still be charged to the user. */
		wait_vmpin_base();
		m.drv = softhfi_open(&m.params);
	}
	CHECK(m.drv, "softhfi_open: %s", strerror(errno));
	set_memlock();
	trace("open: expected_count %u contig_pages %u cache_size_mb %u "
	      "user_contexts %u%s, RLIMIT_MEMLOCK %llu pages",
	      m.params.expected_count, m.params.contig_pages,
	      m.params.cache_size_mb, m.params.user_contexts,
	      m.cap ? ", CAP_IPC_LOCK" : "",
	      (unsigned long long)m.memlock_pages);
	CHECK(m.drv->ctxt_info.rcvtids == count_of(), "rcvtids %u",
	      m.drv->ctxt_info.rcvtids);

	while (in.left && ops++ < MAX_OPS) {
		uint8_t op = in_u8(&in);

		switch (op % 8) {
		case 0:
		case 7:
			op_update(&in);
			break;
		case 1:
			op_free(&in);
			break;
		case 2:
			op_inval_read(&in);
			break;
		case 3:
			op_ack(&in);
			break;
		case 4:
			op_raw(&in);
			break;
		case 5:
			/*
			 * Checked after the next command, which must
			 * drain the invalidations itself.
			 */
			op_mem(&in);
			dirty = true;
			continue;
		default:
			op_place(&in);
			break;
		}
		check_model();
		/* After what unpins (reading /proc costs). */
		if (dirty || op % 8 == 1 || op % 8 == 2)
			check_vmpin();
		dirty = false;
	}
	check_model();
	check_vmpin();

	hfi1_drv_close(m.drv);
	CHECK(softhfi_process_pinned_pages() == 0,
	      "pins leaked: %llu pages still counted after close",
	      (unsigned long long)softhfi_process_pinned_pages());
	CHECK(lowest_free_fd() == fd_before, "file descriptor leaked: %d",
	      fd_before);
	return 0;
}
