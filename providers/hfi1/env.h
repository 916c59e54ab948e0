/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The provider's environment variables: its configuration, read when a
 * context is opened. The units they configure (the MR cache) read none.
 */
#ifndef HFI1_ENV_H
#define HFI1_ENV_H

#include "mr_cache.h" /* struct hfi1_mrc_limits */

/*
 * The MR cache's limits: defaults, then the documented environment
 * variables:
 *   HFI1_MR_CACHE=0|1                 (default 1)
 *   HFI1_MR_CACHE_MAX_ENTRIES=N       (default 1024)
 *   HFI1_MR_CACHE_MAX_BYTES=N[KMG]    (default 0, no limit beyond the pin limit)
 * A malformed value is ignored with a warning through @log (levels are
 * VERBS_LOG_*'s).
 */
void hfi1_env_mr_cache_limits(struct hfi1_mrc_limits *limits,
			      void (*log)(void *arg, int level,
					  const char *msg),
			      void *arg);

#endif /* HFI1_ENV_H */
