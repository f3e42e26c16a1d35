/* Shared pieces of the recipe subcommands (train, finetune, distill, pseudo-label, noisy-student, eval,
 * predict, demo): common flags, datasets by spec with limits and class filters, fit options from flags,
 * SIGINT handling, the device/fallback report and JSON helpers. */
#ifndef FRUGAL_TOOLS_RECIPE_CLI_H
#define FRUGAL_TOOLS_RECIPE_CLI_H

#include <cjson/cJSON.h>
#include <signal.h>

#include "cli.h"
#include "frugal/recipes.h"
#include "progress.h"

struct rc_common {
    const char *device, *config, *out;
    int64_t seed, threads;
    bool json;
};

struct rc_data {
    const char *data, *test, *classes;
    int64_t labels, val, train_limit, test_limit;
    const char *size, *on_bad_image; /* image flags (RC_IMAGE_OPTS) */
    int64_t channels;
    int in_c, in_h, in_w; /* input of a model already loaded (teacher, checkpoint): the default image size */
};

struct rc_fit {
    const char *model, *optimizer, *schedule, *augment, *resume, *balance;
    int64_t epochs, batch, warmup;
    double lr, weight_decay, momentum, cutmix, mixup, label_smoothing;
    bool profile, sync_bn;
};

#define RC_COMMON_OPTS(c)                                                                                         \
    {"device", CLI_STR, &(c)->device, "D", "auto | cpu | cl:P:D (default: FRUGAL_DEVICE or auto)", false},       \
        {"seed", CLI_INT, &(c)->seed, "N", "seed of splits, initialisation, shuffling, augmentation (1)", false}, \
        {"threads", CLI_INT, &(c)->threads, "N", "CPU threads (default: FRUGAL_THREADS or all cores)", false},   \
        {"config", CLI_STR, &(c)->config, "FILE", "INI file of flags (key = value); flags override it", false},   \
        {"json", CLI_BOOL, &(c)->json, NULL, "print the final results as one JSON object on stdout", false}

#define RC_DATA_OPTS(d)                                                                                             \
    {"data", CLI_STR, &(d)->data, "SPEC", "training data: fmnist | idx:IMG,LAB | folder:DIR | csv:FILE", false},   \
        {"test", CLI_STR, &(d)->test, "SPEC", "test data (default: fmnist:test for fmnist, else none)", false},     \
        {"labels", CLI_INT, &(d)->labels, "N", "label budget, class-balanced, validation included (0 = all)", false}, \
        {"val", CLI_INT, &(d)->val, "N", "validation images carved from the budget (default budget/10)", false},   \
        {"classes", CLI_STR, &(d)->classes, "LIST", "use only these classes, renumbered (e.g. 5-9 or 0,2,4)", false}, \
        {"train-limit", CLI_INT, &(d)->train_limit, "N", "use only the first N training images", false},          \
        {"test-limit", CLI_INT, &(d)->test_limit, "N", "use only the first N test images", false},                \
        RC_IMAGE_OPTS(d)

/* How images are read: size, channels, unreadable files (train, test and eval data alike). */
#define RC_IMAGE_OPTS(d)                                                                                           \
    {"size", CLI_STR, &(d)->size, "H[xW]", "resize images to H×W (shorter side, centre crop; default: native)", false}, \
        {"channels", CLI_INT, &(d)->channels, "C", "image channels 1..4 (default: 3 if any image has colour, else 1)",  \
         false},                                                                                                    \
        {"on-bad-image", CLI_STR, &(d)->on_bad_image, "stop|skip", "an unreadable image stops the run (default) or is " \
         "skipped, named once", false}

#define RC_FIT_OPTS(f)                                                                                            \
    {"epochs", CLI_INT, &(f)->epochs, "N", "training epochs (10)", false},                                             \
        {"batch", CLI_INT, &(f)->batch, "N", "batch size (64)", false},                                           \
        {"optimizer", CLI_STR, &(f)->optimizer, "NAME", "sgd | adam | adamw (adamw)", false},                     \
        {"lr", CLI_FLOAT, &(f)->lr, "X", "base learning rate (0.002; sgd: 0.05)", false},                         \
        {"schedule", CLI_STR, &(f)->schedule, "S", "constant | step:SIZE:GAMMA | cosine (cosine)", false},         \
        {"warmup", CLI_INT, &(f)->warmup, "N", "linear warm-up steps (0)", false},                                \
        {"weight-decay", CLI_FLOAT, &(f)->weight_decay, "X", "weight decay (5e-4)", false},                       \
        {"momentum", CLI_FLOAT, &(f)->momentum, "X", "SGD momentum (0.9)", false},                                \
        {"augment", CLI_STR, &(f)->augment, "POLICY",                                                             \
         "policy, as frugal augment --policy: 'randaugment(n=2,m=9);cutmix(alpha=1)', normalize(...) (none)", false}, \
        {"cutmix", CLI_FLOAT, &(f)->cutmix, "ALPHA", "= cutmix(alpha=ALPHA) in --augment (0 = off); with --mixup the two "  \
         "alternate per step", false},                                                                           \
        {"mixup", CLI_FLOAT, &(f)->mixup, "ALPHA", "= mixup(alpha=ALPHA) in --augment (0 = off)", false},         \
        {"label-smoothing", CLI_FLOAT, &(f)->label_smoothing, "X", "label smoothing (0)", false},                 \
        {"resume", CLI_STR, &(f)->resume, "CKPT", "continue a run from its checkpoint", false},                   \
        {"profile", CLI_BOOL, &(f)->profile, NULL, "print each op's share of a step, launches, work-items", false}, \
        RC_DIST_OPTS(f)

