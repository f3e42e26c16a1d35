/* Shared pieces of the recipe subcommands (train, finetune, distill, pseudo-label, noisy-student, eval,
 * predict, demo): common flags, datasets by spec with limits, class filters and label checks, fit options from
 * flags, --out directories (lock, earlier runs), SIGINT/SIGTERM handling, the device report and JSON results. */
#ifndef FRUGAL_TOOLS_RECIPE_CLI_H
#define FRUGAL_TOOLS_RECIPE_CLI_H

#include <cjson/cJSON.h>
#include <signal.h>

#include "cli.h"
#include "frugal/recipes.h"
#include "progress.h"

struct rc_common {
    const char *device, *out;
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
    double lr, weight_decay, momentum, cutmix, mixup, label_smoothing, ema;
    bool profile, sync_bn;
};

/* limits shared by the tables below */
#define RC_MAX_COUNT 1e12 /* images, labels, steps */

#define RC_COMMON_OPTS(c)                                                                                           \
    {"device", CLI_STR, &(c)->device, "D", "auto | cpu | cl:P:D (default: FRUGAL_DEVICE or auto)", false},         \
        {"seed", CLI_INT, &(c)->seed, "N", "seed of splits, initialisation, shuffling, augmentation", false,        \
         CLI_RANGE(0, 9.2e18)},                                                                                     \
        {"threads", CLI_INT, &(c)->threads, "N", "CPU threads (default: FRUGAL_THREADS or all cores)", false,      \
         CLI_RANGE(0, CLI_MAX_THREADS)},                                                                            \
        {"json", CLI_BOOL, &(c)->json, NULL, "print the final results as one JSON object on stdout", false}

#define RC_DATA_OPTS(d)                                                                                               \
    {"data", CLI_STR, &(d)->data, "SPEC", "training data: fmnist | idx:IMG,LAB | folder:DIR | csv:FILE", false},     \
        {"test", CLI_STR, &(d)->test, "SPEC", "test data (default: fmnist:test for fmnist, else none)", false},       \
        {"labels", CLI_INT, &(d)->labels, "N", "label budget, class-balanced, validation included; 0 = all", false,  \
         CLI_RANGE(0, RC_MAX_COUNT)},                                                                                 \
        {"val", CLI_INT, &(d)->val, "N", "validation images carved from the budget (default budget/10)", false,     \
         CLI_RANGE(0, RC_MAX_COUNT)},                                                                                 \
        {"classes", CLI_STR, &(d)->classes, "LIST", "use only these classes, renumbered (e.g. 5-9 or 0,2,4)", false}, \
        {"train-limit", CLI_INT, &(d)->train_limit, "N", "use only the first N training images (after --classes)",  \
         false, CLI_RANGE(0, RC_MAX_COUNT)},                                                                          \
        {"test-limit", CLI_INT, &(d)->test_limit, "N", "use only the first N test images (after --classes)", false,  \
         CLI_RANGE(0, RC_MAX_COUNT)},                                                                                 \
        RC_IMAGE_OPTS(d)

/* How images are read: size, channels, unreadable files (train, test and eval data alike). */
#define RC_IMAGE_OPTS(d)                                                                                           \
    {"size", CLI_STR, &(d)->size, "H[xW]", "resize images to H×W (shorter side, centre crop; default: native)", false}, \
        {"channels", CLI_INT, &(d)->channels, "C", "image channels 1..4 (default: 3 if any image has colour, else 1)",  \
         false, CLI_RANGE(1, 4)},                                                                                   \
        {"on-bad-image", CLI_STR, &(d)->on_bad_image, "stop|skip", "an unreadable image stops the run (default) or is " \
         "skipped, named once", false}

/* the architecture flag of train/distill/demo: --arch, with the old spelling --model */
#define RC_ARCH_OPT(f, help) {"arch", CLI_STR, &(f)->model, "t|c|s|m|MODELFILE", help, false}, CLI_DEPRECATED("model", "arch")

