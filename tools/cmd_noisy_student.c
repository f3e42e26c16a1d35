/* `frugal noisy-student`: Noisy Student (Xie et al. 2020) over fr_self_train_round. A teacher trained on the label
 * budget (or given) labels the unlabeled images without noise (soft labels, threshold 0.3, class balancing by
 * default; --flip, --ensemble); a fresh, noised student of equal or larger size trains on labeled + pseudo-labeled
 * images and becomes the next teacher; every round's checkpoint is kept (round<R>.safetensors) and a per-round
 * table with what the teacher kept is printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/augment.h"
#include "recipe_cli.h"
#include "frugal/rng_host.h"

static int arch_rank(const char *a) { return !strcmp(a, "t") ? 0 : !strcmp(a, "s") ? 1 : 2; }

int cmd_noisy_student(int argc, char **argv)
{
    const char *cmd = "noisy-student";
    struct rc_common c;
    struct rc_data d;
    struct rc_fit f;
    rc_defaults(&c, &d, &f);
    d.labels = 1000;
    f.epochs = 20;
    const char *teacher_ckpt = NULL, *teacher_arch = "t", *student = NULL, *noise = "randaugment(n=2,m=9)",
               *teacher_augment = NULL;
    int64_t rounds = 2, teacher_epochs = 60, labeled_repeat = 10;
    double threshold = 0.3, dropout = 0.5, sdepth = 0.8, ratio = 0;
    bool soft = true, hard = false, balance = true, flip = false, ensemble = false, from_teacher = false;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"out", CLI_STR, &c.out, "DIR", "teacher.safetensors, round<R>.safetensors, metrics.jsonl", false},
        {"rounds", CLI_INT, &rounds, "R", "self-training rounds (2)", false, CLI_RANGE(1, 100)},
        {"teacher", CLI_STR, &teacher_ckpt, "CKPT", "start from this teacher instead of training one", false},
        {"teacher-arch", CLI_STR, &teacher_arch, "t|c|s|m|MODELFILE", "architecture or model file of the first teacher (t)", false},
        CLI_DEPRECATED("teacher-model", "teacher-arch"),
        {"teacher-epochs", CLI_INT, &teacher_epochs, "N", "epochs of the first teacher (60)", false, CLI_RANGE(1, 1000000)},
        {"teacher-augment", CLI_STR, &teacher_augment, "POLICY", "augmentation of the first teacher (none)", false},
        {"student", CLI_STR, &student, "t|c|s|m|MODELFILE", "student architecture or model file, equal or larger (teacher's)", false},
        {"threshold", CLI_FLOAT, &threshold, "X", "keep pseudo-labels with confidence >= X (0.3)", false, CLI_RANGE(0, 1)},
        {"soft", CLI_BOOL, &soft, NULL, "soft pseudo-labels (default)", false},
        {"hard", CLI_BOOL, &hard, NULL, "hard pseudo-labels", false},
        {"balance", CLI_BOOL, &balance, NULL, "balance pseudo-labels per class (default; --balance=false)", false},
        {"flip", CLI_BOOL, &flip, NULL, "the teacher averages each image's probabilities with its mirror image's", false},
        {"from-teacher", CLI_BOOL, &from_teacher, NULL, "each student starts from its teacher's weights (same architecture)",
         false},
        {"ensemble", CLI_BOOL, &ensemble, NULL, "the teacher averages its probabilities with every earlier round's teacher",
         false},
        {"noise", CLI_STR, &noise, "POLICY", "student input noise ('randaugment(n=2,m=9)'; none)", false},
        {"dropout", CLI_FLOAT, &dropout, "P", "students' dropout before the classifier (built-in c, s, m; model files keep theirs)", false, CLI_BELOW(0, 1)},
        {"stochastic-depth", CLI_FLOAT, &sdepth, "S", "students' survival at the last block (built-in m; decays linearly from 1)", false, CLI_ABOVE(0, 1)},
        {"labeled-repeat", CLI_INT, &labeled_repeat, "N", "labeled images appear N times per student epoch (10)", false, CLI_RANGE(1, 10000)},
        {"unlabeled-ratio", CLI_FLOAT, &ratio, "K", "unlabeled images per labeled image each round (0 = all)", false, CLI_RANGE(0, 1e6)},
        RC_DATA_OPTS(&d),
        RC_FIT_OPTS(&f),
        {0},
    };
    for (struct cli_opt *o = opts; o->name; o++) /* --balance is the pseudo-labels' here: the ranks' split is renamed */
        if (o->dest == &f.balance)
            o->name = "rank-balance";
    int rc = cli_parse(cmd, "--data SPEC --labels N --rounds R [--student t|c|s|m|MODELFILE] [--threshold 0.3] [--soft|--hard] "
                            "[--balance] [--noise POLICY] [--unlabeled-ratio K]",
                       argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (hard && cli_find(opts, "soft")->seen && soft)
        return cli_error(cmd, CLI_USAGE, "--soft and --hard contradict each other: give one");
    if (hard)
        soft = false;
    if (teacher_ckpt && (cli_find(opts, "teacher-arch")->seen || cli_find(opts, "teacher-epochs")->seen ||
                         cli_find(opts, "teacher-augment")->seen))
        return cli_error(cmd, CLI_USAGE, "--teacher CKPT is the first teacher: --teacher-arch, --teacher-epochs and "
                                         "--teacher-augment describe one trained here; give one or the other");
    /* the training flags shared with train name no policy or run of their own here (finding 10) */
    static const char *const not_here[] = {"augment", "cutmix", "mixup"};
    for (size_t i = 0; i < sizeof not_here / sizeof not_here[0]; i++)
        if (cli_find(opts, not_here[i])->seen)
            return cli_error(cmd, CLI_USAGE, "--%s: noisy-student noises its students with --noise POLICY and trains its "
                                             "first teacher with --teacher-augment POLICY", not_here[i]);
    if (cli_find(opts, "resume")->seen)
        return cli_error(cmd, CLI_USAGE, "--resume: a noisy-student run is not resumed; continue from a finished round "
                                         "with --teacher DIR/roundN.safetensors");
    /* students only: the teacher labels un-noised (eval mode) anyway; model files keep their own values */
    const struct fr_model_opts student_noise = {(float)dropout, (float)sdepth};
    if ((rc = rc_check_arch(cmd, teacher_arch)) != CLI_OK)
        return rc;
    if (student && (rc = rc_check_arch(cmd, student)) != CLI_OK)
        return rc;
    struct fr_fit_opts fo;
    if ((rc = rc_fit_opts(cmd, &c, &f, &fo)) != CLI_OK)
        return rc;
    if (!strcmp(noise, "none"))
        noise = NULL;
    else {
        struct fr_aug_policy *pol;
        if (fr_aug_policy_parse(noise, &pol) != FR_STATUS_OK)
            return cli_error(cmd, CLI_USAGE, "--noise: %s", fr_last_error());
        fr_aug_policy_free(pol);
    }
    struct rc_outdir od = {.lock_fd = -1};
    if (c.out && (rc = rc_out_open(cmd, c.out, NULL, &od)) != CLI_OK)
        return rc;
    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL;
    struct fr_split sp = {0};
    struct fr_net *teacher = NULL;
    struct fr_net *earlier[100];
    int n_earlier = 0;
    cJSON *rows = cJSON_CreateArray();
    enum fr_status st;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (sp.n_unlabeled == 0) {
        rc = cli_error(cmd, CLI_USAGE, "%s: --labels %lld%s uses all %lld images: none is left to pseudo-label (lower "
                                       "--labels or give more data)",
                       train->source, (long long)d.labels, cli_find(opts, "labels")->seen ? "" : " (the default)",
                       (long long)train->n);
        goto done;
    }
    rc_install_sigint();
    char prev_ckpt[4096] = "";
    double tsec = rc_now();
    if (teacher_ckpt) {
        if ((rc = rc_load_net(cmd, "--teacher", be, teacher_ckpt, &teacher)) != CLI_OK ||
            (rc = rc_check_fit(cmd, teacher_ckpt, teacher, train)) != CLI_OK)
            goto done;
        snprintf(prev_ckpt, sizeof prev_ckpt, "%s", teacher_ckpt);
    } else {
        if ((st = fr_net_new(be, teacher_arch, train->c, train->h, train->w, train->n_classes, train->class_names,
                             (uint64_t)c.seed, &teacher)) != FR_STATUS_OK) {
            rc = rc_fail(cmd, st);
            goto done;
        }
        struct fr_trainset ts = {0};
        ts.n_classes = teacher->n_classes;
        struct fr_fit_opts to = fo;
        to.epochs = (int)teacher_epochs;
        to.augment = teacher_augment && strcmp(teacher_augment, "none") ? teacher_augment : NULL;
        rc_fit_on_split(&to, train, &sp, NULL);
        to.ckpt_name = "teacher";
        to.metrics_tag = "teacher";
        struct progress pr;
        progress_init(&pr, cmd, "teacher");
        to.on_progress = progress_step;
        to.on_epoch = progress_epoch;
        to.user = &pr;
        struct fr_fit_result fr;
        st = fr_trainset_add(&ts, 0, train, sp.labeled, sp.n_labeled, NULL, NULL);
        if (st == FR_STATUS_OK)
            st = fr_fit(teacher, &ts, &to, &fr);
        progress_done(&pr);
        fr_trainset_free(&ts);
        if (st != FR_STATUS_OK) {
            rc = st == FR_STATUS_INTERRUPTED ? rc_interrupted(cmd, fr_last_error()) : rc_fail(cmd, st);
            goto done;
        }
        if (c.out)
            snprintf(prev_ckpt, sizeof prev_ckpt, "%s/teacher.safetensors", c.out);
    }
    /* a copy: the first teacher is freed after round 1, when its student becomes the teacher */
    char student_arch[4096];
    if (!student && teacher->model_text && teacher_ckpt) {
        rc = cli_error(cmd, CLI_USAGE, "%s: the teacher is a model-file network (%s): name the student's model with "
                                       "--student t|c|s|m|MODELFILE", teacher_ckpt, teacher->arch);
        goto done;
    }
    /* a model-file teacher built here: its student uses the same file (teacher->arch is only its basename) */
    snprintf(student_arch, sizeof student_arch, "%s", student ? student : teacher->model_text ? teacher_arch : teacher->arch);
    student = student_arch;
    if (arch_rank(student) < arch_rank(teacher->arch))
        fprintf(stderr, "frugal %s: warning: student %s is smaller than teacher %s (Noisy Student wants equal or larger)\n",
                cmd, student, teacher->arch);
    struct fr_eval ev;
    double teacher_acc = NAN;
    if (test && (st = fr_net_evaluate(teacher, test, NULL, test->n, &ev)) == FR_STATUS_OK) {
        teacher_acc = ev.accuracy;
        fr_eval_free(&ev);
    }
    {
        cJSON *r0 = cJSON_CreateObject();
        cJSON_AddNumberToObject(r0, "round", 0);
        cJSON_AddStringToObject(r0, "model", teacher->arch);
        cJSON_AddNumberToObject(r0, "labels", (double)(sp.n_labeled + sp.n_val));
        cJSON_AddNumberToObject(r0, "pseudo_labels", 0);
        rc_json_num(r0, "test_accuracy", teacher_acc);
        cJSON_AddNumberToObject(r0, "seconds", rc_now() - tsec);
        if (prev_ckpt[0])
            cJSON_AddStringToObject(r0, "checkpoint", prev_ckpt);
        cJSON_AddItemToArray(rows, r0);
    }
    /* the rounds (fr_self_train_round: round r draws its unlabeled images and seeds its student from --seed and r,
       as the demo does); --ensemble keeps the earlier teachers, whose probabilities join the current one's */
    struct fr_round_opts ro;
    fr_round_opts_init(&ro);
    ro.arch = student;
    ro.noise = student_noise;
    ro.pseudo = (struct fr_pseudo_opts){.threshold = (float)threshold, .balance = balance, .flip = flip};
    ro.from_teacher = from_teacher;
    ro.soft = soft;
    ro.labeled_repeat = (int)labeled_repeat;
    ro.unlabeled_ratio = ratio;
    ro.fit = fo;
    ro.fit.seed = (uint64_t)c.seed;
    ro.fit.augment = noise;
    rc_fit_on_split(&ro.fit, train, &sp, NULL);
    ro.fit.stop = &rc_stop;
    struct fr_round last = {0};
    double last_loss = NAN;
    for (int64_t r = 1; r <= rounds; r++) {
        char stage[32], ck_name[32], round_s[24];
        snprintf(stage, sizeof stage, "round %lld", (long long)r);
        snprintf(ck_name, sizeof ck_name, "round%lld", (long long)r);
        snprintf(round_s, sizeof round_s, "%lld", (long long)r);
        struct fr_round_opts rr_o = ro;
        rr_o.fit.ckpt_name = ck_name;
        rr_o.fit.metrics_tag = stage;
        struct fr_kv meta[] = {{"frugal.round", round_s}, {"frugal.teacher", prev_ckpt}};
        rr_o.fit.meta = meta;
        rr_o.fit.n_meta = 2;
        rr_o.pseudo.teachers = ensemble ? earlier : NULL;
        rr_o.pseudo.n_teachers = ensemble ? n_earlier : 0;
        struct progress pr;
        progress_init(&pr, cmd, stage);
        rr_o.fit.on_progress = progress_step;
        rr_o.fit.on_epoch = progress_epoch;
        rr_o.fit.user = &pr;
        struct fr_round rr;
        st = fr_self_train_round(teacher, train, &sp, (int)r, &rr_o, &rr);
        progress_done(&pr);
        if (st != FR_STATUS_OK) {
            if (st == FR_STATUS_INTERRUPTED) {
                rc_report_device(cmd, be, fr_net_fallback_ops(teacher));
                rc = rc_interrupted(cmd, fr_last_error());
            } else
                rc = rc_fail(cmd, st);
            fr_round_free(&rr);
            goto done;
        }
        fprintf(stderr, "frugal %s: [%s] the teacher labeled %lld images, %lld confident, %lld rows kept (accuracy "
                        "%.4f against the hidden labels); classes:",
                cmd, stage, (long long)rr.pseudo.unlabeled, (long long)rr.pseudo.confident, (long long)rr.pseudo.rows,
                rr.pseudo.accuracy);
        for (int k = 0; k < rr.pseudo.n_classes; k++)
            fprintf(stderr, " %lld", (long long)rr.pseudo.class_confident[k]);
        fprintf(stderr, "\n");
        double acc = NAN;
        if (test && (st = fr_net_evaluate(rr.student, test, NULL, test->n, &ev)) == FR_STATUS_OK) {
            acc = ev.accuracy;
            last_loss = ev.loss;
            fr_eval_free(&ev);
        }
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "round", (double)r);
        cJSON_AddStringToObject(row, "model", rr.student->arch);
        cJSON_AddNumberToObject(row, "labels", (double)(sp.n_labeled + sp.n_val));
        cJSON_AddNumberToObject(row, "unlabeled_images", (double)rr.pseudo.unlabeled);
        cJSON_AddNumberToObject(row, "confident", (double)rr.pseudo.confident);
        cJSON_AddNumberToObject(row, "pseudo_labels", (double)rr.pseudo.rows);
        rc_json_num(row, "pseudo_label_accuracy", rr.pseudo.accuracy);
        cJSON *hist = cJSON_AddArrayToObject(row, "class_histogram");
        for (int k = 0; k < rr.pseudo.n_classes; k++)
            cJSON_AddItemToArray(hist, cJSON_CreateNumber((double)rr.pseudo.class_confident[k]));
        rc_json_num(row, "val_accuracy", rr.fit.val_accuracy);
        rc_json_num(row, "val_accuracy_ema", rr.fit.val_accuracy_ema);
        rc_json_num(row, "test_accuracy", acc);
        cJSON_AddNumberToObject(row, "seconds", rr.seconds);
        cJSON_AddNumberToObject(row, "train_images_per_second", rr.fit.images_per_second);
        cJSON_AddStringToObject(row, "teacher_checkpoint", prev_ckpt);
        if (c.out) {
            snprintf(prev_ckpt, sizeof prev_ckpt, "%s/%s.safetensors", c.out, ck_name);
            cJSON_AddStringToObject(row, "checkpoint", prev_ckpt);
        } else {
            prev_ckpt[0] = 0;
        }
        cJSON_AddItemToArray(rows, row);
        if (ensemble && n_earlier < (int)(sizeof earlier / sizeof earlier[0]))
            earlier[n_earlier++] = teacher;
        else
            fr_net_free(teacher);
        teacher = rr.student; /* the student becomes the teacher */
        rr.student = NULL;
        last = rr;
        fr_pseudo_report_free(&rr.pseudo);
    }
    int fb = fr_net_fallback_ops(teacher);
    rc_report_device(cmd, be, fb);
    if (!c.json) {
        printf("\n%-6s %-6s %7s %10s %10s %9s %10s %9s\n", "round", "model", "labels", "unlabeled", "pseudo", "pl acc",
               "test acc", "time");
        cJSON *row;
        cJSON_ArrayForEach(row, rows)
        {
            cJSON *a = cJSON_GetObjectItem(row, "test_accuracy"), *pa = cJSON_GetObjectItem(row, "pseudo_label_accuracy"),
                  *u = cJSON_GetObjectItem(row, "unlabeled_images");
            char accs[16] = "-", pas[16] = "-", us[16] = "-";
            if (cJSON_IsNumber(a))
                snprintf(accs, sizeof accs, "%.4f", a->valuedouble);
            if (cJSON_IsNumber(pa))
                snprintf(pas, sizeof pas, "%.4f", pa->valuedouble);
            if (cJSON_IsNumber(u))
                snprintf(us, sizeof us, "%d", u->valueint);
            char tm[16];
            printf("%-6d %-6s %7d %10s %10d %9s %10s %8ss\n", cJSON_GetObjectItem(row, "round")->valueint,
                   cJSON_GetObjectItem(row, "model")->valuestring, cJSON_GetObjectItem(row, "labels")->valueint, us,
                   cJSON_GetObjectItem(row, "pseudo_labels")->valueint, pas, accs,
                   (snprintf(tm, sizeof tm, "%.1f", cJSON_GetObjectItem(row, "seconds")->valuedouble), tm));
        }
    } else {
        cJSON *o = rc_json_new(cmd);
        rc_json_model(o, teacher); /* the last student */
        cJSON *lastrow = cJSON_GetArrayItem(rows, cJSON_GetArraySize(rows) - 1);
        cJSON *a = cJSON_GetObjectItem(lastrow, "test_accuracy");
        rc_json_num(o, "test_accuracy", cJSON_IsNumber(a) ? a->valuedouble : NAN);
        rc_json_num(o, "test_loss", last_loss);
        cJSON_AddNumberToObject(o, "test_images", test ? (double)test->n : 0);
        rc_json_num(o, "teacher_test_accuracy", teacher_acc);
        rc_json_num(o, "val_accuracy", last.fit.val_accuracy);
        rc_json_num(o, "train_loss", last.fit.train_loss);
        rc_json_num(o, "train_images_per_second", last.fit.images_per_second);
        cJSON_AddNumberToObject(o, "epochs", (double)last.fit.epochs_done);
        cJSON_AddNumberToObject(o, "steps", (double)last.fit.steps);
        rc_json_run(o, be, fb, rc_now() - t0);
        cJSON_AddNumberToObject(o, "labels", (double)(sp.n_labeled + sp.n_val));
        if (prev_ckpt[0])
            cJSON_AddStringToObject(o, "checkpoint", prev_ckpt);
        cJSON_AddItemToObject(o, "rounds", rows);
        rows = NULL;
        rc_json_print(o);
    }
    rc = CLI_OK;
done:
    cJSON_Delete(rows);
    for (int i = 0; i < n_earlier; i++)
        fr_net_free(earlier[i]);
    fr_net_free(teacher);
    fr_split_free(&sp);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
