// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_mrstat: the MR cache counters and data counters of libhfi1's
 * contexts, read from the per-context stats files
 * (providers/hfi1/hfi1_stats_file.h).
 *
 *   hfi1_mrstat [-d DIR] [-p PID] [--json]     live contexts (of PID)
 *   hfi1_mrstat [-d DIR] [--json] -- CMD ...   the final counters of a run
 *   hfi1_mrstat [-d DIR] --clean               remove stale files
 *
 * The files sit in a world-writable directory (/dev/shm), so anything
 * may be there under their names: each is read into a copy and checked
 * before use (hfi1_stats_read()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hfi1_stats_file.h"

struct ctx {
	char name[NAME_MAX + 1];
	struct hfi1_stats_file f; /* a checked copy */
	uid_t uid; /* the file's owner */
};

struct options {
	const char *dir;
	long pid; /* 0: every process */
	bool json;
};

static const char *prog = "hfi1_mrstat";

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s [-d DIR] [-p PID] [--json]\n"
		"       %s [-d DIR] [-p PID] [--json] -- CMD [ARGS...]\n"
		"       %s [-d DIR] --clean\n"
		"Prints the MR cache counters and data counters of libhfi1's\n"
		"contexts: the live ones (of PID), or those CMD and its children\n"
		"opened. --clean removes the files of processes that are gone.\n"
		"DIR: $HFI1_STATS_DIR, else %s.\n",
		prog, prog, prog, HFI1_STATS_DEFAULT_DIR);
}

static bool is_stats_name(const char *name)
{
	size_t len = strlen(name);

	return !strncmp(name, HFI1_STATS_NAME_PREFIX,
			strlen(HFI1_STATS_NAME_PREFIX)) &&
	       len > strlen(HFI1_STATS_NAME_SUFFIX) &&
	       !strcmp(name + len - strlen(HFI1_STATS_NAME_SUFFIX),
		       HFI1_STATS_NAME_SUFFIX);
}

/*
 * Reads and checks @name of @dirfd into @c. 0, or a reason it is not a
 * stats file (written to @why).
 */
static int load(int dirfd, const char *name, struct ctx *c, char *why,
		size_t whylen)
{
	struct stat st;
	int err;

	err = hfi1_stats_read(dirfd, name, &c->f, &st, why, whylen);
	if (err)
		return err;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->uid = st.st_uid;
	return 0;
}

/*
 * Does the user of @c's live process own @c's file? Anyone may make a
 * file in @dir under the name of another user's process, and fill it
 * with counters of their choosing: such a file is not the process's, and
 * @why says so.
 */
static bool owned_by_process(const struct ctx *c, char *why, size_t whylen)
{
	uid_t uid;
	int err;

	err = hfi1_stats_pid_uid(c->f.pid, &uid);
	if (err) {
		snprintf(why, whylen, "the user of pid %" PRIu64 ": %s",
			 c->f.pid, strerror(err));
		return false;
	}
	if (uid != c->uid) {
		snprintf(
			why, whylen,
			"owned by uid %u, not by uid %u, the user of pid %" PRIu64,
			(unsigned int)c->uid, (unsigned int)uid, c->f.pid);
		return false;
	}
	return true;
}

static int cmp_ctx(const void *a, const void *b)
{
	const struct ctx *x = a, *y = b;

	if (x->f.pid != y->f.pid)
		return x->f.pid < y->f.pid ? -1 : 1;
	if (x->f.ctx_num != y->f.ctx_num)
		return x->f.ctx_num < y->f.ctx_num ? -1 : 1;
	return 0;
}

/*
 * The valid stats files of @dir (of @pid unless 0; of live processes
 * only when @live, and only those their user owns). Bad ones are reported
 * on stderr; @stale counts the files of processes that are gone. 0 or an
 * errno (reported). Without @live (the directory of a run, which only
 * its user may write) the processes are gone and their users unknown.
 */
static int scan(const char *dir, long pid, bool live, struct ctx **out,
		size_t *count, size_t *stale)
{
	struct ctx *v = NULL, *grown;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char why[160];
	DIR *d;

	*out = NULL;
	*count = 0;
	*stale = 0;
	d = opendir(dir);
	if (!d) {
		int err = errno;

		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(err));
		return err;
	}
	while ((de = readdir(d))) {
		if (!is_stats_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown) {
				free(v);
				closedir(d);
				fprintf(stderr, "%s: out of memory\n", prog);
				return ENOMEM;
			}
			v = grown;
		}
		if (load(dirfd(d), de->d_name, &v[n], why, sizeof(why))) {
			fprintf(stderr, "%s: %s/%s: %s, skipped\n", prog, dir,
				de->d_name, why);
			continue;
		}
		if (pid && v[n].f.pid != (uint64_t)pid)
			continue;
		if (live &&
		    !hfi1_stats_pid_alive(v[n].f.pid, v[n].f.start_time)) {
			(*stale)++;
			continue;
		}
		if (live && !owned_by_process(&v[n], why, sizeof(why))) {
			fprintf(stderr, "%s: %s/%s: %s, skipped\n", prog, dir,
				de->d_name, why);
			continue;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_ctx);
	*out = v;
	*count = n;
	return 0;
}