#define RC_FIT_OPTS(f)                                                                                                 \
    {"epochs", CLI_INT, &(f)->epochs, "N", "training epochs (10)", false, CLI_RANGE(1, 1000000)},                          \
        {"batch", CLI_INT, &(f)->batch, "N", "batch size (64)", false, CLI_RANGE(1, 65536)},                               \
        {"optimizer", CLI_STR, &(f)->optimizer, "NAME", "sgd | adam | adamw (adamw)", false},                                  \
        {"lr", CLI_FLOAT, &(f)->lr, "X", "base learning rate (default 0.002; sgd: 0.05)", false, CLI_ABOVE(0, 10)},    \
        {"schedule", CLI_STR, &(f)->schedule, "S", "constant | step:SIZE:GAMMA | cosine (cosine)", false},                      \
        {"warmup", CLI_INT, &(f)->warmup, "N", "linear warm-up steps (0; below the run's total steps)", false,         \
         CLI_RANGE(0, RC_MAX_COUNT)},                                                                                  \
        {"weight-decay", CLI_FLOAT, &(f)->weight_decay, "X", "weight decay (5e-4)", false, CLI_RANGE(0, 1)},                  \
        {"momentum", CLI_FLOAT, &(f)->momentum, "X", "SGD momentum (0.9)", false, CLI_BELOW(0, 1)},                          \
        {"augment", CLI_STR, &(f)->augment, "POLICY", "policy, as frugal augment --policy: "  \
         "'randaugment(n=2,m=9);cutmix(alpha=1)', normalize(...) (none)", false}, \
        {"cutmix", CLI_FLOAT, &(f)->cutmix, "ALPHA", "= cutmix(alpha=ALPHA) in --augment (0 = off); with "  \
                                                     "--mixup the two alternate per step", false, CLI_RANGE(0, 1000)},            \
        {"mixup", CLI_FLOAT, &(f)->mixup, "ALPHA", "= mixup(alpha=ALPHA) in --augment (0 = off)", false,                    \
         CLI_RANGE(0, 1000)},                                                                                          \
        {"label-smoothing", CLI_FLOAT, &(f)->label_smoothing, "X", "label smoothing (0)", false, CLI_BELOW(0, 1)},     \
        {"ema", CLI_FLOAT, &(f)->ema, "DECAY", "also keep a moving average of the weights (e.g. 0.999): validated, "  \
         "saved as <name>_ema.safetensors (0 = off)", false, CLI_BELOW(0, 1)},                                            \
        {"resume", CLI_STR, &(f)->resume, "CKPT", "continue an interrupted run from its checkpoint (same data flags)", \
         false},                                                                                                       \
        {"profile", CLI_BOOL, &(f)->profile, NULL, "print each op's share of a step, launches, work-items", false}, \
        RC_DIST_OPTS(f)

/* several ranks (mpirun): how each batch is split */
#define RC_DIST_OPTS(f)                                                                                          \
    {"balance", CLI_STR, &(f)->balance, "equal|speed", "under mpirun: split each batch equally (default) or by "  \
     "each rank's measured speed (timed before training, adjusted during it)", false},                          \
        {"sync-bn", CLI_BOOL, &(f)->sync_bn, NULL, "under mpirun: batch-norm statistics of the whole batch (default: " \
         "each rank's share)", false}

void rc_defaults(struct rc_common *c, struct rc_data *d, struct rc_fit *f);

/* frugal status -> exit code (cli_exit_code) */
int rc_exit_code(enum fr_status st);
/* prints "frugal CMD: <last error>" and returns the exit code for st */
int rc_fail(const char *cmd, enum fr_status st);
/* the same for a failure while reading an input file (I/O errors are bad input: 2) */
int rc_input_fail(const char *cmd, enum fr_status st);

/* Dataset options from the image flags of d (NULL = defaults), with d's model input as the default size. Exit code. */
int rc_image_opts(const char *cmd, const struct rc_data *d, struct fr_dataset_opts *o);
/* When path is a frugal checkpoint, its input size becomes d's default image size (as if a model were loaded). */
void rc_checkpoint_input(const char *path, struct rc_data *d);
/* Opens a dataset spec ("fmnist:test" etc.) with the image flags of d (NULL = defaults), keeps the first `limit`
 * images (0 = all). Exit code. */
int rc_open_dataset(const char *cmd, const char *spec, int64_t limit, const struct rc_data *d, struct fr_dataset **out);
/* The same with a class filter applied before the limit (classes NULL = all). */
int rc_open_dataset_ex(const char *cmd, const char *spec, const char *classes, int64_t limit, const struct rc_data *d,
                       struct fr_dataset **out);
/* Restricts ds (in place: replaced) to the classes of `list` ("5-9", "0,2,4"), renumbered 0..; exit code. */
int rc_filter_classes(const char *cmd, const char *list, struct fr_dataset **ds);
/* Training and test sets of rc_data (test NULL when there is none): labels checked for training (at least 2
 * classes, class indices without large gaps), the test set read at the training set's image size and checked
 * against it (classes) before any training; exit code. */
int rc_open_data(const char *cmd, const struct rc_data *d, struct fr_dataset **train, struct fr_dataset **test);
/* The same; check = false skips the label checks (data whose labels are not trained on, e.g. pseudo-label's). */
int rc_open_data_ex(const char *cmd, const struct rc_data *d, struct fr_dataset **train, struct fr_dataset **test,
                    bool check);
/* Errors (exit code) for training labels that cannot make a classifier; warnings for empty classes. */
int rc_check_labels(const char *cmd, const struct fr_dataset *ds);
/* Whether data of `source` (c x h x w, names of k classes) fits a model; `what` names the model in messages.
 * A different image size or class count is an error; different class names a warning. Exit code. */
int rc_check_fit(const char *cmd, const char *what, const struct fr_net *net, const struct fr_dataset *ds);
/* The class-balanced split of the label budget; exit code. */
int rc_split(const char *cmd, const struct rc_data *d, const struct fr_dataset *ds, uint64_t seed,
             struct fr_split *sp);
/* Fit options from flags; exit code. */
int rc_fit_opts(const char *cmd, const struct rc_common *c, const struct rc_fit *f, struct fr_fit_opts *o);

