/* Shared command-line parsing for the frugal subcommands: typed flags with ranges, aliases, --config files,
 * help, and the exit-code convention. */
#ifndef FRUGAL_CLI_H
#define FRUGAL_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "frugal/frugal.h"

/* Exit statuses of every subcommand (README "Exit codes"):
 *   0    success
 *   1    the run failed: writing a file (disk full, permissions), the device or driver, out of memory,
 *        training diverged (NaN)
 *   2    bad flags or config keys, bad or missing input files (data, checkpoints, model files, images)
 *   130  interrupted by SIGINT or SIGTERM (a training command saved its checkpoint first) */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_INTERRUPTED 130

/* Status of a library call -> exit code. Statuses about the request or an input file (invalid argument,
 * shape, format, not found, unsupported) are 2; an I/O error is a failed run (1): use cli_input_code where
 * the call was reading the user's input files. */
int cli_exit_code(enum fr_status st);
/* The same while reading inputs: I/O errors (missing, unreadable files) are 2; out of memory and device
 * failures stay 1. */
int cli_input_code(enum fr_status st);

enum cli_type { CLI_BOOL, CLI_STR, CLI_INT, CLI_FLOAT, CLI_STR_LIST, CLI_ALIAS };

/* One flag. The first six fields are positional; the optional checks after `seen` are set with the macros
 * below, e.g. {"epochs", CLI_INT, &n, "N", "training epochs", false, CLI_RANGE(1, 1000000)}.
 * Every range of every command is written this way, next to the flag, so `--help` and the checks agree. */
struct cli_opt {
    const char *name; /* long name without dashes, e.g. "device" */
    enum cli_type type;
    void *dest; /* bool*, const char**, int64_t*, double*, struct cli_list* */
    const char *meta; /* value placeholder for help, e.g. "D" */
    const char *help;
    bool seen; /* set when given on the command line or in a config file */
    /* optional checks */
    bool ranged;             /* CLI_INT / CLI_FLOAT value must lie in [min, max] */
    double min, max;
    bool min_open, max_open; /* exclusive bounds */
    const char *alias;       /* CLI_ALIAS: the flag this old spelling stands for */
    int source;              /* internal: which config file / the command line set it last */
};

/* inclusive range [lo, hi] */
#define CLI_RANGE(lo, hi) .ranged = true, .min = (lo), .max = (hi)
/* (lo, hi]: a positive quantity such as a learning rate */
#define CLI_ABOVE(lo, hi) .ranged = true, .min = (lo), .max = (hi), .min_open = true
/* [lo, hi): e.g. a probability that must stay below 1 */
#define CLI_BELOW(lo, hi) .ranged = true, .min = (lo), .max = (hi), .max_open = true
/* An old spelling kept working: `--old` acts as `--canonical` with a one-line deprecation note. */
#define CLI_DEPRECATED(old, canonical) {.name = (old), .type = CLI_ALIAS, .alias = (canonical)}

/* Largest thread count a command accepts (--threads, FRUGAL_THREADS). */
#define CLI_MAX_THREADS 1024

struct cli_list {
    const char **items;
    int n;
};

/* Parses argv[1..] against opts (terminated by a zero entry). `--help` prints usage and returns -1.
 * `--config FILE` (every command; repeatable, later files win) loads INI keys `name = value` first: keys
 * before any [section] apply to every command, keys in [CMD] only to CMD; within a file the last value of a
 * key wins; flags on the command line override every file. Unknown flags/keys, values out of range and
 * non-finite numbers print one line naming them and return CLI_USAGE. Positional arguments are refused
 * unless `positional` is non-NULL. */
int cli_parse(const char *cmd, const char *usage, int argc, char **argv, struct cli_opt *opts,
              struct cli_list *positional);

/* The option `name` of a parsed table (NULL if the table has none). */
struct cli_opt *cli_find(struct cli_opt *opts, const char *name);
/* CLI_USAGE with "--NAME has no effect in CMD: why" when option `name` was given, else CLI_OK. */
int cli_refuse(const char *cmd, struct cli_opt *opts, const char *name, const char *why);

/* Prints "frugal CMD: message" to stderr; returns `code`. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints "frugal CMD: warning: message" to stderr. */
void cli_warn(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks FRUGAL_THREADS and FRUGAL_DEBUG (a bad value is an error / a warning); exit code. */
int cli_check_env(const char *cmd);

/* Opens the backend named by --device (NULL: FRUGAL_DEVICE or auto), printing the choice to stderr once.
 * Returns CLI_OK or CLI_USAGE with the message printed. */
int cli_open_device(const char *cmd, const char *spec, int threads, struct fr_backend **out);

/* Prints `s` padded (or cut at a character boundary) to `width` terminal columns; UTF-8 aware. */
void cli_print_padded(const char *s, int width);

#endif