/* The device name as printable ASCII: the file may hold anything. */
static void printable(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i]; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = 0;
}

static uint64_t ld(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

#define COUNTERS(X)           \
	X(hits)               \
	X(misses)             \
	X(evictions)          \
	X(invalidations)      \
	X(invalidated_in_use) \
	X(failures)           \
	X(entries)            \
	X(idle_entries)       \
	X(pinned_bytes)       \
	X(tids_used)

/* The data counters (struct hfi1_data_counters): payload bytes. */
#define DATA_COUNTERS(X) \
	X(xmit_packets)  \
	X(xmit_bytes)    \
	X(rcv_packets)   \
	X(rcv_bytes)     \
	X(placed_bytes)

static void print_text(const char *dir, const struct ctx *v, size_t n)
{
	char dev[sizeof(v->f.device)];
	size_t i;

	for (i = 0; i < n; i++) {
		const struct hfi1_stats_file *f = &v[i].f;
		const struct hfi1_mrc_counters *c = &f->counters;
		uint64_t hits = ld(&c->hits), misses = ld(&c->misses);

		printable(dev, f->device, sizeof(dev));
		printf("%spid %" PRIu64 " context %" PRIu64
		       " device %s (%s)\n  file %s/%s\n",
		       i ? "\n" : "", f->pid, f->ctx_num, dev,
		       ld(&f->closed) ? "closed" : "open", dir, v[i].name);
#define X(name) printf("  %-20s %20" PRIu64 "\n", #name, ld(&c->name));
		COUNTERS(X)
#undef X
		if (hits + misses)
			printf("  %-20s %20.4f\n", "hit_ratio",
			       (double)hits / (double)(hits + misses));
		else
			printf("  %-20s %20s\n", "hit_ratio", "-");
		printf("  %-20s %20s\n", "cache",
		       ld(&f->limit_enabled) ? "enabled" : "disabled");
		printf("  %-20s %20" PRIu64 "%s\n", "max_entries",
		       ld(&f->limit_max_entries),
		       ld(&f->limit_max_entries) ? "" : " (no limit)");
		printf("  %-20s %20" PRIu64 "%s\n", "max_bytes",
		       ld(&f->limit_max_bytes),
		       ld(&f->limit_max_bytes) ? "" : " (no limit)");
#define X(name) printf("  %-20s %20" PRIu64 "\n", #name, ld(&f->data.name));
		DATA_COUNTERS(X)
#undef X
	}
}

/* A JSON string of printable ASCII (see printable()). */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void print_json(const char *dir, const struct ctx *v, size_t n)
{
	char dev[sizeof(v->f.device)], path[PATH_MAX + NAME_MAX + 2];
	size_t i;

	printf("{\"contexts\": [");
	for (i = 0; i < n; i++) {
		const struct hfi1_stats_file *f = &v[i].f;
		const struct hfi1_mrc_counters *c = &f->counters;
		uint64_t hits = ld(&c->hits), misses = ld(&c->misses);
		const char *sep = "";

		printf("%s\n  {\"file\": ", i ? "," : "");
		snprintf(path, sizeof(path), "%s/%s", dir, v[i].name);
		printable(path, path, sizeof(path));
		json_string(path);
		printable(dev, f->device, sizeof(dev));
		printf(", \"pid\": %" PRIu64 ", \"context\": %" PRIu64
		       ", \"device\": ",
		       f->pid, f->ctx_num);
		json_string(dev);
		printf(", \"closed\": %s, \"counters\": {",
		       ld(&f->closed) ? "true" : "false");
#define X(name)                                                 \
	printf("%s\"" #name "\": %" PRIu64, sep, ld(&c->name)); \
	sep = ", ";
		COUNTERS(X)
#undef X
		if (hits + misses)
			printf("}, \"hit_ratio\": %.6f",
			       (double)hits / (double)(hits + misses));
		else
			printf("}, \"hit_ratio\": null");
		printf(", \"limits\": {\"enabled\": %s, \"max_entries\": %" PRIu64
		       ", \"max_bytes\": %" PRIu64 "}, \"data\": {",
		       ld(&f->limit_enabled) ? "true" : "false",
		       ld(&f->limit_max_entries), ld(&f->limit_max_bytes));
		sep = "";
#define X(name)                                                      \
	printf("%s\"" #name "\": %" PRIu64, sep, ld(&f->data.name)); \
	sep = ", ";
		DATA_COUNTERS(X)
#undef X
		printf("}}");
	}
	printf("%s]}\n", n ? "\n" : "");
}

static int show(const struct options *o, const char *dir, bool live)
{
	size_t n, stale;
	struct ctx *v;
	int err;

	err = scan(dir, o->pid, live, &v, &n, &stale);
	if (err)
		return err;
	if (o->json)
		print_json(dir, v, n);
	else
		print_text(dir, v, n);
	if (!n && !o->json)
		fprintf(stderr, "%s: no %scontexts%s in %s\n", prog,
			live ? "live " : "", o->pid ? " of that pid" : "", dir);
	if (stale)
		fprintf(stderr,
			"%s: %zu stale file(s) in %s (hfi1_mrstat --clean removes them)\n",
			prog, stale, dir);
	free(v);
	/* Asked about one process and found nothing: say so to scripts. */
	return !n && o->pid ? ESRCH : 0;
}

/*
 * Removes the stats files of processes that are gone (hfi1_stats_stale()):
 * root's --clean (hfi1-soft down runs it) removes every user's, anyone
 * else's only their own, which are all they could remove from a sticky
 * directory anyway. A file of a live process stays, kept
 * (HFI1_STATS_KEEP=1) or half made, and so does anything that is not a
 * regular file.
 */
static int clean(const char *dir)
{
	uid_t owner = geteuid() ? geteuid() : (uid_t)-1;
	int ret = 0, removed = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		if (!hfi1_stats_stale(dirfd(d), de->d_name, owner))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) && errno != ENOENT) {
			fprintf(stderr, "%s: %s/%s: %s\n", prog, dir,
				de->d_name, strerror(errno));
			ret = 1;
			continue;
		}
		printf("removed %s/%s\n", dir, de->d_name);
		removed++;
	}
	closedir(d);
	printf("%d stale file(s) removed from %s\n", removed, dir);
	return ret;
}

