/* `frugal distill`: Hinton knowledge distillation from a teacher checkpoint (or an ensemble's mean logits) into a
 * student; the teacher runs in eval mode, its logits are computed once when the input is not augmented or only
 * flipped (--augment hflip: of each image and its mirror image);
 * --fold-teachers gives each image the logits of a teacher that never trained on it (out-of-fold); --unlabeled
 * adds transfer images that have only the teacher's targets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipe_cli.h"

enum { MAX_FOLDS = 16 };

/* a list of teachers (--teacher: 1 or more, --fold-teachers: 2 or more): paths split at commas into buf; count or
 * -1 (message printed) */
static int teacher_list(const char *cmd, const char *flag, const char *list, int min, char *buf, size_t cap,
                        const char **paths)
{
    if (strlen(list) >= cap)
        return cli_error(cmd, CLI_USAGE, "%s: the list is too long", flag), -1;
    strcpy(buf, list);
    int n = 0;
    for (char *p = buf, *comma;; p = comma + 1) {
        if ((comma = strchr(p, ',')))
            *comma = 0;
        if (!*p || n == MAX_FOLDS)
            return cli_error(cmd, CLI_USAGE, "%s %s: give %d to %d checkpoints separated by commas", flag, list, min,
                             MAX_FOLDS), -1;
        paths[n++] = p;
        if (!comma)
            break;
    }
    if (n < min)
        return cli_error(cmd, CLI_USAGE, "%s %s: give %d to %d checkpoints separated by commas (for one teacher: "
                                         "--teacher)", flag, list, min, MAX_FOLDS), -1;
    return n;
}

/* fold teacher f of n: trained with train --fold f/n on the data the student sees (the folds are image indices) */
static int check_fold_teacher(const char *cmd, const char *path, int f, int n, const struct rc_meta *meta)
{
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return rc_input_fail(cmd, s);
    char want[32];
    snprintf(want, sizeof want, "%d/%d", f, n);
    const char *fold = fr_st_meta(st, "frugal.fold");
    int rc = CLI_OK;
    if (!fold || strcmp(fold, want))
        rc = cli_error(cmd, CLI_USAGE, "--fold-teachers: %s was trained %s%s, expected --fold %s (list the teachers "
                                       "in fold order, trained with train --fold 0/%d ... %d/%d)",
                       path, fold && strcmp(fold, "none") ? "with --fold " : "without --fold",
                       fold && strcmp(fold, "none") ? fold : "", want, n, n - 1, n);
    static const char *const keys[][2] = {{"frugal.data", "--data"}, {"frugal.classes", "--classes"},
                                          {"frugal.train_limit", "--train-limit"}};
    for (size_t k = 0; rc == CLI_OK && k < sizeof keys / sizeof keys[0]; k++) {
        const char *was = fr_st_meta(st, keys[k][0]), *now = NULL;
        for (int j = 0; j < meta->n; j++)
            if (!strcmp(meta->kv[j].key, keys[k][0]))
                now = meta->kv[j].value;
        if (was && now && strcmp(was, now))
            rc = cli_error(cmd, CLI_USAGE, "--fold-teachers: %s was trained with %s %s, this run uses %s: the folds "
                                           "are image indices, so give the same data flags",
                           path, keys[k][1], was, now);
    }
    fr_st_free(st);
    return rc;
}

