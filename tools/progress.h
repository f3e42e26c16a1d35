/* Progress reporting for long CLI runs on stderr: a redrawn bar when stderr is a terminal, plain periodic
 * lines otherwise; plus the per-epoch summary line. Plugs into struct fr_fit_opts callbacks. */
#ifndef FRUGAL_TOOLS_PROGRESS_H
#define FRUGAL_TOOLS_PROGRESS_H

#include <stdbool.h>

#include "frugal/recipes.h"

struct progress {
    const char *cmd;   /* "train": prefix of every line */
    const char *stage; /* optional: "teacher", "round 1" */
    bool tty, quiet, drawn;
    double last, interval; /* seconds between plain lines */
};

void progress_init(struct progress *p, const char *cmd, const char *stage);
/* fr_fit callbacks; user = struct progress * */
void progress_step(void *user, const struct fr_fit_progress *fp);
void progress_epoch(void *user, const struct fr_epoch_stats *e);
/* ends a drawn bar line */
void progress_done(struct progress *p);
/* "1:05" style duration */
const char *progress_fmt_time(double s, char *buf, int size);

#endif
