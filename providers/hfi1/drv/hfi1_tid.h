/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The tidinfo word of TID_UPDATE, TID_FREE and TID_INVAL_READ: how the
 * hfi1 driver names one programmed RcvArray entry for expected receive
 * (the layout of its exp_rcv.h EXP_TID_* fields, which the UAPI headers do
 * not carry). Both sides of the driver interface use this one definition:
 * the soft HFI makes and checks tidinfos, the MR cache reads them.
 *
 *   LEN  bits 10:0   pages the entry maps
 *   CTRL bits 21:20  1: the even entry of a pair, 2: the odd one
 *   IDX  bits 31:22  the pair
 */
#ifndef HFI1_TID_H
#define HFI1_TID_H

#include <stdint.h>

#define HFI1_TID_LEN_SHIFT 0
#define HFI1_TID_LEN_MASK 0x7ffu
#define HFI1_TID_CTRL_SHIFT 20
#define HFI1_TID_CTRL_MASK 0x3u
#define HFI1_TID_IDX_SHIFT 22
#define HFI1_TID_IDX_MASK 0x3ffu
#define HFI1_TID_GET(tid, field) \
	(((tid) >> HFI1_TID_##field##_SHIFT) & HFI1_TID_##field##_MASK)

/* The tidinfo of RcvArray entry @rcventry mapping @npages pages. */
static inline uint32_t hfi1_tid_make(unsigned int rcventry, uint32_t npages)
{
	return (rcventry >> 1) << HFI1_TID_IDX_SHIFT |
	       (1u << (rcventry & 1)) << HFI1_TID_CTRL_SHIFT |
	       (npages & HFI1_TID_LEN_MASK) << HFI1_TID_LEN_SHIFT;
}

/*
 * The RcvArray entry a tidinfo names. Only for a tidinfo whose CTRL is 1
 * or 2 (a driver checks that first, and the entry against its count).
 */
static inline unsigned int hfi1_tid_rcventry(uint32_t tidinfo)
{
	return (HFI1_TID_GET(tidinfo, IDX) << 1) + HFI1_TID_GET(tidinfo, CTRL) -
	       1;
}

#endif /* HFI1_TID_H */
