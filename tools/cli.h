/* Shared command-line parsing for the frugal subcommands: typed flags, --config files, exit codes. */
#ifndef FRUGAL_CLI_H
#define FRUGAL_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "frugal/frugal.h"

/* exit statuses of every subcommand */
#define CLI_OK 0
#define CLI_FAIL 1  /* the run failed (I/O, device, numeric trouble) */
#define CLI_USAGE 2 /* bad flags, bad config keys, missing or unreadable input files */

enum cli_type { CLI_BOOL, CLI_STR, CLI_INT, CLI_FLOAT, CLI_STR_LIST };

struct cli_opt {
    const char *name;   /* long name without dashes, e.g. "device" */
    enum cli_type type;
    void *dest;         /* bool*, const char**, int64_t*, double*, struct cli_list* */
    const char *meta;   /* value placeholder for help, e.g. "D" */
    const char *help;
    bool seen;          /* set when given on the command line or in the config */
};

struct cli_list {
    const char **items;
    int n;
};

/* Parses argv[1..] against opts (terminated by a zero entry). `--help` prints usage and returns -1.
 * `--config FILE` (when an opt named "config" exists) loads INI keys `name = value` first; flags on
 * the command line override the file. Unknown flags/keys print one line naming them and return
 * CLI_USAGE. Positional arguments are refused unless `positional` is non-NULL. */
int cli_parse(const char *cmd, const char *usage, int argc, char **argv, struct cli_opt *opts,
              struct cli_list *positional);

/* Prints "frugal CMD: message" to stderr; returns `code`. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Opens the backend named by --device (NULL: FRUGAL_DEVICE or auto), printing the choice to stderr.
 * Returns CLI_OK or CLI_USAGE with the message printed. */
int cli_open_device(const char *cmd, const char *spec, int threads, struct fr_backend **out);

#endif
