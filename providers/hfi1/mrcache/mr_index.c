// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The MR cache's interval index: an AVL tree of caller-embedded entries
 * ordered by (start, end, address), each node keeping its subtree's height
 * and largest end. See mr_index.h; the caller holds the cache's lock
 * around every call.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "mr_index.h"

struct key {
	uint64_t start, end;
	uintptr_t addr;
};

static struct key key_of(const struct mr_index_entry *e)
{
	return (struct key){ e->start, e->end, (uintptr_t)e };
}

static int key_cmp(const struct key *a, const struct key *b)
{
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	return 0;
}

static int height(const struct mr_index_entry *n)
{
	return n ? n->height : 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void update(struct mr_index_entry *n)
{
	int hl = height(n->left), hr = height(n->right);

	n->height = 1 + (hl > hr ? hl : hr);
	n->max_end = n->end;
	if (n->left)
		n->max_end = max_u64(n->max_end, n->left->max_end);
	if (n->right)
		n->max_end = max_u64(n->max_end, n->right->max_end);
}

static struct mr_index_entry *rotate_right(struct mr_index_entry *n)
{
	struct mr_index_entry *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct mr_index_entry *rotate_left(struct mr_index_entry *n)
{
	struct mr_index_entry *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

/* Restore the AVL balance at @n, whose subtrees are balanced. */
static struct mr_index_entry *rebalance(struct mr_index_entry *n)
{
	int bf;

	update(n);
	bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

static struct mr_index_entry *
insert(struct mr_index_entry *n, struct mr_index_entry *e, const struct key *k)
{
	struct key nk;

	if (!n)
		return e;
	nk = key_of(n);
	if (key_cmp(k, &nk) < 0)
		n->left = insert(n->left, e, k);
	else
		n->right = insert(n->right, e, k);
	return rebalance(n);
}

int mr_index_insert(struct mr_index *idx, struct mr_index_entry *e)
{
	struct key k = key_of(e);

	if (e->end <= e->start)
		return -EINVAL;
	e->left = e->right = NULL;
	update(e);
	idx->root = insert(idx->root, e, &k);
	idx->count++;
	return 0;
}

/* Unlink the leftmost node of @n into *@min; the new subtree root. */
static struct mr_index_entry *remove_min(struct mr_index_entry *n,
					 struct mr_index_entry **min)
{
	if (!n->left) {
		*min = n;
		return n->right;
	}
	n->left = remove_min(n->left, min);
	return rebalance(n);
}

static struct mr_index_entry *
erase(struct mr_index_entry *n, struct mr_index_entry *e, const struct key *k)
{
	struct key nk = key_of(n);
	int c = key_cmp(k, &nk);
	struct mr_index_entry *m, *r;

	if (c < 0) {
		n->left = erase(n->left, e, k);
	} else if (c > 0) {
		n->right = erase(n->right, e, k);
	} else {
		if (!n->left)
			return n->right;
		if (!n->right)
			return n->left;
		r = remove_min(n->right, &m);
		m->left = n->left;
		m->right = r;
		n = m;
	}
	return rebalance(n);
}

void mr_index_remove(struct mr_index *idx, struct mr_index_entry *e)
{
	struct key k = key_of(e);

	idx->root = erase(idx->root, e, &k);
	idx->count--;
	e->left = e->right = NULL;
}

static bool better(const struct mr_index_entry *a,
		   const struct mr_index_entry *b)
{
	uint64_t la = a->end - a->start, lb;

	if (!b)
		return true;
	lb = b->end - b->start;
	if (la != lb)
		return la < lb;
	return a->start < b->start;
}

static void find_covering(const struct mr_index_entry *n, uint64_t start,
			  uint64_t end, uint32_t access,
			  const struct mr_index_entry **best)
{
	/* Every entry in a subtree visited with start <= @start fails only
	 * on access, so the walk costs O((covering + 1) * height).
	 */
	while (n && n->max_end >= end) {
		find_covering(n->left, start, end, access, best);
		/* The right subtree only holds starts >= n->start. */
		if (n->start > start)
			return;
		if (n->end >= end && (n->access & access) == access &&
		    better(n, *best))
			*best = n;
		n = n->right;
	}
}

struct mr_index_entry *mr_index_find_covering(const struct mr_index *idx,
					      uint64_t start, uint64_t end,
					      uint32_t access)
{
	const struct mr_index_entry *best = NULL;

	if (end <= start)
		return NULL;
	find_covering(idx->root, start, end, access, &best);
	return (struct mr_index_entry *)best;
}

/* The lowest-keyed entry above @after (if any) overlapping [start, end). */
static struct mr_index_entry *next_overlapping(struct mr_index_entry *n,
					       uint64_t start, uint64_t end,
					       const struct key *after)
{
	struct mr_index_entry *r;
	struct key nk;

	while (n && n->max_end > start) {
		nk = key_of(n);
		if (!after || key_cmp(&nk, after) > 0) {
			r = next_overlapping(n->left, start, end, after);
			if (r)
				return r;
			if (n->start < end && n->end > start)
				return n;
		}
		if (n->start >= end)
			return NULL;
		n = n->right;
	}
	return NULL;
}

int mr_index_for_each_overlapping(struct mr_index *idx, uint64_t start,
				  uint64_t end, mr_index_cb cb, void *arg)
{
	struct mr_index_entry *e;
	struct key k;
	int ret;

	if (end <= start)
		return 0;
	for (e = next_overlapping(idx->root, start, end, NULL); e;
	     e = next_overlapping(idx->root, start, end, &k)) {
		/* Keep the key: @cb may remove @e. */
		k = key_of(e);
		ret = cb(e, arg);
		if (ret)
			return ret;
	}
	return 0;
}

/* The subtree's height, or -1 if an invariant fails. */
static int check(const struct mr_index_entry *n, const struct key *lo,
		 const struct key *hi, size_t *count)
{
	struct key k;
	int hl, hr;
	uint64_t max_end;

	if (!n)
		return 0;
	k = key_of(n);
	if (n->end <= n->start) {
		fprintf(stderr, "mr_index: empty range at %p\n", (void *)n);
		return -1;
	}
	if ((lo && key_cmp(&k, lo) <= 0) || (hi && key_cmp(&k, hi) >= 0)) {
		fprintf(stderr, "mr_index: order broken at %p\n", (void *)n);
		return -1;
	}
	hl = check(n->left, lo, &k, count);
	hr = check(n->right, &k, hi, count);
	if (hl < 0 || hr < 0)
		return -1;
	if (hl - hr > 1 || hr - hl > 1) {
		fprintf(stderr, "mr_index: unbalanced at %p (%d, %d)\n",
			(void *)n, hl, hr);
		return -1;
	}
	if (n->height != 1 + (hl > hr ? hl : hr)) {
		fprintf(stderr, "mr_index: height %d wrong at %p\n", n->height,
			(void *)n);
		return -1;
	}
	max_end = n->end;
	if (n->left)
		max_end = max_u64(max_end, n->left->max_end);
	if (n->right)
		max_end = max_u64(max_end, n->right->max_end);
	if (n->max_end != max_end) {
		fprintf(stderr, "mr_index: max_end %#llx wrong at %p\n",
			(unsigned long long)n->max_end, (void *)n);
		return -1;
	}
	(*count)++;
	return n->height;
}

int mr_index_check(const struct mr_index *idx)
{
	size_t count = 0;

	if (check(idx->root, NULL, NULL, &count) < 0)
		return -1;
	if (count != idx->count) {
		fprintf(stderr, "mr_index: count %zu, %zu nodes\n", idx->count,
			count);
		return -1;
	}
	return 0;
}