static volatile sig_atomic_t child_pid;

/* SIGTERM and SIGHUP go on to CMD, which ends the run as it decides. */
static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void remove_dir(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0))
			fprintf(stderr, "%s: %s/%s: %s\n", prog, dir,
				de->d_name, strerror(errno));
	}
	if (d)
		closedir(d);
	if (rmdir(dir))
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
}

/*
 * Runs @argv with its stats files in a directory of its own, kept at
 * close, then prints them all (whatever became of the processes) and
 * removes the directory. CMD's exit status, 128 + signal if killed.
 */
static int run(const struct options *o, const char *base, char **argv)
{
	struct sigaction ign = { .sa_handler = SIG_IGN },
			 fwd = { .sa_handler = forward }, old_int, old_quit,
			 old_term, old_hup;
	char tmp[PATH_MAX], abs_base[PATH_MAX];
	int status, ret;
	pid_t pid;

	/* CMD may change directory: its HFI1_STATS_DIR must be absolute. */
	if (!realpath(base, abs_base)) {
		fprintf(stderr, "%s: %s: %s\n", prog, base, strerror(errno));
		return 1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s/hfi1_mrstat.XXXXXX", abs_base) >=
	    (int)sizeof(tmp)) {
		fprintf(stderr, "%s: %s: %s\n", prog, base,
			strerror(ENAMETOOLONG));
		return 1;
	}
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "%s: cannot make a directory in %s: %s\n", prog,
			base, strerror(errno));
		return 1;
	}
	fflush(NULL);
	/* As system() does: ^C and ^\ are CMD's; we stay to report. */
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	sigaction(SIGTERM, &fwd, &old_term);
	sigaction(SIGHUP, &fwd, &old_hup);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		rmdir(tmp);
		return 1;
	}
	if (pid == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
		if (setenv("HFI1_STATS_DIR", tmp, 1) ||
		    setenv("HFI1_STATS_KEEP", "1", 1) ||
		    setenv("HFI1_STATS", "1", 1)) {
			fprintf(stderr, "%s: setenv: %s\n", prog,
				strerror(errno));
			_exit(127);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s: %s\n", prog, argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	child_pid = pid;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "%s: waitpid: %s\n", prog,
				strerror(errno));
			status = 1 << 8;
			break;
		}
	}
	child_pid = 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);

	show(o, tmp, false);
	remove_dir(tmp);
	if (WIFSIGNALED(status))
		ret = 128 + WTERMSIG(status);
	else
		ret = WEXITSTATUS(status);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "clean", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct options o = {};
	bool do_clean = false;
	char *end;
	int opt;

	/* '+': the options of CMD are CMD's. */
	while ((opt = getopt_long(argc, argv, "+d:p:jch", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'd':
			o.dir = optarg;
			break;
		case 'p':
			errno = 0;
			o.pid = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || o.pid <= 0 ||
			    o.pid > INT_MAX) {
				fprintf(stderr, "%s: bad pid '%s'\n", prog,
					optarg);
				return 2;
			}
			break;
		case 'j':
			o.json = true;
			break;
		case 'c':
			do_clean = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.dir) {
		o.dir = getenv("HFI1_STATS_DIR");
		if (!o.dir || !*o.dir)
			o.dir = HFI1_STATS_DEFAULT_DIR;
	}
	if (do_clean) {
		if (optind < argc || o.pid || o.json) {
			usage(stderr);
			return 2;
		}
		return clean(o.dir);
	}
	if (optind < argc)
		return run(&o, o.dir, argv + optind);
	return show(&o, o.dir, true) ? 1 : 0;
}
