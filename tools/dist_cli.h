/* The CLI under mpirun: the job around every subcommand (rank 0 alone prints; the other ranks' output is kept
 * back and shown only when they fail), agreement after the steps where ranks can differ (device, data, model),
 * and `frugal devices` for every rank. Without mpirun the job is one process and these change nothing. */
#ifndef FRUGAL_TOOLS_DIST_CLI_H
#define FRUGAL_TOOLS_DIST_CLI_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct fr_backend;

/* Joins the job before anything else; an exit code (2 when mpirun started a build without MPI: printed by rank 0). */
int dcli_init(void);
/* Ends the job with this rank's exit code; returns the job's (the same on every rank). */
int dcli_finish(int rc);
/* Number of ranks and this rank. */
int dcli_size(void);
int dcli_rank(void);
/* Every rank's exit code of one step: the first failing rank's (its message printed by rank 0), else CLI_OK. */
int dcli_agree(const char *cmd, int rc);
/* After the device is opened (rc = CLI_OK and *be, or the failure): agreement, then rank 0 lists every rank's
 * device when there are several. */
int dcli_device(const char *cmd, int rc, struct fr_backend *be);
/* `frugal devices` with several ranks: every rank's JSON object (root, consumed) gathered; rank 0 prints them as
 * {"command": "devices", "ranks": [{"rank", "host", ...}]} or as a table per rank. Returns the exit code. */
int dcli_devices(cJSON *root, bool json);
/* After training on several ranks: "ranks" and "batch_shares" (every rank's rows of a batch) into the JSON object,
 * and a line on stderr when --balance speed split the batch unequally. Every rank calls it. */
struct fr_fit_result;
void dcli_fit_report(const char *cmd, cJSON *o, const struct fr_fit_result *fit);

#endif