/* A checkpoint given to `flag` (e.g. "--checkpoint"), loaded with the error hints of that flag; the weights
 * are checked to be finite. Exit code (bad files: 2). */
int rc_load_net(const char *cmd, const char *flag, struct fr_backend *be, const char *path, struct fr_net **out);
/* Checks that the model's weights are finite (NaN/Inf: a broken or diverged checkpoint); exit code 2. */
int rc_check_weights(const char *cmd, const char *path, const struct fr_net *net);

/* Warns about tensors of a plain weights file that the model does not have (they are ignored). */
void rc_warn_unused_tensors(const char *cmd, const char *path, const struct fr_net *net);

/* Metadata a training run writes into its checkpoints so --resume can check that the data is the same. */
struct rc_meta {
    char seed[24], labels[24], val[24], train_limit[24], batch[24];
    struct fr_kv kv[12];
    int n;
};
/* Fills m with frugal.split_seed/data/labels/val/classes/train_limit/batch (+ `extra` pairs, n_extra <= 4). */
void rc_meta_make(struct rc_meta *m, const struct rc_common *c, const struct rc_data *d, const struct rc_fit *f,
                  const struct fr_split *sp, const struct fr_kv *extra, int n_extra);
/* The run's validation images (sp->val of train) and, with m, the checkpoint metadata, into fo. */
void rc_fit_on_split(struct fr_fit_opts *fo, const struct fr_dataset *train, const struct fr_split *sp,
                     const struct rc_meta *m);
/* --resume: the checkpoint at `path` must come from a run with the same metadata (split seed, data, labels,
 * validation, classes, train limit, batch) and, if --arch was given, the same architecture; an already
 * finished run is reported. Exit code. */
int rc_check_resume(const char *cmd, const char *path, const struct rc_meta *m, const struct fr_net *net,
                    const char *arch, int64_t epochs);

/* An --out directory held by one run: created, locked against a second run (DIR/.frugal.lock, released when
 * the process ends), with files of an earlier run named before they are replaced; a fresh run (not resuming a
 * checkpoint in DIR: resume NULL or elsewhere) moves an earlier metrics.jsonl to metrics.prev.jsonl. */
struct rc_outdir {
    char path[4096], lock[4200];
    int lock_fd;
};
int rc_out_open(const char *cmd, const char *dir, const char *resume, struct rc_outdir *od);
/* The lock alone: DIR/NAME held until rc_out_close or the end of the process; `what` names the output in the
 * message for a second run. Exit code. */
int rc_lock(const char *cmd, const char *dir, const char *name, const char *what, struct rc_outdir *od);
void rc_out_close(struct rc_outdir *od);

/* Creates DIR (and parents); exit code. */
int rc_mkdir(const char *cmd, const char *dir);
/* Creates the parent directories of a file path; exit code. */
int rc_mkdir_parent(const char *cmd, const char *file);

/* SIGINT and SIGTERM: the first one sets rc_stop (the loop finishes its step, saves, exits 130), a second one
 * ends the process at once. */
extern volatile sig_atomic_t rc_stop;
void rc_install_signals(void);
#define rc_install_sigint rc_install_signals
/* "frugal CMD: interrupted (signal): what" and CLI_INTERRUPTED */
int rc_interrupted(const char *cmd, const char *what);

/* "frugal CMD: N ops fell back to the CPU" on stderr when N > 0 (the device is named once, when opened) */
void rc_report_device(const char *cmd, struct fr_backend *be, int fallback_ops);

/* --- JSON results: one object per run, the same keys for the same things (README "JSON results") --- */
/* {"command": cmd} */
cJSON *rc_json_new(const char *cmd);
/* device, fallback_ops, seconds */
void rc_json_run(cJSON *o, struct fr_backend *be, int fallback_ops, double seconds);
/* model (architecture), parameters, classes */
void rc_json_model(cJSON *o, const struct fr_net *net);
/* a number, or null for NaN/Inf */
void rc_json_num(cJSON *o, const char *key, double v);
/* prints the object on one line of stdout and frees it */
void rc_json_print(cJSON *o);

/* Whether a spec names a built-in architecture or a readable, well-formed model file; prints the error
 * otherwise. */
int rc_check_arch(const char *cmd, const char *arch);

/* fr_fit with the progress display and SIGINT/SIGTERM handling: CLI_OK, 130 when interrupted (checkpoint saved,
 * device reported), or the failure's exit code with its message printed. A --warmup as long as the whole run
 * is refused. */
int rc_run_fit(const char *cmd, struct fr_backend *be, struct fr_net *net, struct fr_trainset *ts,
               struct fr_fit_opts *fo, struct fr_fit_result *fr);

/* The usual end of a run: test evaluation (when test != NULL), device report, JSON or text summary.
 * `extra` (may be NULL) is merged into the JSON object. Returns the exit code. */
int rc_finish(const char *cmd, const struct rc_common *c, struct fr_backend *be, struct fr_net *net,
              const struct fr_fit_result *fit, const struct fr_dataset *test, double seconds, cJSON *extra);
/* monotonic seconds */
double rc_now(void);

#endif
