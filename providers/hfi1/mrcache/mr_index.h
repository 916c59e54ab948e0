/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The MR cache's interval index: cache entries over page-aligned
 * [start, end) with an access-flags word each, kept in an AVL tree ordered
 * by (start, end, address of the entry) whose nodes also keep the largest
 * end in their subtree (an interval tree). Entries may overlap each other
 * and may even be equal in range: two registrations of the same buffer
 * with different access are two entries.
 *
 * The entry is embedded by the caller (struct mr_index_entry inside its
 * cache entry; container_of() gets back to it): the index allocates
 * nothing. It knows no ibverbs type.
 *
 * Locking: the index is not thread-safe. Every function here must be
 * called with the lock that guards the index held by the caller (the MR
 * cache's lock, which the cache takes around lookup, insertion, removal
 * and invalidation); the callback of mr_index_for_each_overlapping() runs
 * under that same lock.
 *
 * Costs, n entries: insert and remove O(log n); find_covering
 * O((k + 1) log n) for k covering entries; for_each_overlapping
 * O((m + 1) log n) for m overlapping entries.
 */
#ifndef HFI1_MR_INDEX_H
#define HFI1_MR_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct mr_index_entry {
	/* Set by the caller before insertion; constant while inserted. */
	uint64_t start; /* page-aligned, inclusive */
	uint64_t end; /* page-aligned, exclusive, > start */
	uint32_t access; /* access flags, a bit set */

	/* Private to the index. */
	struct mr_index_entry *left, *right;
	uint64_t max_end; /* the largest end in this subtree */
	int height; /* of this subtree, a leaf is 1 */
};

struct mr_index {
	struct mr_index_entry *root;
	size_t count;
};

#define MR_INDEX_INIT   \
	{               \
		NULL, 0 \
	}

static inline void mr_index_init(struct mr_index *idx)
{
	idx->root = NULL;
	idx->count = 0;
}

static inline size_t mr_index_count(const struct mr_index *idx)
{
	return idx->count;
}

/*
 * Insert @e with its start, end and access set; 0, or -EINVAL if the range
 * is empty (end <= start). @e must not be in an index already.
 */
int mr_index_insert(struct mr_index *idx, struct mr_index_entry *e);

/* Remove @e, which must be in @idx. */
void mr_index_remove(struct mr_index *idx, struct mr_index_entry *e);

/*
 * An entry with entry->start <= start, end <= entry->end and
 * (entry->access & access) == access; of several, the smallest (shortest
 * range; on a tie, the lowest start). NULL if none or if end <= start.
 */
struct mr_index_entry *mr_index_find_covering(const struct mr_index *idx,
					      uint64_t start, uint64_t end,
					      uint32_t access);

/*
 * Call @cb for every entry overlapping [start, end) (entry->start < end and
 * start < entry->end), in (start, end) order. @cb may remove the entry it
 * is given from the index (and only that one: no other change to the index
 * during the walk); a nonzero return from @cb stops the walk and is
 * returned. Returns 0 after a complete walk.
 */
typedef int (*mr_index_cb)(struct mr_index_entry *e, void *arg);
int mr_index_for_each_overlapping(struct mr_index *idx, uint64_t start,
				  uint64_t end, mr_index_cb cb, void *arg);

/*
 * Check the tree's invariants (order, AVL balance and heights, max_end,
 * count); 0 if they hold, else -1 with what is wrong written to stderr.
 * O(n), for tests.
 */
int mr_index_check(const struct mr_index *idx);

#endif /* HFI1_MR_INDEX_H */