/* several ranks (mpirun): how each batch is split */
#define RC_DIST_OPTS(f)                                                                                          \
    {"balance", CLI_STR, &(f)->balance, "equal|speed", "under mpirun: split each batch equally (default) or by "  \
     "each rank's measured speed", false},                                                                        \
        {"sync-bn", CLI_BOOL, &(f)->sync_bn, NULL, "under mpirun: batch-norm statistics of the whole batch (default: " \
         "each rank's share)", false}

void rc_defaults(struct rc_common *c, struct rc_data *d, struct rc_fit *f);

/* frugal status -> exit code: missing/malformed input files are usage errors (2), the rest run failures (1) */
int rc_exit_code(enum fr_status st);
/* prints "frugal CMD: <last error>" and returns the exit code for st */
int rc_fail(const char *cmd, enum fr_status st);

/* Dataset options from the image flags of d (NULL = defaults), with d's model input as the default size. Exit code. */
int rc_image_opts(const char *cmd, const struct rc_data *d, struct fr_dataset_opts *o);
/* When path is a frugal checkpoint, its input size becomes d's default image size (as if a model were loaded). */
void rc_checkpoint_input(const char *path, struct rc_data *d);
/* Opens a dataset spec ("fmnist:test" etc.) with the image flags of d, keeps the first `limit` images (0 = all). Exit
 * code. */
int rc_open_dataset(const char *cmd, const char *spec, int64_t limit, const struct rc_data *d, struct fr_dataset **out);
/* Restricts ds (in place: replaced) to the classes of `list` ("5-9", "0,2,4"), renumbered 0..; exit code. */
int rc_filter_classes(const char *cmd, const char *list, struct fr_dataset **ds);
/* Training and test sets of rc_data (test NULL when there is none; its images are brought to the training set's
 * size); exit code. */
int rc_open_data(const char *cmd, const struct rc_data *d, struct fr_dataset **train, struct fr_dataset **test);
/* The class-balanced split of the label budget; exit code. */
int rc_split(const char *cmd, const struct rc_data *d, const struct fr_dataset *ds, uint64_t seed,
             struct fr_split *sp);
/* Fit options from flags; exit code. */
int rc_fit_opts(const char *cmd, const struct rc_common *c, const struct rc_fit *f, struct fr_fit_opts *o);

/* Creates DIR (and parents); exit code. */
int rc_mkdir(const char *cmd, const char *dir);

/* SIGINT or SIGTERM: the first one sets rc_stop (the loop finishes its step, saves, exits 130), a second one kills. */
extern volatile sig_atomic_t rc_stop;
void rc_install_sigint(void);

/* "frugal CMD: device X; N ops fell back to the CPU" on stderr */
void rc_report_device(const char *cmd, struct fr_backend *be, int fallback_ops);

/* adds test_accuracy, test_loss (NaN -> null) */
void rc_json_num(cJSON *o, const char *key, double v);
/* prints the object on stdout and frees it */
void rc_json_print(cJSON *o);

/* Whether a spec names a built-in architecture or a readable, well-formed model file; prints the error
 * otherwise. */
int rc_check_arch(const char *cmd, const char *arch);
/* Noise overrides (--dropout, --stochastic-depth) for the students rc_self_train builds from then on;
 * NULL restores the built-in defaults. */
void rc_set_student_noise(const struct fr_model_opts *mo);

/* fr_fit with the progress display and SIGINT handling: CLI_OK, 130 when interrupted (checkpoint saved,
 * device reported), or the failure's exit code with its message printed. */
int rc_run_fit(const char *cmd, struct fr_backend *be, struct fr_net *net, struct fr_trainset *ts,
               struct fr_fit_opts *fo, struct fr_fit_result *fr);

#endif

/* The usual end of a run: test evaluation (when test != NULL), device report, JSON or text summary.
 * `extra` (may be NULL) is merged into the JSON object. Returns the exit code. */
int rc_finish(const char *cmd, const struct rc_common *c, struct fr_backend *be, struct fr_net *net,
              const struct fr_fit_result *fit, const struct fr_dataset *test, double seconds, cJSON *extra);
/* monotonic seconds */
double rc_now(void);

/* One self-training round (REFERENCE.md section 6): the teacher (eval mode, no noise) labels unlabeled images
 * idx[0..n) of ds; a fresh student of `arch` (seeded with seed) trains with fo (its noise: fo->augment, the
 * model's dropout/stochastic depth) on the labeled images (repeated labeled_repeat times) plus the pseudo-labeled
 * ones. */
struct rc_round {
    struct fr_net *student;
    struct fr_fit_result fit;
    int64_t pseudo_rows, unlabeled_used;
    double pseudo_accuracy; /* against the true labels when the dataset has them */
    double seconds;
};
int rc_self_train(const char *cmd, const char *stage, struct fr_backend *be, struct fr_net *teacher,
                  const struct fr_dataset *ds, const struct fr_split *sp, const int64_t *unl, int64_t n_unl,
                  const struct fr_pseudo_opts *po, bool soft, const char *arch, uint64_t seed,
                  const struct fr_fit_opts *fo, int labeled_repeat, bool quiet, struct rc_round *out);
