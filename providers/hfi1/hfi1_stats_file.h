/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The per-context stats file: the provider publishes each context's MR
 * cache counters and data counters in a small file that hfi1_mrstat(1)
 * reads from outside.
 *   directory: $HFI1_STATS_DIR, default /dev/shm
 *   name:      libhfi1.<pid>.<n>.stats (n: the process's context number),
 *              libhfi1.<pid>.<n>.<tag>.stats when another user took it
 *   HFI1_STATS=0      publish nothing (counters in private memory)
 *   HFI1_STATS_KEEP=1 leave the file at close/exit (hfi1_mrstat -- CMD)
 * The file is the struct below, mmapped shared; the cache and the soft
 * HFI's engine write the counters in place (relaxed atomics), readers
 * load them relaxed.
 * It is created with O_EXCL and mode 0600, filled, and gets its magic
 * last (after a release fence), so a file with the magic has a whole
 * header. Readers (hfi1_mrstat) must not trust it: they check st_size,
 * pread() a copy, and check magic, version and size before using it.
 * A process that dies without closing leaves its file; a reader tells it
 * by its pid being gone or by a start_time other than the pid's, and the
 * next context its user opens removes it (hfi1_stats_stale()).
 *
 * The format is a leaf, as a uapi header is: system headers only, so that
 * a reader includes nothing else of the provider. The writer is stats.c
 * (stats.h); stats_file.c holds what writer and readers share.
 */
#ifndef HFI1_STATS_FILE_H
#define HFI1_STATS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HFI1_STATS_MAGIC "HFI1STAT"
#define HFI1_STATS_VERSION 2

/* Where the files are when $HFI1_STATS_DIR is unset or empty. */
#define HFI1_STATS_DEFAULT_DIR "/dev/shm"
/*
 * A file's name: HFI1_STATS_NAME_PREFIX <pid> "." <n> HFI1_STATS_NAME_SUFFIX.
 * Anyone may make a file under that name before the process does: when
 * another user's file holds it, the context takes
 * HFI1_STATS_NAME_PREFIX <pid> "." <n> "." <tag> HFI1_STATS_NAME_SUFFIX,
 * <tag> being HFI1_STATS_TAG_LEN random lowercase hex digits, and logs it.
 */
#define HFI1_STATS_NAME_PREFIX "libhfi1."
#define HFI1_STATS_NAME_SUFFIX ".stats"
#define HFI1_STATS_TAG_LEN 16

/*
 * The counters of an MR cache (mr_cache.h), laid out here because the
 * file holds them. The storage belongs to the caller (it may live in a
 * shared stats file other processes read), given to hfi1_mrc_create().
 * Written only under c->lock with relaxed load+store (no locked RMW on the
 * hit path); readers load them relaxed, without the lock.
 */
struct hfi1_mrc_counters {
	_Atomic uint64_t hits; /* get() served by a cached entry */
	_Atomic uint64_t misses; /* get() that programmed TIDs */
	_Atomic uint64_t evictions; /* idle entries TID_FREEd for room/limits */
	_Atomic uint64_t invalidations; /* entries the driver invalidated */
	_Atomic uint64_t invalidated_in_use; /* ... of them held by refs */
	_Atomic uint64_t failures; /* get() that failed with ENOMEM */
	_Atomic uint64_t entries; /* entries now: in use or idle */
	_Atomic uint64_t idle_entries; /* entries now on the LRU list */
	_Atomic uint64_t pinned_bytes; /* bytes programmed now */
	_Atomic uint64_t tids_used; /* TID entries programmed now */
};

/*
 * A context's data counters, as an HCA's port counters (port_xmit_packets,
 * port_xmit_data, port_rcv_packets, port_rcv_data), but of one context and
 * in bytes of payload: a packet's header is not counted (sysfs's *_data
 * are 4-byte words of whole packets). The soft HFI's engine keeps them
 * (softhfi_verbs.h, struct softhfi_port); the storage belongs to the
 * caller, as the MR cache's does.
 *
 * One writer at a time: the context's engine lock (softhfi/engine.h,
 * e->lock) is held by whoever moves packets, the engine thread or a verb's
 * thread doing the engine's work (a send it posts, a poll that finds its
 * CQ empty). So each counter is a relaxed load and store under that lock,
 * no locked read-modify-write; readers load them relaxed, without it.
 */
struct hfi1_data_counters {
	/*
	 * Packets put on the context's links: requests, data, answers (an
	 * ACK that a polling requester reads in the link's doorbell is no
	 * packet, on either side).
	 */
	_Atomic uint64_t xmit_packets;
	_Atomic uint64_t xmit_bytes; /* their payload */
	/* Packets taken from its links, whatever became of them. */
	_Atomic uint64_t rcv_packets;
	_Atomic uint64_t rcv_bytes; /* their payload */
	/*
	 * Bytes moved into the pinned pages of a registered buffer through
	 * its TIDs (expected receive): RDMA WRITE payload, READ responses,
	 * SEND payload landing in posted receives, atomics' 8 bytes (the new
	 * value at the responder, the original one at the requester) and
	 * UD's 40 bytes of GRH. Not what was dropped (RNR, errors).
	 */
	_Atomic uint64_t placed_bytes;
};

struct hfi1_stats_file {
	char magic[8];
	uint32_t version;
	uint32_t size; /* sizeof(struct hfi1_stats_file) */
	uint64_t pid;
	uint64_t start_time; /* /proc/<pid>/stat field 22: tells pid reuse */
	uint64_t ctx_num;
	char device[64]; /* ibv device name */
	_Atomic uint64_t closed; /* 1 once the context was closed */
	_Atomic uint64_t limit_enabled, limit_max_entries, limit_max_bytes;
	struct hfi1_mrc_counters counters;
	/*
	 * The data counters start a cache line of their own (offset 256):
	 * the engine writes them per packet, the cache its own per
	 * registration, in other threads.
	 */
	uint64_t reserved[5];
	struct hfi1_data_counters data;
};

/* The layout is shared with other builds of the tool: no padding, fixed. */
_Static_assert(sizeof(struct hfi1_stats_file) == 296,
	       "struct hfi1_stats_file changed: bump HFI1_STATS_VERSION");
_Static_assert(offsetof(struct hfi1_stats_file, data) == 256,
	       "the data counters start a cache line");

/*
 * Field 22 of /proc/<pid>/stat (the start time in clock ticks since
 * boot), which tells a pid's new owner from its old; 0 or errno.
 */
int hfi1_stats_pid_start_time(long pid, uint64_t *start_time);

/*
 * What the readers of the files share (stats_file.c). The files sit in a
 * directory anyone may write (/dev/shm), so anything may be there under
 * their names.
 */
struct stat;

/*
 * A stats file's name, either form, parsed into its pid and context
 * number: false for other names. Digits only, no sign, no leading '+' or
 * spaces; a tag of exactly HFI1_STATS_TAG_LEN lowercase hex digits: as
 * the writer makes them.
 */
bool hfi1_stats_parse_name(const char *name, long *pid, uint64_t *n);

/*
 * Reads @name of @dirfd into @f, a copy, and its status into @st; checks
 * it before anyone uses it. The file is opened without following a link
 * or blocking (a FIFO), must be a regular file, is read with pread()
 * (never mapped: a file truncated under a mapping is SIGBUS), and must
 * have the magic, version and size of this build (a file of another
 * version is refused as such, whatever its length), the whole struct and
 * a header that matches its name. 0, or an errno with the
 * reason in @why (@whylen bytes; NULL and 0 for none).
 */
int hfi1_stats_read(int dirfd, const char *name, struct hfi1_stats_file *f,
		    struct stat *st, char *why, size_t whylen);

/* Does @pid run, and, unless @start_time is 0, is it the one started then? */
bool hfi1_stats_pid_alive(long pid, uint64_t start_time);

/*
 * The effective uid of process @pid (the "Uid:" line of
 * /proc/<pid>/status), whom the files it makes belong to: a file of its
 * pid that another user owns was put there by someone else. 0 or errno.
 */
int hfi1_stats_pid_uid(long pid, uid_t *uid);

/*
 * May @name of @dirfd be removed as a file of a process that is gone?
 * Only a regular file (never a link, a FIFO, ...) with a stats file's
 * name, owned by @owner ((uid_t)-1: by anyone), and then: when its name's
 * pid no longer runs, whole or half made; when that pid runs, only a
 * whole file that says another start time (the pid was reused) and that
 * the user of the process now at that pid owns. Never a file of a live
 * process, nor one another user made under a live process's name.
 */
bool hfi1_stats_stale(int dirfd, const char *name, uid_t owner);

#endif /* HFI1_STATS_FILE_H */