int cmd_distill(int argc, char **argv)
{
    const char *cmd = "distill";
    struct rc_common c;
    struct rc_data d;
    struct rc_fit f;
    rc_defaults(&c, &d, &f);
    f.model = "t";
    const char *teacher = NULL, *unlabeled = NULL, *fold_teachers = NULL;
    double temperature = 2.0, alpha = 0.9;
    int64_t unlabeled_limit = 0;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"out", CLI_STR, &c.out, "DIR", "write model.safetensors (each epoch) and metrics.jsonl here", false},
        {"teacher", CLI_STR, &teacher, "CKPT[,CKPT...]", "teacher checkpoint; several = an ensemble, the mean of their "
         "logits (this or --fold-teachers is required)", false},
        {"fold-teachers", CLI_STR, &fold_teachers, "A,B,...", "out-of-fold teachers, trained with train --fold 0/K, "
         "1/K, ... in this order: each image gets the logits of the teacher that did not train on it", false},
        RC_ARCH_OPT(&f, "student: built-in architecture or a model file"),
        {"temperature", CLI_FLOAT, &temperature, "T", "softmax temperature (2)", false, CLI_ABOVE(0, 1000)},
        {"alpha", CLI_FLOAT, &alpha, "A", "weight of the soft (teacher) term (0.9)", false, CLI_RANGE(0, 1)},
        {"unlabeled", CLI_STR, &unlabeled, "SPEC", "extra transfer images, teacher targets only", false},
        {"unlabeled-limit", CLI_INT, &unlabeled_limit, "N", "use only the first N --unlabeled images", false,
         CLI_RANGE(0, RC_MAX_COUNT)},
        RC_DATA_OPTS(&d),
        RC_FIT_OPTS(&f),
        {0},
    };
    int rc = cli_parse(cmd, "(--teacher CKPT | --fold-teachers A,B,...) --data SPEC [--arch t|c|s|m|MODELFILE] [--temperature T] "
                            "[--alpha A] [--unlabeled SPEC]",
                       argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (!teacher == !fold_teachers)
        return cli_error(cmd, CLI_USAGE, teacher ? "give --teacher or --fold-teachers, not both"
                                                 : "--teacher CKPT (or --fold-teachers A,B,...) is required");
    char fold_buf[4096];
    const char *tpath[MAX_FOLDS] = {0};
    int n_teachers = 1;
    if ((n_teachers = teacher_list(cmd, teacher ? "--teacher" : "--fold-teachers", teacher ? teacher : fold_teachers,
                                   teacher ? 1 : 2, fold_buf, sizeof fold_buf, tpath)) < 0)
        return CLI_USAGE;
    if ((rc = rc_check_arch(cmd, f.model)) != CLI_OK)
        return rc;
    struct fr_fit_opts fo;
    if ((rc = rc_fit_opts(cmd, &c, &f, &fo)) != CLI_OK)
        return rc;
    struct rc_outdir od = {.lock_fd = -1};
    if (c.out && (rc = rc_out_open(cmd, c.out, f.resume, &od)) != CLI_OK)
        return rc;
    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL, *unl = NULL;
    struct fr_split sp = {0};
    struct fr_trainset ts = {0};
    struct fr_net *net = NULL, *tnet = NULL, *tnets[MAX_FOLDS] = {0};
    enum fr_status st;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    for (int t = 0; t < n_teachers; t++)
        if ((rc = rc_load_net(cmd, fold_teachers ? "--fold-teachers" : "--teacher", be, tpath[t], &tnets[t])) != CLI_OK)
            goto done;
    tnet = tnets[0];
    d.in_c = tnet->c, d.in_h = tnet->h, d.in_w = tnet->w; /* images as the teacher sees them */
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (unlabeled && (rc = rc_open_dataset(cmd, unlabeled, unlabeled_limit, &d, &unl)) != CLI_OK)
        goto done;
    for (int t = 0; t < n_teachers; t++)
        if ((rc = rc_check_fit(cmd, n_teachers > 1 ? tpath[t] : "the teacher", tnets[t], train)) != CLI_OK)
            goto done;
    if (unl && (unl->c != train->c || unl->h != train->h || unl->w != train->w)) { /* its labels are not used */
        rc = cli_error(cmd, CLI_USAGE, "%s: images are %dx%dx%d, %s has %dx%dx%d", unl->source, unl->c, unl->h, unl->w,
                       train->source, train->c, train->h, train->w);
        goto done;
    }
    struct rc_meta meta;
    rc_meta_make(&meta, &c, &d, &f, &sp, (struct fr_kv[]){{"frugal.teacher", teacher ? teacher : fold_teachers}}, 1);
    for (int t = 0; fold_teachers && t < n_teachers; t++)
        if ((rc = check_fold_teacher(cmd, tpath[t], t, n_teachers, &meta)) != CLI_OK)
            goto done;
    if (f.resume) {
        if ((rc = rc_load_net(cmd, "--resume", be, f.resume, &net)) != CLI_OK ||
            (rc = rc_check_resume(cmd, f.resume, &meta, net, cli_find(opts, "arch")->seen ? f.model : NULL,
                                  f.epochs)) != CLI_OK ||
            (rc = rc_check_fit(cmd, f.resume, net, train)) != CLI_OK)
            goto done;
        fo.resume = true;
    } else if ((st = fr_net_new(be, f.model, train->c, train->h, train->w, train->n_classes, train->class_names,
                                (uint64_t)c.seed, &net)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    ts.n_classes = net->n_classes;
    st = fr_trainset_add(&ts, 0, train, sp.labeled, sp.n_labeled, NULL, NULL);
    if (st == FR_STATUS_OK && unl) {
        int32_t *none = malloc((size_t)(unl->n > 0 ? unl->n : 1) * sizeof *none);
        if (!none) {
            rc = cli_error(cmd, CLI_FAIL, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < unl->n; i++)
            none[i] = -1;
        st = fr_trainset_add(&ts, 1, unl, NULL, unl->n, none, NULL);
        free(none);
    }
    if (st != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    /* consistent teaching: the teacher sees each batch as the student does. Its logits are computed once for the
       images as they are, or for them and their mirror images with --augment hflip; with other augmentation or
       mixing it runs in the training graph */
    const int views = fr_fit_teacher_views(&fo);
    bool cached = views > 0;
    if (!cached && n_teachers > 1) {
        rc = cli_error(cmd, CLI_USAGE, "%s with %d teachers: their logits are cached for the images as they are and "
                                       "their mirror images; use --augment hflip or none, and drop --mixup and --cutmix",
                       fold_teachers ? "--fold-teachers" : "--teacher", n_teachers);
        goto done;
    }
    if (cached && (st = fr_trainset_cache_teachers(&ts, tnets, n_teachers, fold_teachers != NULL, views == 2)) !=
                      FR_STATUS_OK) { /* the same logits every epoch */
        rc = rc_fail(cmd, st);
        goto done;
    }
    fprintf(stderr, "frugal %s: teacher %s -> student %s (%lld parameters), T %.3g, alpha %.3g, %lld labeled + %lld unlabeled "
                    "images, teacher logits %s\n",
            cmd, tnet->arch, net->arch, (long long)fr_model_n_params(net->model), temperature, alpha, (long long)sp.n_labeled,
            (long long)(unl ? unl->n : 0),
            fold_teachers    ? "cached, out of fold"
            : n_teachers > 1 ? "cached, the mean of the ensemble's"
            : views == 2     ? "cached, of each image and its mirror image"
            : cached         ? "cached"
                             : "per batch (augmented input)");
    fo.distill = true;
    fo.alpha = (float)alpha;
    fo.temperature = (float)temperature;
    fo.teacher = tnet;
    rc_fit_on_split(&fo, train, &sp, &meta);
    struct fr_fit_result fr;
    if ((rc = rc_run_fit(cmd, be, net, &ts, &fo, &fr)) != CLI_OK)
        goto done;
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "labels", (double)(sp.n_labeled + sp.n_val));
    cJSON_AddNumberToObject(extra, "temperature", temperature);
    cJSON_AddNumberToObject(extra, "alpha", alpha);
    cJSON_AddStringToObject(extra, "teacher_model", tnet->arch);
    cJSON_AddBoolToObject(extra, "teacher_logits_cached", cached);
    cJSON_AddNumberToObject(extra, "teacher_views", views); /* 2: each image and its mirror image; 0: in the graph */
    cJSON_AddNumberToObject(extra, "teachers", n_teachers);
    cJSON_AddBoolToObject(extra, "out_of_fold", fold_teachers != NULL);
    if (test) { /* fold teachers: the mean of their accuracies (each labels its fold); an ensemble: its accuracy */
        double acc;
        if ((st = fr_teachers_accuracy(tnets, n_teachers, fold_teachers != NULL, test, &acc)) == FR_STATUS_OK) {
            rc_json_num(extra, "teacher_test_accuracy", acc);
            if (!c.json)
                printf("teacher%s test accuracy %.4f\n", n_teachers == 1 ? "" : fold_teachers ? "s' mean" : " ensemble",
                       acc);
        }
    }
    rc = rc_finish(cmd, &c, be, net, &fr, test, rc_now() - t0, extra);
done:
    fr_net_free(net);
    for (int t = 0; t < n_teachers; t++)
        fr_net_free(tnets[t]);
    fr_trainset_free(&ts);
    fr_split_free(&sp);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_dataset_free(unl);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
