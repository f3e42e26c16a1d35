/* The recipe commands end to end: runs the built `frugal` binary (FRUGAL_EXE) on small slices of Fashion-MNIST
 * for a few steps and checks files, JSON results, CSVs read back by the loader, frozen backbones, Noisy Student
 * round chaining, bit-identical resume, and exit status 2 for bad flags and missing files; then one test per
 * finding of the new-user report (full disks, stale and torn outputs, signals, locks, flag ranges, label checks,
 * consistent flags, exit codes and JSON keys). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frugal/augment.h"
#include "frugal/data.h"
#include "frugal/io.h"
#include "testutil.h"

static char g_dir[512];
static char g_exe[1024];
static bool g_have_data;
static char g_out[1 << 16];
static const char *g_env = ""; /* extra environment of the next runs, e.g. "FRUGAL_THREADS=abc" */

static const char *stderr_text(void);

/* Runs `frugal ARGS` with stdout captured into g_out (stderr to <dir>/stderr.txt); returns the exit status. */
static int run(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "FRUGAL_DEVICE=cpu FRUGAL_THREADS=2 %s %s %s 2>%s/stderr.txt", g_env, g_exe, args, g_dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(g_out, 1, sizeof g_out - 1, p);
    g_out[n] = 0;
    int st = pclose(p);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (rc != 0 && rc != 2)
        printf("frugal %s -> %d: %s\n", args, rc, stderr_text());
    return rc;
}

static const char *stderr_text(void)
{
    static char buf[1 << 16];
    FILE *f = fopen(tu_path(g_dir, "stderr.txt"), "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    return buf;
}

static cJSON *json_out(void)
{
    cJSON *o = cJSON_Parse(g_out);
    if (!o)
        fail_msg("stdout is not JSON: %.300s\nstderr: %.800s", g_out, stderr_text());
    return o;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("JSON key '%s' missing or not a number", key);
    return v->valuedouble;
}

static bool exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

#define NEED_DATA()                                                                          \
    do {                                                                                     \
        if (!g_have_data) {                                                                  \
            printf("skipped: Fashion-MNIST is not installed (dataset-fashion-mnist)\n");    \
            skip();                                                                          \
        }                                                                                    \
    } while (0)

/* shared small runs: the t model on 1,000 training images, 300 labels, 2 epochs */
#define SMALL "--data fmnist --train-limit 1000 --labels 300 --test-limit 500 --model t --batch 32 --threads 2"

static int group_setup(void **state)
{
    (void)state;
    const char *exe = getenv("FRUGAL_EXE");
    snprintf(g_exe, sizeof g_exe, "%s", exe ? exe : "tools/frugal");
    if (tu_tmpdir_create(g_dir, sizeof g_dir, "cli"))
        return -1;
    g_have_data = fr_dataset_fmnist_dir() != NULL;
    if (!g_have_data)
        return 0;
    int rc = run("train " SMALL " --epochs 5 --lr 0.005 --out %s --json", tu_path(g_dir, "base"));
    if (rc != 0) {
        fprintf(stderr, "base training run failed (%d): %s\n", rc, stderr_text());
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "umount '%s/full' 2>/dev/null", g_dir); /* a failed test_full_disk may leave it */
    if (system(cmd)) {
        /* not mounted */
    }
    return tu_tmpdir_remove(g_dir);
}

static void test_bad_flags(void **state)
{
    (void)state;
    assert_int_equal(run("train --no-such-flag 1"), 2);
    assert_non_null(strstr(stderr_text(), "no-such-flag"));
    assert_int_equal(run("train --data idx:/nonexistent/images.gz --epochs 1"), 2);
    assert_non_null(strstr(stderr_text(), "/nonexistent/images.gz"));
    assert_int_equal(run("eval --model /nonexistent/model.safetensors --data fmnist:test"), 2);
    assert_non_null(strstr(stderr_text(), "/nonexistent/model.safetensors"));
    assert_int_equal(run("predict --model /nonexistent/m.safetensors /nonexistent/img.png"), 2);
    assert_int_equal(run("pseudo-label --data fmnist"), 2);       /* no --teacher / --out */
    assert_int_equal(run("train --data fmnist --model q"), 2);    /* unknown architecture */
    assert_int_equal(run("train --data fmnist --epochs x"), 2);   /* not an integer */
    assert_int_equal(run("finetune --from x --data fmnist --freeze half"), 2);
    assert_int_equal(run("noisy-student --data fmnist --rounds 0"), 2);
    assert_int_equal(run("demo --bogus"), 2);
    /* config files: unknown keys are errors, known keys work and the command line wins */
    FILE *f = fopen(tu_path(g_dir, "bad.ini"), "w");
    assert_non_null(f);
    fputs("epochs = 1\nlearning_rate_typo = 3\n", f);
    fclose(f);
    assert_int_equal(run("train --config %s --data fmnist", tu_path(g_dir, "bad.ini")), 2);
    assert_non_null(strstr(stderr_text(), "learning_rate_typo"));
    assert_int_equal(run("train --config /nonexistent.ini --data fmnist"), 2);
}

static void test_train_outputs(void **state)
{
    (void)state;
    NEED_DATA();
    assert_int_equal(run("train " SMALL " --epochs 2 --out %s --json --augment 'hflip' --cutmix 1.0",
                         tu_path(g_dir, "train")),
                     0);
    cJSON *o = json_out();
    double acc = num(o, "test_accuracy");
    assert_true(acc > 0.2 && acc <= 1.0); /* chance is 0.1; two epochs of t on 270 images beat it */
    assert_true(num(o, "test_loss") > 0 && isfinite(num(o, "test_loss")));
    assert_true(num(o, "train_images_per_second") > 0);
    assert_true(num(o, "seconds") > 0);
    assert_int_equal((int)num(o, "fallback_ops"), 0);
    assert_int_equal((int)num(o, "test_images"), 500);
    assert_int_equal((int)num(o, "labels"), 300);
    assert_string_equal(cJSON_GetObjectItem(o, "device")->valuestring, "cpu");
    cJSON_Delete(o);
    /* the device is named once; the CPU path has nothing to fall back from */
    const char *dev = strstr(stderr_text(), "device cpu");
    assert_non_null(dev);
    assert_null(strstr(dev + 1, "device cpu"));
    assert_null(strstr(stderr_text(), "fell back"));
    assert_true(exists(tu_path(g_dir, "train/model.safetensors")));
    /* one JSON line per epoch */
    FILE *f = fopen(tu_path(g_dir, "train/metrics.jsonl"), "r");
    assert_non_null(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *m = cJSON_Parse(line);
        assert_non_null(m);
        assert_int_equal((int)num(m, "epoch"), n + 1);
        double va = num(m, "val_accuracy");
        assert_true(va >= 0 && va <= 1);
        cJSON_Delete(m);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 2);
}

/* two epochs straight == one epoch, then --resume for the second (every tensor, optimizer state included) */
static void test_resume_bit_identical(void **state)
{
    (void)state;
    NEED_DATA();
    const char *common = SMALL " --schedule constant --augment 'hflip;translate(x=0.1,y=0.1)'";
    assert_int_equal(run("train %s --epochs 2 --out %s", common, tu_path(g_dir, "straight")), 0);
    assert_int_equal(run("train %s --epochs 1 --out %s", common, tu_path(g_dir, "split")), 0);
    assert_int_equal(run("train %s --epochs 2 --out %s --resume %s --json", common, tu_path(g_dir, "split"),
                         tu_path(g_dir, "split/model.safetensors")),
                     0);
    cJSON *o = json_out(); /* finding 30: steps count the whole run, steps_this_run this process */
    assert_int_equal((int)num(o, "epochs"), 2);
    assert_true(num(o, "steps_this_run") > 0);
    assert_int_equal((int)num(o, "steps"), 2 * (int)num(o, "steps_this_run"));
    cJSON_Delete(o);
    struct fr_safetensors *a, *b;
    assert_int_equal(fr_st_open(tu_path(g_dir, "straight/model.safetensors"), &a), FR_STATUS_OK);
    assert_int_equal(fr_st_open(tu_path(g_dir, "split/model.safetensors"), &b), FR_STATUS_OK);
    assert_int_equal(a->n_tensors, b->n_tensors);
    assert_true(a->n_tensors > 4); /* model + optimizer moments + step */
    for (int i = 0; i < a->n_tensors; i++) {
        const struct fr_st_tensor *tb = fr_st_find(b, a->tensors[i].name);
        assert_non_null(tb);
        assert_int_equal(a->tensors[i].end - a->tensors[i].begin, tb->end - tb->begin);
        if (memcmp(a->tensors[i].data, tb->data, a->tensors[i].end - a->tensors[i].begin) != 0)
            fail_msg("tensor %s differs after resume", a->tensors[i].name);
    }
    assert_string_equal(fr_st_meta(a, "frugal.global_step"), fr_st_meta(b, "frugal.global_step"));
    assert_string_equal(fr_st_meta(a, "frugal.epoch"), "2");
    fr_st_free(a);
    fr_st_free(b);
}

static void test_eval_matches_train(void **state)
{
    (void)state;
    NEED_DATA();
    assert_int_equal(run("train " SMALL " --epochs 1 --out %s --json", tu_path(g_dir, "ev")), 0);
    cJSON *t = json_out();
    double train_acc = num(t, "test_accuracy"), train_loss = num(t, "test_loss");
    cJSON_Delete(t);
    assert_int_equal(run("eval --model %s --data fmnist:test --limit 500 --json", tu_path(g_dir, "ev/model.safetensors")),
                     0);
    cJSON *o = json_out();
    assert_true(fabs(num(o, "test_accuracy") - train_acc) < 1e-9); /* same weights, same 500 images */
    assert_true(fabs(num(o, "test_loss") - train_loss) < 1e-6);
    cJSON *cm = cJSON_GetObjectItem(o, "confusion_matrix"), *pc = cJSON_GetObjectItem(o, "per_class_accuracy");
    assert_int_equal(cJSON_GetArraySize(cm), 10);
    assert_int_equal(cJSON_GetArraySize(pc), 10);
    double total = 0, diag = 0;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            double v = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j)->valuedouble;
            total += v;
            diag += i == j ? v : 0;
        }
    assert_int_equal((int)total, 500);
    assert_true(fabs(diag / total - num(o, "test_accuracy")) < 1e-12);
    cJSON_Delete(o);
    assert_int_equal(run("eval --model %s --data fmnist:test --limit 100", tu_path(g_dir, "ev/model.safetensors")), 0);
    assert_non_null(strstr(g_out, "confusion matrix"));
}

static void test_predict_topk(void **state)
{
    (void)state;
    NEED_DATA();
    struct fr_dataset *ds;
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.split = "test";
    assert_int_equal(fr_dataset_fmnist_open("test", &o, &ds), FR_STATUS_OK);
    mkdir(tu_path(g_dir, "imgs"), 0777);
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "imgs/%d.png", i);
        assert_int_equal(fr_aug_write_png(tu_path(g_dir, name), ds->pixels + i * 784, 28, 28, 1), FR_STATUS_OK);
    }
    fr_dataset_free(ds);
    assert_int_equal(run("predict --model %s --input %s --top-k 3 --json", tu_path(g_dir, "base/model.safetensors"),
                         tu_path(g_dir, "imgs")),
                     0);
    cJSON *r = json_out();
    cJSON *preds = cJSON_GetObjectItem(r, "predictions");
    assert_int_equal(cJSON_GetArraySize(preds), 3);
    cJSON *p;
    cJSON_ArrayForEach(p, preds)
    {
        cJSON *top = cJSON_GetObjectItem(p, "top");
        assert_int_equal(cJSON_GetArraySize(top), 3);
        double prev = 2, sum = 0;
        cJSON *t;
        cJSON_ArrayForEach(t, top)
        {
            double pr = num(t, "probability");
            assert_true(pr >= 0 && pr <= prev + 1e-12);
            prev = pr;
            sum += pr;
        }
        assert_true(sum <= 1.0 + 1e-5);
    }
    cJSON_Delete(r);
}

static void test_pseudo_label_csv(void **state)
{
    (void)state;
    NEED_DATA();
    char ckpt[1024];
    snprintf(ckpt, sizeof ckpt, "%s", tu_path(g_dir, "base/model.safetensors"));
    assert_int_equal(run("pseudo-label --teacher %s --data fmnist --train-limit 300 --out %s --threshold 0.2 --json", ckpt,
                         tu_path(g_dir, "pl/hard.csv")),
                     0);
    cJSON *o = json_out();
    assert_string_equal(cJSON_GetObjectItem(o, "command")->valuestring, "pseudo-label"); /* finding 30 */
    int rows = (int)num(o, "rows");
    assert_true(rows > 0 && rows <= 300);
    double pla = num(o, "pseudo_label_accuracy");
    assert_true(pla > 0.2 && pla <= 1);
    cJSON_Delete(o);
    struct fr_dataset *ds;
    char spec[1024];
    snprintf(spec, sizeof spec, "csv:%s", tu_path(g_dir, "pl/hard.csv"));
    assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, rows);
    assert_int_equal(ds->h, 28);
    for (int64_t i = 0; i < ds->n; i++)
        assert_true(ds->labels[i] >= 0 && ds->labels[i] < 10);
    fr_dataset_free(ds);
    assert_true(exists(tu_path(g_dir, "pl/hard.confidence.csv")));

    /* soft, balanced: probabilities per row, equal counts for every class present */
    assert_int_equal(run("pseudo-label --teacher %s --data fmnist --train-limit 300 --out %s --soft --balance --json",
                         ckpt, tu_path(g_dir, "pl/soft.csv")),
                     0);
    o = json_out();
    cJSON *cc = cJSON_GetObjectItem(o, "class_counts");
    int64_t per = -1;
    for (int i = 0; i < cJSON_GetArraySize(cc); i++) {
        int64_t v = (int64_t)cJSON_GetArrayItem(cc, i)->valuedouble;
        if (v == 0)
            continue;
        if (per < 0)
            per = v;
        assert_int_equal(v, per);
    }
    cJSON_Delete(o);
    snprintf(spec, sizeof spec, "csv:%s", tu_path(g_dir, "pl/soft.csv"));
    assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
    assert_non_null(ds->soft);
    assert_int_equal(ds->n_classes, 10);
    assert_string_equal(ds->class_names[0], "T-shirt/top");
    for (int64_t i = 0; i < ds->n; i++) {
        double s = 0;
        for (int k = 0; k < 10; k++)
            s += ds->soft[i * 10 + k];
        assert_true(fabs(s - 1.0) < 1e-3);
    }
    fr_dataset_free(ds);
}

static bool tensors_equal(const struct fr_safetensors *a, const struct fr_safetensors *b, const char *name)
{
    const struct fr_st_tensor *x = fr_st_find(a, name), *y = fr_st_find(b, name);
    assert_non_null(x);
    assert_non_null(y);
    return x->end - x->begin == y->end - y->begin && memcmp(x->data, y->data, x->end - x->begin) == 0;
}

static void test_finetune_frozen_backbone(void **state)
{
    (void)state;
    NEED_DATA();
    assert_int_equal(run("train " SMALL " --classes 0-4 --epochs 1 --out %s", tu_path(g_dir, "src")), 0);
    char src[1024];
    snprintf(src, sizeof src, "%s", tu_path(g_dir, "src/model.safetensors"));
    assert_int_equal(run("finetune --from %s --data fmnist --train-limit 1000 --classes 5-9 --labels 100 --test-limit 500 "
                         "--epochs 2 --batch 16 --freeze backbone --out %s --json",
                         src, tu_path(g_dir, "frozen")),
                     0);
    cJSON *o = json_out();
    assert_true(num(o, "test_accuracy") > 0.2); /* 5 classes */
    cJSON_Delete(o);
    assert_int_equal(run("finetune --from %s --data fmnist --train-limit 1000 --classes 5-9 --labels 100 --test-limit 500 "
                         "--epochs 1 --batch 16 --freeze none --backbone-lr-mult 0.5 --out %s",
                         src, tu_path(g_dir, "tuned")),
                     0);
    struct fr_safetensors *s, *fz, *tn;
    assert_int_equal(fr_st_open(src, &s), FR_STATUS_OK);
    assert_int_equal(fr_st_open(tu_path(g_dir, "frozen/model.safetensors"), &fz), FR_STATUS_OK);
    assert_int_equal(fr_st_open(tu_path(g_dir, "tuned/model.safetensors"), &tn), FR_STATUS_OK);
    const char *backbone[] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"};
    for (int i = 0; i < 4; i++) {
        assert_true(tensors_equal(s, fz, backbone[i]));
        assert_false(tensors_equal(s, tn, backbone[i]));
    }
    assert_false(tensors_equal(s, fz, "fc.bias") && tensors_equal(s, fz, "fc.weight"));
    assert_string_equal(fr_st_meta(fz, "frugal.n_classes"), "5");
    fr_st_free(s);
    fr_st_free(fz);
    fr_st_free(tn);
}

static void expect_usage(const char *want, const char *fmt, ...);

static void test_distill(void **state)
{
    (void)state;
    NEED_DATA();
    char ckpt[1024];
    snprintf(ckpt, sizeof ckpt, "%s", tu_path(g_dir, "base/model.safetensors"));
    assert_int_equal(run("distill --teacher %s " SMALL " --epochs 4 --lr 0.005 --temperature 4 --alpha 0.9 --unlabeled "
                         "fmnist:test --unlabeled-limit 200 --json",
                         ckpt),
                     0);
    cJSON *o = json_out();
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "teacher_logits_cached")));
    double acc = num(o, "test_accuracy");
    assert_true(acc > 0.1 && acc <= 1);
    assert_true(num(o, "teacher_test_accuracy") > 0.2);
    cJSON_Delete(o);
    /* flips alone: the logits of each image and its mirror image, cached (the same losses as the teacher in the
     * graph: test_recipes.c); other augmentation: the teacher in the graph */
    assert_int_equal(run("distill --teacher %s " SMALL " --epochs 1 --augment hflip --json", ckpt), 0);
    o = json_out();
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "teacher_logits_cached")));
    assert_int_equal((int)num(o, "teacher_views"), 2);
    cJSON_Delete(o);
    assert_int_equal(run("distill --teacher %s " SMALL " --epochs 1 --augment 'hflip;translate(x=0.1,y=0.1)' --json", ckpt),
                     0);
    o = json_out();
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "teacher_logits_cached")));
    assert_int_equal((int)num(o, "teacher_views"), 0);
    cJSON_Delete(o);
    /* the cached logits are the teacher's on the very images of each batch: the same run with the teacher in the
     * graph on an identity augmentation (a flip that never fires and a shift by 0) gives the same losses and
     * accuracies */
    double cached[3], graph[3];
    for (int g = 0; g < 2; g++) {
        assert_int_equal(run("distill --teacher %s " SMALL " --epochs 2 --temperature 2 --alpha 0.5 --seed 3 %s --json",
                             ckpt, g ? "--augment 'hflip(p=0);translate(x=0,y=0)'" : ""),
                         0);
        o = json_out();
        assert_true(cJSON_IsBool(cJSON_GetObjectItem(o, "teacher_logits_cached")) &&
                    cJSON_IsTrue(cJSON_GetObjectItem(o, "teacher_logits_cached")) == !g);
        double *v = g ? graph : cached;
        v[0] = num(o, "train_loss"), v[1] = num(o, "val_accuracy"), v[2] = num(o, "test_accuracy");
        cJSON_Delete(o);
    }
    for (int i = 0; i < 3; i++)
        if (fabs(cached[i] - graph[i]) > 1e-5 * (1 + fabs(cached[i])))
            fail_msg("cached teacher logits vs the teacher in the graph: %d: %.8g vs %.8g", i, cached[i], graph[i]);
    /* out-of-fold teachers (the logits themselves: test_recipes.c): in fold order, on the same data, cached */
    char f0[1024], f1[1024], f5[1024];
    snprintf(f0, sizeof f0, "%s", tu_path(g_dir, "fold0"));
    snprintf(f1, sizeof f1, "%s", tu_path(g_dir, "fold1"));
    snprintf(f5, sizeof f5, "%s", tu_path(g_dir, "fold5"));
    assert_int_equal(run("train " SMALL " --epochs 1 --fold 0/2 --out %s", f0), 0);
    assert_int_equal(run("train " SMALL " --epochs 1 --fold 1/2 --out %s", f1), 0);
    assert_int_equal(run("train " SMALL " --epochs 1 --fold 1/2 --classes 0-4 --out %s", f5), 0);
    assert_int_equal(run("distill --fold-teachers %s/model.safetensors,%s/model.safetensors " SMALL " --epochs 1 --json",
                         f0, f1),
                     0);
    o = json_out();
    assert_int_equal((int)num(o, "teachers"), 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "out_of_fold")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "teacher_logits_cached")));
    cJSON_Delete(o);
    /* the same two as an ensemble (their mean logits; the logits themselves: test_recipes.c) */
    assert_int_equal(run("distill --teacher %s/model.safetensors,%s " SMALL " --epochs 1 --json", f0, ckpt), 0);
    o = json_out();
    assert_int_equal((int)num(o, "teachers"), 2);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "out_of_fold")));
    assert_true(num(o, "teacher_test_accuracy") > 0.2 && num(o, "teacher_test_accuracy") <= 1);
    cJSON_Delete(o);
    expect_usage("with 2 teachers", "distill --teacher %s,%s " SMALL " --mixup 0.2", ckpt, ckpt);
    expect_usage("expected --fold 0/2", "distill --fold-teachers %s/model.safetensors,%s/model.safetensors " SMALL, f1, f0);
    expect_usage("has 5: the class indices would not match", "distill --fold-teachers %s/model.safetensors,%s/model.safetensors " SMALL, f0, f5);
    expect_usage("--train-limit 1000, this run uses 900",
                 "distill --fold-teachers %s/model.safetensors,%s/model.safetensors " SMALL " --train-limit 900", f0, f1);
    expect_usage("use --augment hflip or none", "distill --fold-teachers %s/model.safetensors,%s/model.safetensors " SMALL
                 " --augment 'hflip;translate(x=0.1,y=0.1)'", f0, f1);
    assert_int_equal(run("distill --fold-teachers %s/model.safetensors,%s/model.safetensors " SMALL " --epochs 1 "
                         "--augment hflip --json", f0, f1),
                     0);
    o = json_out();
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "out_of_fold")));
    assert_int_equal((int)num(o, "teacher_views"), 2);
    cJSON_Delete(o);
    expect_usage("not both", "distill --teacher %s --fold-teachers %s,%s " SMALL, ckpt, ckpt, ckpt);
    expect_usage("--fold 2/2", "train " SMALL " --fold 2/2");
    expect_usage("--fold 0/2 (now none)", "train " SMALL " --epochs 2 --resume %s/model.safetensors", f0);
}

static void test_noisy_student_rounds(void **state)
{
    (void)state;
    NEED_DATA();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_path(g_dir, "ns"));
    assert_int_equal(run("noisy-student --data fmnist --train-limit 1000 --labels 200 --test-limit 300 --teacher-model t "
                         "--teacher-epochs 3 --epochs 1 --batch 32 --rounds 2 --unlabeled-ratio 2 --threshold 0.1 --noise hflip --out %s "
                         "--json",
                         dir),
                     0);
    cJSON *o = json_out();
    /* finding 30: the command as typed, the keys of every training command */
    assert_string_equal(cJSON_GetObjectItem(o, "command")->valuestring, "noisy-student");
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, "t");
    assert_true(num(o, "parameters") > 0 && num(o, "steps") > 0);
    assert_true(num(o, "test_loss") > 0);
    cJSON *rounds = cJSON_GetObjectItem(o, "rounds");
    assert_int_equal(cJSON_GetArraySize(rounds), 3);
    cJSON *r1 = cJSON_GetArrayItem(rounds, 1), *r2 = cJSON_GetArrayItem(rounds, 2);
    assert_string_equal(cJSON_GetObjectItem(r2, "teacher_checkpoint")->valuestring,
                        cJSON_GetObjectItem(r1, "checkpoint")->valuestring);
    assert_int_equal((int)num(r1, "unlabeled_images"), 360); /* 2 x 180 training labels */
    assert_true(num(r1, "pseudo_labels") > 0);
    cJSON_Delete(o);
    char p[1100];
    snprintf(p, sizeof p, "%s/round2.safetensors", dir);
    struct fr_safetensors *st;
    assert_true(exists(tu_path(dir, "teacher.safetensors")));
    assert_true(exists(tu_path(dir, "round1.safetensors")));
    assert_int_equal(fr_st_open(p, &st), FR_STATUS_OK);
    assert_string_equal(fr_st_meta(st, "frugal.round"), "2");
    assert_string_equal(fr_st_meta(st, "frugal.teacher"), tu_path(dir, "round1.safetensors"));
    fr_st_free(st);
}

static void test_demo_tiny(void **state)
{
    (void)state;
    NEED_DATA();
    /* every row with the full demo's model c (batch-norm, dropout) */
    assert_int_equal(run("demo --quick --arch c --labels 200 --epochs 1 --fixmatch-epochs 1 --labeled-repeat 2 --rounds 2 "
                         "--unlabeled-ratio 1 --ns-threshold 0.1 --pl-threshold 0.1 --threshold 0.5 --test-limit 300 --json"),
                     0);
    cJSON *o = json_out();
    assert_string_equal(cJSON_GetObjectItem(o, "command")->valuestring, "demo"); /* finding 30 */
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, "c");
    cJSON *rows = cJSON_GetObjectItem(o, "rows");
    const char *want[] = {"supervised", "supervised+augment", "pseudo-label", "fixmatch", "noisy-student round 1",
                          "noisy-student round 2"};
    assert_int_equal(cJSON_GetArraySize(rows), 6);
    for (int i = 0; i < 6; i++) {
        cJSON *r = cJSON_GetArrayItem(rows, i);
        assert_string_equal(cJSON_GetObjectItem(r, "method")->valuestring, want[i]);
        assert_int_equal((int)num(r, "labels"), 200);
        /* the baselines use no unlabeled image; the others 1 x 180 training labels */
        assert_int_equal((int)num(r, "unlabeled_images"), i < 2 ? 0 : 180);
        if (i >= 2)
            assert_true(num(r, "pseudo_labels") >= 0 && num(r, "pseudo_labels") <= 2 * 180);
        double a = num(r, "test_accuracy");
        assert_true(a >= 0 && a <= 1);
        assert_true(num(r, "seconds") > 0);
    }
    cJSON_Delete(o);
    /* FixMatch starts from the pseudo-label student (--fixmatch-fresh: from the run's fresh weights, those of the
       supervised row): with a learning rate too small to change a prediction, its row evaluates as the one it
       started from */
    const char *still = "demo --quick --labels 200 --epochs 1 --fixmatch-epochs 1 --labeled-repeat 1 --rounds 0 "
                        "--unlabeled-ratio 1 --pl-threshold 0.1 --threshold 0.5 --lambda-u 0 --lr 1e-9 --test-limit 300";
    for (int fresh = 0; fresh < 2; fresh++) {
        assert_int_equal(run("%s%s --json", still, fresh ? " --fixmatch-fresh" : ""), 0);
        o = json_out();
        assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, "t"); /* the quick demo's model */
        rows = cJSON_GetObjectItem(o, "rows");
        assert_int_equal(cJSON_GetArraySize(rows), 4);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 3), "method")->valuestring, "fixmatch");
        double from = num(cJSON_GetArrayItem(rows, fresh ? 0 : 2), "test_accuracy"),
               other = num(cJSON_GetArrayItem(rows, fresh ? 2 : 0), "test_accuracy");
        assert_true(num(cJSON_GetArrayItem(rows, 3), "test_accuracy") == from);
        assert_true(from != other); /* the two starting points are told apart */
        cJSON_Delete(o);
    }
    /* a threshold no prediction reaches leaves nothing to learn from: an error, not a row credited to unlabeled data */
    expect_usage("kept no pseudo-label", "demo --quick --labels 200 --epochs 1 --fixmatch-epochs 1 --labeled-repeat 1 "
                                         "--unlabeled-ratio 1 --pl-threshold 1 --test-limit 100");
    expect_usage("--ensemble 11", "demo --quick --ensemble 11");
}

/* fixmatch: a short run with the weights' moving average evaluated and saved beside the raw weights */
static void test_fixmatch_tiny(void **state)
{
    (void)state;
    NEED_DATA();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_path(g_dir, "fm"));
    assert_int_equal(run("fixmatch --data fmnist --train-limit 1000 --labels 200 --test-limit 300 --epochs 1 --batch 16 "
                         "--mu 2 --threshold 0.7 --ema 0.9 --out %s --json",
                         dir),
                     0);
    cJSON *o = json_out();
    assert_string_equal(cJSON_GetObjectItem(o, "command")->valuestring, "fixmatch");
    assert_int_equal((int)num(o, "labels"), 200);
    assert_true(num(o, "threshold") == 0.7 && num(o, "mu") == 2);
    /* an epoch is a pass over the 800 unlabeled images, 32 per step */
    assert_int_equal((int)num(o, "steps"), 800 / 32);
    double a = num(o, "test_accuracy_ema"), v = num(o, "val_accuracy_ema");
    assert_true(a >= 0 && a <= 1 && v >= 0 && v <= 1);
    cJSON_Delete(o);
    assert_true(exists(tu_path(dir, "model.safetensors")));
    assert_true(exists(tu_path(dir, "model_ema.safetensors")));
    /* the saved average evaluates to the accuracy the run printed */
    assert_int_equal(run("eval --checkpoint %s/model_ema.safetensors --data fmnist:test --test-limit 300 --json", dir), 0);
    o = json_out();
    assert_true(fabs(num(o, "test_accuracy") - a) < 1e-9);
    cJSON_Delete(o);
    /* bad input: one line, exit 2, before training */
    expect_usage("--threshold 1.5", "fixmatch --data fmnist --threshold 1.5");
    expect_usage("--threshold -0.1", "fixmatch --data fmnist --threshold -0.1");
    expect_usage("--mu 0", "fixmatch --data fmnist --mu 0");
    expect_usage("--ema 1", "train --data fmnist --ema 1");
    expect_usage("no images left unlabeled", "fixmatch --data fmnist --train-limit 300 --labels 0 --epochs 1");
    expect_usage("no images left unlabeled", "fixmatch --data fmnist --classes 0,1 --train-limit 300 --labels 0");
    /* a teacher or starting point whose classes differ from the data's, before any training */
    expect_usage("5 classes, ", "noisy-student --data fmnist --classes 0-4 --train-limit 500 --labels 100 "
                 "--teacher %s/model.safetensors --rounds 1", dir);
    expect_usage("model.safetensors has 10", "fixmatch --data fmnist --classes 0-4 --train-limit 500 --labels 100 "
                 "--init %s/model.safetensors", dir);
}

/* --model MODELFILE: trains, stores the file's text in the checkpoint, and the checkpoint evaluates after the
 * file is gone; a bad model file is a usage error naming file:line */
static void test_model_file(void **state)
{
    (void)state;
    NEED_DATA();
    char mf[600];
    snprintf(mf, sizeof mf, "%s", tu_path(g_dir, "tiny-model.txt"));
    FILE *f = fopen(mf, "w");
    assert_non_null(f);
    fputs("# a small CNN\nconv conv1 8 3 1 1\nrelu\nmaxpool 2 2\nflatten\nlinear head 32\nrelu\nlinear fc 99\n", f);
    fclose(f);
    assert_int_equal(run("train --data fmnist --train-limit 500 --labels 200 --test-limit 200 --batch 32 --threads 2 "
                         "--epochs 1 --model %s --out %s --json",
                         mf, tu_path(g_dir, "mf")),
                     0);
    cJSON *t = json_out();
    double train_acc = num(t, "test_accuracy");
    assert_string_equal(cJSON_GetObjectItem(t, "model")->valuestring, "tiny-model.txt");
    assert_int_equal((int)num(t, "parameters"), 80 + 1568 * 32 + 32 + 32 * 10 + 10); /* head sized for 10 classes */
    cJSON_Delete(t);
    char ck[600];
    snprintf(ck, sizeof ck, "%s", tu_path(g_dir, "mf/model.safetensors"));
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(ck, &st), FR_STATUS_OK);
    const char *text = fr_st_meta(st, "frugal.model_text");
    assert_non_null(text);
    assert_non_null(strstr(text, "linear head 32"));
    fr_st_free(st);
    /* plain weights + --arch FILE while the file exists */
    assert_int_equal(run("eval --weights %s --arch %s --data fmnist:test --limit 200 --json", ck, mf), 0);
    cJSON *w = json_out();
    assert_true(fabs(num(w, "test_accuracy") - train_acc) < 1e-9);
    cJSON_Delete(w);
    assert_int_equal(remove(mf), 0);
    assert_int_equal(run("eval --model %s --data fmnist:test --limit 200 --json", ck), 0);
    cJSON *o = json_out();
    assert_true(fabs(num(o, "test_accuracy") - train_acc) < 1e-9); /* same weights, same 200 images */
    cJSON_Delete(o);
    f = fopen(mf, "w");
    assert_non_null(f);
    fputs("conv conv1 8 3 1 1\nrelux\nflatten\nlinear fc 10\n", f);
    fclose(f);
    assert_int_equal(run("train --data fmnist --model %s", mf), 2);
    char want[700];
    snprintf(want, sizeof want, "%s:2: unknown layer 'relux'", mf);
    assert_non_null(strstr(stderr_text(), want));
    assert_int_equal(run("train --data fmnist --model %s", tu_path(g_dir, "no-such-model.txt")), 2);
    assert_non_null(strstr(stderr_text(), "no-such-model.txt"));
}

/* ---------- findings of the new-user report: helpers ---------- */

/* Fashion-MNIST test images as PNGs: n images (of class `label`, or any when -1) from index `from` on, named
 * <prefix><index>.png in dir (created); size > 0 resizes to size x size. */
static void write_pngs(const char *dir, int n, int label, int from, const char *prefix, int size)
{
    static struct fr_dataset *ds;
    if (!ds) {
        struct fr_dataset_opts o;
        fr_dataset_opts_init(&o);
        assert_int_equal(fr_dataset_fmnist_open("test", &o, &ds), FR_STATUS_OK); /* kept for the whole suite */
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    int s = size > 0 ? size : 28;
    uint8_t *px = malloc((size_t)s * s);
    for (int64_t i = from, done = 0; i < ds->n && done < n; i++) {
        if (label >= 0 && ds->labels[i] != label)
            continue;
        fr_image_convert(ds->pixels + i * 784, 1, 28, 28, px, 1, s, s, FR_RESIZE_BILINEAR);
        char path[2400];
        snprintf(path, sizeof path, "%s/%s%05lld.png", dir, prefix, (long long)i);
        assert_int_equal(fr_aug_write_png(path, px, s, s, 1), FR_STATUS_OK);
        done++;
    }
    free(px);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *t = malloc((size_t)n + 1);
    size_t got = fread(t, 1, (size_t)n, f);
    t[got] = 0;
    fclose(f);
    return t;
}

/* files in dir whose name contains `part` (NULL = all but . and ..); -1 when one of them is empty (0 bytes) */
static int count_files(const char *dir, const char *part)
{
    bool empty = false;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (part && !strstr(e->d_name, part)))
            continue;
        char p[1200];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0) {
            printf("%s is empty\n", p);
            empty = true;
        }
        n++;
    }
    closedir(d);
    return empty ? -1 : n;
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static bool mount_tmpfs(const char *dir, const char *size)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mount -t tmpfs -o size=%s tmpfs '%s' 2>/dev/null", dir, size, dir);
    return system(cmd) == 0;
}

static void umount_dir(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "umount '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* starts `frugal ARGS` in the background (stdout to /dev/null, stderr to <dir>/stderr.txt); its pid */
static pid_t spawn(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "exec env FRUGAL_DEVICE=cpu FRUGAL_THREADS=2 %s %s >/dev/null 2>%s/stderr.txt", g_exe, args,
             g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_rc(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* waits up to `seconds` for a file or directory whose name in dir starts with `prefix` */
static bool wait_for(const char *dir, const char *prefix, double seconds)
{
    for (double t = 0; t < seconds; t += 0.005) {
        DIR *d = opendir(dir);
        struct dirent *e;
        bool found = false;
        while (d && (e = readdir(d)))
            found |= !strncmp(e->d_name, prefix, strlen(prefix));
        if (d)
            closedir(d);
        if (found)
            return true;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    return false;
}

static void expect_usage(const char *want, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = run("%s", args);
    if (rc != 2 || !strstr(stderr_text(), want))
        fail_msg("frugal %s -> %d, stderr lacks '%s':\n%s", args, rc, want, stderr_text());
}

/* the base checkpoint */
static const char *base_ckpt(void)
{
    static char p[600];
    snprintf(p, sizeof p, "%s/base/model.safetensors", g_dir);
    return p;
}

/* ---------- findings 1, 20: a full disk is an error, never an empty file or rc 0 ---------- */
static void test_full_disk(void **state)
{
    (void)state;
    NEED_DATA();
    char full[600], pngs[600];
    snprintf(full, sizeof full, "%s", tu_path(g_dir, "full"));
    snprintf(pngs, sizeof pngs, "%s", tu_path(g_dir, "pngs20"));
    write_pngs(pngs, 20, -1, 0, "", 0);
    if (!mount_tmpfs(full, "64k")) {
        printf("skipped: cannot mount a tmpfs here (needs root)\n");
        skip();
    }
    char filler[700];
    snprintf(filler, sizeof filler, "dd if=/dev/zero of='%s/filler' bs=1k count=62 2>/dev/null", full);
    int drc = system(filler);
    /* old spellings (--out-dir, --out FILE.csv) so that this test runs the same on the report's commit */
    int aug = run("augment --input %s --policy hflip --count 8 --out-dir %s/augout --grid %s/sheet.png", pngs, full, full);
    char aug_err[4096];
    snprintf(aug_err, sizeof aug_err, "%s", stderr_text());
    char augout[700];
    snprintf(augout, sizeof augout, "%s/augout", full);
    int aug_files = count_files(augout, ".png"); /* -1 with an empty file */
    int pl = run("pseudo-label --teacher %s --data fmnist --train-limit 30 --out %s/pl/labels.csv", base_ckpt(), full);
    char pl_err[4096];
    snprintf(pl_err, sizeof pl_err, "%s", stderr_text());
    char pldir[700];
    snprintf(pldir, sizeof pldir, "%s/pl", full);
    int pl_files = count_files(pldir, NULL);
    int tr = run("train " SMALL " --epochs 1 --out %s/run", full);
    char tr_err[4096];
    snprintf(tr_err, sizeof tr_err, "%s", stderr_text());
    umount_dir(full);
    assert_int_equal(drc, 0);
    assert_int_equal(aug, 1);
    assert_non_null(strstr(aug_err, "No space left on device"));
    assert_true(aug_files >= 0 && aug_files < 160);
    assert_int_equal(pl, 1);
    assert_non_null(strstr(pl_err, "No space left on device"));
    assert_int_equal(pl_files, 0); /* no CSV, no images, no staging directory */
    assert_int_equal(tr, 1);       /* a failed checkpoint write is a failed run, not bad input */
    assert_non_null(strstr(tr_err, "No space left on device"));
}

/* ---------- finding 2: a rerun never pairs new labels with images of an earlier run ---------- */
static void test_pseudo_label_fresh_images(void **state)
{
    (void)state;
    NEED_DATA();
    char csv[600], torn[700];
    snprintf(csv, sizeof csv, "%s", tu_path(g_dir, "pl2/l.csv"));
    assert_int_equal(run("pseudo-label --teacher %s --data fmnist:test --train-limit 20 --out %s", base_ckpt(), csv), 0);
    snprintf(torn, sizeof torn, "%s/pl2/l_images/000003.png", g_dir);
    FILE *f = fopen(torn, "w"); /* as an interrupted run used to leave it */
    assert_non_null(f);
    fclose(f);
    assert_int_equal(run("pseudo-label --teacher %s --data fmnist --train-limit 20 --out %s", base_ckpt(), csv), 0);
    struct fr_dataset *rows, *train;
    char spec[700];
    snprintf(spec, sizeof spec, "csv:%s", csv);
    assert_int_equal(fr_dataset_open(spec, NULL, &rows), FR_STATUS_OK);
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    assert_int_equal(fr_dataset_fmnist_open("train", &o, &train), FR_STATUS_OK);
    assert_int_equal(rows->n, 20);
    for (int64_t i = 0; i < rows->n; i++) {
        const char *name = strrchr(rows->paths[i], '/') + 1;
        int64_t j = atoll(name), at = i;
        uint8_t px[784];
        assert_int_equal(fr_dataset_read(rows, &at, 1, NULL, px), FR_STATUS_OK); /* CSV lists decode on demand */
        if (memcmp(px, train->pixels + j * 784, 784) != 0)
            fail_msg("row %lld: %s is not training image %lld", (long long)i, rows->paths[i], (long long)j);
    }
    fr_dataset_free(rows);
    fr_dataset_free(train);
}

/* ---------- findings 3, 24: SIGTERM (as SIGINT) or a failure keeps the previous complete results ---------- */
static void test_pseudo_label_interrupted(void **state)
{
    (void)state;
    NEED_DATA();
    char dir[600], csv[700];
    snprintf(dir, sizeof dir, "%s", tu_path(g_dir, "pl3"));
    snprintf(csv, sizeof csv, "%s/l.csv", dir);
    assert_int_equal(run("pseudo-label --teacher %s --data fmnist --train-limit 100 --out %s", base_ckpt(), csv), 0);
    char *before = read_text(csv);
    assert_non_null(before);
    pid_t pid = spawn("pseudo-label --teacher %s --data fmnist --train-limit 20000 --out %s", base_ckpt(), csv);
    bool staged = wait_for(dir, ".l_images.", 120);
    kill(pid, SIGTERM);
    int rc = wait_rc(pid);
    assert_true(staged);
    assert_int_equal(rc, 130);
    assert_non_null(strstr(stderr_text(), "interrupted (SIGTERM)"));
    char *after = read_text(csv);
    assert_string_equal(after, before);
    free(before);
    free(after);
    char imgs[800];
    snprintf(imgs, sizeof imgs, "%s/l_images", dir);
    assert_int_equal(count_files(imgs, ".png"), 100);
    assert_false(wait_for(dir, ".l_images.", 0.01)); /* the unfinished images are gone */
}

/* finding 24: SIGTERM during train finishes the step, saves and exits 130 (not killed: 143) */
static void test_train_sigterm(void **state)
{
    (void)state;
    NEED_DATA();
    char dir[600];
    snprintf(dir, sizeof dir, "%s", tu_path(g_dir, "sigterm"));
    pid_t pid = spawn("train " SMALL " --epochs 500 --out %s", dir);
    bool epoch = wait_for(dir, "metrics.jsonl", 120);
    kill(pid, SIGTERM);
    int rc = wait_rc(pid);
    assert_true(epoch);
    assert_int_equal(rc, 130);
    assert_non_null(strstr(stderr_text(), "interrupted (SIGTERM)"));
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(tu_path(dir, "model.safetensors"), &st), FR_STATUS_OK);
    fr_st_free(st);
}

/* ---------- findings 4, 26: outputs of inputs with one stem do not overwrite each other; output directories
 * are made before the work ---------- */
static void test_augment_outputs(void **state)
{
    (void)state;
    NEED_DATA();
    char x[600], y[600], cmd[4000];
    snprintf(x, sizeof x, "%s", tu_path(g_dir, "collide/x"));
    snprintf(y, sizeof y, "%s", tu_path(g_dir, "collide/y"));
    write_pngs(x, 1, -1, 0, "a", 0);
    write_pngs(y, 1, -1, 1, "a", 0);
    /* x/a00000.png, x/a00000.bmp (same stem; stb reads by content), y/a00001.png renamed to y/a00000.png */
    snprintf(cmd, sizeof cmd, "cp %s/a00000.png %s/a00000.bmp && mv %s/a00001.png %s/a00000.png", x, x, y, y);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(run("augment --input %s %s --policy hflip --count 2 --out-dir %s --grid %s", x, y,
                         tu_path(g_dir, "aug/deep/col"), tu_path(g_dir, "aug/sheets/s.png")),
                     0);
    assert_non_null(strstr(g_out, "wrote 6 images"));
    assert_non_null(strstr(stderr_text(), "--out-dir is deprecated")); /* the old spelling works, with a note */
    assert_int_equal(count_files(tu_path(g_dir, "aug/deep/col"), ".png"), 6);
    assert_int_equal(count_files(tu_path(g_dir, "aug/sheets"), ".png"), 1);
    /* again: the files of the first run are named before they are replaced */
    assert_int_equal(run("augment --input %s %s --policy hflip --count 2 --out %s", x, y, tu_path(g_dir, "aug/deep/col")), 0);
    assert_non_null(strstr(stderr_text(), "holds 6 files"));
    /* finding 45: augment's default seed is train's (1), so a default preview shows a default run's samples */
    const char *pol = "--policy 'rotate(degrees=30);translate(x=0.2,y=0.2)' --count 2";
    assert_int_equal(run("augment --input %s/a00000.png %s --out %s", x, pol, tu_path(g_dir, "aug/sd")), 0);
    assert_int_equal(run("augment --input %s/a00000.png %s --out %s --seed 1", x, pol, tu_path(g_dir, "aug/s1")), 0);
    assert_int_equal(run("augment --input %s/a00000.png %s --out %s --seed 0", x, pol, tu_path(g_dir, "aug/s0")), 0);
    assert_true(files_equal(tu_path(g_dir, "aug/sd/a00000_1.png"), tu_path(g_dir, "aug/s1/a00000_1.png")));
    assert_false(files_equal(tu_path(g_dir, "aug/sd/a00000_1.png"), tu_path(g_dir, "aug/s0/a00000_1.png")));
}

/* ---------- findings 17, 20: one exit-code convention ---------- */
static void test_exit_codes(void **state)
{
    (void)state;
    NEED_DATA();
    expect_usage("expected auto, cpu or cl:P:D", "bench --device bogus");
    expect_usage("is a directory", "eval --checkpoint %s", tu_path(g_dir, "base"));
    expect_usage("is a directory", "train " SMALL " --resume %s", tu_path(g_dir, "base"));
    expect_usage("is a directory", "finetune --from %s --data fmnist", tu_path(g_dir, "base"));
    assert_int_equal(run("predict --checkpoint %s %s", tu_path(g_dir, "base"), tu_path(g_dir, "pngs20")), 2);
}

/* ---------- findings 14, 27: numbers out of range are errors, not silent defaults ---------- */
static void test_flag_ranges(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"train --data fmnist --lr 0", "--lr 0: must be in (0, 10]"},
        {"train --data fmnist --lr -1", "--lr -1"},
        {"train --data fmnist --lr nan", "--lr: expected a finite number"},
        {"train --data fmnist --batch 4294967297", "--batch 4294967297: must be between 1 and 65536"},
        {"train --data fmnist --epochs 4294967296", "--epochs 4294967296"},
        {"train --data fmnist --val -7", "--val -7"},
        {"train --data fmnist --labels -5", "--labels -5"},
        {"train --data fmnist --train-limit -1", "--train-limit -1"},
        {"train --data fmnist --test-limit -1", "--test-limit -1"},
        {"train --data fmnist --threads -1", "--threads -1"},
        {"train --data fmnist --threads 100000", "--threads 100000"},
        {"train --data fmnist --weight-decay -1", "--weight-decay -1"},
        {"train --data fmnist --momentum 5", "--momentum 5"},
        {"pseudo-label --data fmnist --per-class -5", "--per-class -5"},
        {"demo --threshold 5", "--threshold 5"},
        {"demo --pl-threshold 7", "--pl-threshold 7"},
        {"augment --policy hflip --bench -32", "--bench -32: must be between 1 and 4096"},
        {"noisy-student --data fmnist --rounds 0", "--rounds 0"},
        {"eval --checkpoint x --test-limit -3", "--test-limit -3"},
        {"predict --checkpoint x --top-k 0", "--top-k 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_usage(cases[i][1], "%s", cases[i][0]);
    g_env = "FRUGAL_THREADS=abc";
    expect_usage("FRUGAL_THREADS=abc", "train --data fmnist");
    g_env = "";
    NEED_DATA();
    expect_usage("--warmup 1000000: the whole run has", "train " SMALL " --epochs 1 --warmup 1000000");
}

/* writes IDX images (n 28x28 zeros) and labels */
static void write_idx(const char *img, const char *lab, const uint8_t *labels, int n)
{
    FILE *f = fopen(img, "wb");
    assert_non_null(f);
    uint8_t h[16] = {0, 0, 8, 3, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, 0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(h, 1, 16, f);
    for (int i = 0; i < n * 784; i++)
        fputc(i % 251, f);
    fclose(f);
    f = fopen(lab, "wb");
    assert_non_null(f);
    uint8_t hl[8] = {0, 0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    fwrite(hl, 1, 8, f);
    fwrite(labels, 1, (size_t)n, f);
    fclose(f);
}

/* ---------- findings 12, 13, 19 (IDX label 200), 32: labels checked before training ---------- */
static void test_label_checks(void **state)
{
    (void)state;
    NEED_DATA();
    expect_usage("only one class", "train " SMALL " --classes 3 --epochs 1");
    expect_usage("only one class", "train " SMALL " --classes 1,1,1 --epochs 1");
    char pngs[600], csv[700];
    snprintf(pngs, sizeof pngs, "%s", tu_path(g_dir, "lab/img"));
    write_pngs(pngs, 6, -1, 0, "", 0);
    snprintf(csv, sizeof csv, "%s", tu_path(g_dir, "lab/big.csv"));
    write_text(csv, "path,label\nimg/00000.png,0\nimg/00001.png,1000000\n");
    expect_usage("labels go up to 1000000", "train --data csv:%s --arch t --epochs 1 --test none", csv);
    snprintf(csv, sizeof csv, "%s", tu_path(g_dir, "lab/onebased.csv"));
    write_text(csv, "path,label\nimg/00000.png,1\nimg/00001.png,2\nimg/00002.png,3\nimg/00003.png,1\n"
                    "img/00004.png,2\nimg/00005.png,3\n");
    assert_int_equal(run("train --data csv:%s --arch t --epochs 1 --batch 2 --test none", csv), 0);
    assert_non_null(strstr(stderr_text(), "labels start at 1"));
    uint8_t labels[40];
    for (int i = 0; i < 40; i++)
        labels[i] = (uint8_t)(i % 10);
    labels[7] = 200;
    char img[700], lab[700];
    snprintf(img, sizeof img, "%s", tu_path(g_dir, "lab/img.idx"));
    snprintf(lab, sizeof lab, "%s", tu_path(g_dir, "lab/lab.idx"));
    write_idx(img, lab, labels, 40);
    expect_usage("labels go up to 200", "train --data idx:%s,%s --arch t --epochs 1", img, lab);
    expect_usage("at least one per class", "train --data fmnist --labels 5 --val 0 --arch t --epochs 1");
    /* an imbalanced folder: balanced as far as its small class allows, said so */
    write_pngs(tu_path(g_dir, "imb/a"), 12, 0, 0, "", 0);
    write_pngs(tu_path(g_dir, "imb/b"), 3, 1, 0, "", 0);
    assert_int_equal(run("train --data folder:%s --labels 10 --val 2 --arch t --epochs 1 --batch 4", tu_path(g_dir, "imb")), 0);
    assert_non_null(strstr(stderr_text(), "not balanced"));
}

/* a copy of the base checkpoint with one weight NaN */
static const char *nan_ckpt(void)
{
    static char p[600];
    snprintf(p, sizeof p, "%s", tu_path(g_dir, "nan.safetensors"));
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(base_ckpt(), &st), FR_STATUS_OK);
    const struct fr_st_tensor *t = fr_st_find(st, "conv1.weight");
    assert_non_null(t);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | st->buf[i];
    float nan = NAN;
    memcpy(st->buf + 8 + hlen + t->begin, &nan, 4); /* data offsets count from the end of the header */
    assert_int_equal(fr_write_file_atomic(p, st->buf, st->size), FR_STATUS_OK);
    fr_st_free(st);
    return p;
}

/* ---------- findings 7, 16, 23: eval and train refuse data that does not fit, NaN models, no labels ---------- */
static void test_eval_checks(void **state)
{
    (void)state;
    NEED_DATA();
    expect_usage("5 classes", "eval --checkpoint %s --classes 5-9 --test-limit 100", base_ckpt());
    expect_usage("no labeled images", "eval --checkpoint %s --data folder:%s", base_ckpt(), tu_path(g_dir, "pngs20"));
    const char *bad = nan_ckpt();
    expect_usage("NaN", "eval --checkpoint %s --test-limit 100", bad);
    expect_usage("NaN", "predict --checkpoint %s %s", bad, tu_path(g_dir, "pngs20"));
    /* a test set that does not fit is found before training */
    for (int k = 0; k < 3; k++) {
        char d[64];
        snprintf(d, sizeof d, "num3/%d", k);
        write_pngs(tu_path(g_dir, d), 4, k, 0, "", 0);
        snprintf(d, sizeof d, "big32/%d", k);
        write_pngs(tu_path(g_dir, d), 2, k, 0, "", 32);
        snprintf(d, sizeof d, "abc/%c", 'a' + k);
        write_pngs(tu_path(g_dir, d), 2, k, 0, "", 0);
    }
    /* test images of another size are read at the training size; another class count is an error, found before
     * the first epoch */
    write_pngs(tu_path(g_dir, "two/a"), 2, 0, 0, "", 0);
    write_pngs(tu_path(g_dir, "two/b"), 2, 1, 0, "", 0);
    expect_usage("2 classes", "train --data folder:%s --test folder:%s --arch t --epochs 1", tu_path(g_dir, "num3"),
                 tu_path(g_dir, "two"));
    assert_null(strstr(stderr_text(), "epoch 1/1"));
    assert_int_equal(run("train --data folder:%s --test folder:%s --arch t --epochs 1 --batch 4 --json",
                         tu_path(g_dir, "num3"), tu_path(g_dir, "big32")),
                     0);
    cJSON *o = json_out();
    assert_int_equal((int)num(o, "test_images"), 6);
    cJSON_Delete(o);
    assert_int_equal(run("train --data folder:%s --test folder:%s --arch t --epochs 1 --batch 4", tu_path(g_dir, "num3"),
                         tu_path(g_dir, "abc")),
                     0);
    assert_non_null(strstr(stderr_text(), "class names"));
}

/* ---------- finding 9: --resume checks the run it continues ---------- */
static void test_resume_checks(void **state)
{
    (void)state;
    NEED_DATA();
    char copy[600], cmd[1400];
    snprintf(copy, sizeof copy, "%s", tu_path(g_dir, "resume-copy.safetensors"));
    snprintf(cmd, sizeof cmd, "cp %s %s", base_ckpt(), copy);
    assert_int_equal(system(cmd), 0);
    /* the base run: SMALL (train-limit 1000, labels 300, batch 32, seed 1), 5 epochs */
    expect_usage("--labels (labels used) 300 (now 200)", "train " SMALL " --labels 200 --epochs 6 --resume %s", copy);
    expect_usage("--seed 1 (now 5)", "train " SMALL " --seed 5 --epochs 6 --resume %s", copy);
    uint8_t labels[40];
    for (int i = 0; i < 40; i++)
        labels[i] = (uint8_t)(i % 10);
    char img[700], lab[700];
    snprintf(img, sizeof img, "%s", tu_path(g_dir, "good-img.idx"));
    snprintf(lab, sizeof lab, "%s", tu_path(g_dir, "good-lab.idx"));
    write_idx(img, lab, labels, 40);
    expect_usage("--data fmnist (now idx:", "train --data idx:%s,%s --arch t --epochs 6 --test none --resume %s", img,
                 lab, copy);
    expect_usage("the checkpoint is model t, not --arch s", "train " SMALL " --arch s --epochs 6 --resume %s", copy);
    assert_int_equal(run("train " SMALL " --epochs 5 --resume %s", copy), 0);
    assert_non_null(strstr(stderr_text(), "nothing left to train"));
}

/* ---------- finding 8: pseudo-label CSVs read back with their classes ---------- */
static void test_pseudo_label_round_trip(void **state)
{
    (void)state;
    NEED_DATA();
    /* numeric folder classes, soft labels: the header `path,0,1,2` is a header */
    char num3[600], soft[700], spec[800];
    snprintf(num3, sizeof num3, "%s", tu_path(g_dir, "num3")); /* made by test_eval_checks */
    write_pngs(tu_path(num3, "0"), 4, 0, 0, "", 0);
    write_pngs(tu_path(num3, "1"), 4, 1, 0, "", 0);
    write_pngs(tu_path(num3, "2"), 4, 2, 0, "", 0);
    assert_int_equal(run("train --data folder:%s --arch t --epochs 1 --batch 4 --out %s", num3, tu_path(g_dir, "rt3")), 0);
    snprintf(soft, sizeof soft, "%s", tu_path(g_dir, "pln/soft.csv"));
    assert_int_equal(run("pseudo-label --teacher %s/rt3/model.safetensors --data folder:%s --csv %s --soft", g_dir, num3,
                         soft),
                     0);
    assert_int_equal(run("train --data csv:%s --arch t --epochs 1 --batch 4", soft), 0);
    /* 11 numeric classes (sorted as strings), hard labels: names, order and count survive */
    char num11[600], hard[700];
    snprintf(num11, sizeof num11, "%s", tu_path(g_dir, "num11"));
    for (int k = 0; k <= 10; k++) {
        char d[16];
        snprintf(d, sizeof d, "%d", k);
        write_pngs(tu_path(num11, d), 2, k % 10, 0, k == 10 ? "x" : "", 0);
    }
    assert_int_equal(run("train --data folder:%s --arch t --epochs 1 --batch 4 --val 0 --out %s", num11,
                         tu_path(g_dir, "rt11")),
                     0);
    snprintf(hard, sizeof hard, "%s", tu_path(g_dir, "pl11/h.csv"));
    assert_int_equal(run("pseudo-label --teacher %s/rt11/model.safetensors --data folder:%s --csv %s", g_dir, num11, hard),
                     0);
    struct fr_dataset *ds;
    snprintf(spec, sizeof spec, "csv:%s", hard);
    assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n_classes, 11);
    const char *want[] = {"0", "1", "10", "2", "3", "4", "5", "6", "7", "8", "9"};
    for (int k = 0; k < 11; k++)
        assert_string_equal(ds->class_names[k], want[k]);
    for (int64_t i = 0; i < ds->n; i++)
        assert_true(ds->paths[i][0] != 0);
    fr_dataset_free(ds);
    /* rows name their images relative to the CSV, so the folder can move */
    char *text = read_text(hard);
    assert_non_null(text);
    assert_null(strstr(text, "\n/"));
    assert_non_null(strstr(text, "\n../num11/"));
    free(text);
}

/* ---------- finding 28: config files ---------- */
static void test_config_files(void **state)
{
    (void)state;
    char a[600], b[600], c[600], d[600], e[600];
    snprintf(a, sizeof a, "%s", tu_path(g_dir, "a.ini"));
    snprintf(b, sizeof b, "%s", tu_path(g_dir, "b.ini"));
    snprintf(c, sizeof c, "%s", tu_path(g_dir, "c.ini"));
    snprintf(d, sizeof d, "%s", tu_path(g_dir, "d.ini"));
    snprintf(e, sizeof e, "%s", tu_path(g_dir, "e.ini"));
    write_text(a, "optimizer = sgd\noptimizer = bogus\n"); /* the last value wins */
    write_text(b, "optimizer = bogus\noptimizer = sgd\n");
    write_text(c, "[distill]\ntemperature = 4\n[train]\nepochs = 0\n");
    write_text(d, "[trian]\nepochs = 1\n");
    write_text(e, "count = 0\n");
    expect_usage("--optimizer bogus", "train --config %s", a);
    expect_usage("--data SPEC is required", "train --config %s", b);
    expect_usage("--data SPEC is required", "train --config %s --optimizer adam", a); /* the command line wins */
    expect_usage("--epochs 0", "train --config %s", c); /* [train] applies, [distill] is skipped */
    expect_usage("unknown section [trian]", "train --config %s", d);
    expect_usage("--optimizer bogus", "train --config %s --config %s", b, a); /* later files win */
    expect_usage("--data SPEC is required", "train --config %s --config %s", a, b);
    expect_usage("is a directory", "train --config %s", g_dir);
    expect_usage("--count 0", "augment --config %s --policy hflip", e); /* every command takes --config */
    write_text(e, "suite = bogus\n");
    expect_usage("--suite bogus", "bench --config %s", e);
    write_text(e, "json = true\n");
    assert_int_equal(run("devices --config %s", e), 0);
    assert_non_null(strstr(g_out, "\"command\":\"devices\""));
    /* a comment longer than the INI reader's 200-byte lines stays a comment; a setting that long is named */
    char text[700], want[700];
    snprintf(text, sizeof text, "; %0300d\n  # %0250d\noptimizer = bogus\n", 7, 8);
    write_text(e, text);
    expect_usage("--optimizer bogus", "train --config %s --data fmnist", e);
    snprintf(text, sizeof text, "json = true\n\noptimizer = sgd ; %0300d\n", 9);
    write_text(e, text);
    snprintf(want, sizeof want, "%s:3: a setting longer than this reader's lines (up to 198 characters)", e);
    expect_usage(want, "train --config %s --data fmnist", e);
}

/* ---------- findings 29, 30, 38, 39: one name per flag, help per command, one JSON line per run ---------- */
static void test_consistent_flags(void **state)
{
    (void)state;
    assert_int_equal(run("help train"), 0);
    assert_non_null(strstr(g_out, "usage: frugal train"));
    assert_non_null(strstr(g_out, "--arch"));
    assert_int_equal(run("help noisy-student"), 0);
    assert_non_null(strstr(g_out, "label budget, class-balanced, validation included; 0 = all (default 1000)"));
    assert_int_equal(run("--help"), 0);
    assert_non_null(strstr(g_out, "FRUGAL_DATA"));
    assert_non_null(strstr(g_out, "FRUGAL_GUARD"));
    expect_usage("needs a value, got the flag '--suite'", "bench --json --suite limits");
    expect_usage("--test has no effect", "pseudo-label --teacher x --csv y.csv --data fmnist --test fmnist:test");
    expect_usage("--out has no effect", "eval --checkpoint x --out y");
    expect_usage("--out has no effect", "predict --checkpoint x --out y z.png");
    expect_usage("--per-class needs --balance", "pseudo-label --teacher x --csv y.csv --per-class 5");
    expect_usage("--backbone-lr-mult has no effect", "finetune --from x --data fmnist --freeze backbone --backbone-lr-mult 5");
    expect_usage("contradict", "noisy-student --data fmnist --soft --hard");
    /* finding 10: noisy-student's --augment and --resume were listed and ignored */
    expect_usage("--noise POLICY", "noisy-student --data fmnist --augment hflip");
    expect_usage("--noise POLICY", "noisy-student --data fmnist --cutmix 1");
    expect_usage("is not resumed", "noisy-student --data fmnist --resume x.safetensors");
    expect_usage("--teacher CKPT is the first teacher", "noisy-student --data fmnist --teacher x --teacher-arch s");
    g_env = "FRUGAL_DEBUG=sched,bogus";
    int rc = run("devices");
    g_env = "";
    assert_int_equal(rc, 0);
    assert_non_null(strstr(stderr_text(), "unknown topic 'bogus'"));
    assert_int_equal(run("devices --json"), 0);
    assert_non_null(strstr(g_out, "\"command\":\"devices\""));
    assert_null(strchr(g_out, '\n') == g_out + strlen(g_out) - 1 ? NULL : "more than one line");
    NEED_DATA();
    /* old spellings work with a note */
    assert_int_equal(run("eval --model %s --limit 50 --json", base_ckpt()), 0);
    assert_non_null(strstr(stderr_text(), "--model is deprecated, use --checkpoint"));
    cJSON *o = json_out();
    assert_string_equal(cJSON_GetObjectItem(o, "command")->valuestring, "eval");
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, "t");
    assert_int_equal((int)num(o, "test_images"), 50);
    cJSON_Delete(o);
    assert_int_equal(run("predict --checkpoint %s %s --json", base_ckpt(), tu_path(g_dir, "pngs20")), 0);
    o = json_out();
    assert_string_equal(cJSON_GetObjectItem(o, "command")->valuestring, "predict");
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, "t");
    assert_int_equal((int)num(o, "images"), 20);
    cJSON_Delete(o);
    /* finding 43: --test-limit counts images of the chosen classes */
    assert_int_equal(run("train --data fmnist --train-limit 1000 --labels 100 --classes 3,4 --test-limit 100 --arch t "
                         "--epochs 1 --json"),
                     0);
    o = json_out();
    assert_int_equal((int)num(o, "test_images"), 100);
    assert_int_equal((int)num(o, "classes"), 2);
    cJSON_Delete(o);
    /* finding 41: FRUGAL_DEBUG lines are debug lines */
    g_env = "FRUGAL_DEBUG=sched";
    rc = run("eval --checkpoint %s --test-limit 10", base_ckpt());
    g_env = "";
    assert_int_equal(rc, 0);
    assert_non_null(strstr(stderr_text(), "debug: sched: graph of"));
    assert_null(strstr(stderr_text(), "warning: sched"));
}

/* ---------- finding 25: one run per --out directory; a new run says what it replaces ---------- */
static void test_out_lock(void **state)
{
    (void)state;
    NEED_DATA();
    char dir[600], lock[700];
    snprintf(dir, sizeof dir, "%s", tu_path(g_dir, "lk"));
    mkdir(dir, 0777);
    snprintf(lock, sizeof lock, "%s/.frugal.lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0); /* as a running train would */
    expect_usage("is in use by another frugal run", "train " SMALL " --epochs 1 --out %s", dir);
    close(fd);
    assert_int_equal(run("train " SMALL " --epochs 1 --out %s", dir), 0);
    assert_int_equal(run("train " SMALL " --epochs 1 --out %s", dir), 0);
    assert_non_null(strstr(stderr_text(), "holds files of an earlier run"));
    char *m = read_text(tu_path(dir, "metrics.jsonl")), *prev = read_text(tu_path(dir, "metrics.prev.jsonl"));
    assert_non_null(m);
    assert_non_null(prev);
    assert_null(strchr(m, '\n') + 1 == m + strlen(m) ? NULL : "metrics.jsonl holds lines of the earlier run");
    free(m);
    free(prev);
    assert_false(wait_for(dir, ".frugal.lock", 0.01)); /* released */
}

/* ---------- findings 19, 31: messages that say what is wrong ---------- */
static void test_messages(void **state)
{
    (void)state;
    NEED_DATA();
    expect_usage("subdirectories are not searched", "predict --checkpoint %s %s", base_ckpt(), tu_path(g_dir, "num3"));
    char loop[600];
    snprintf(loop, sizeof loop, "%s", tu_path(g_dir, "loop1.png"));
    assert_int_equal(symlink(loop, loop), 0);
    expect_usage("Too many levels of symbolic links", "predict --checkpoint %s %s", base_ckpt(), loop);
    char csv[600];
    snprintf(csv, sizeof csv, "%s", tu_path(g_dir, "lab/semi.csv"));
    write_text(csv, "path;label\nimg/00000.png;1\n");
    expect_usage("expected comma-separated columns", "train --data csv:%s --arch t", csv);
    expect_usage("to continue its run use --resume", "train --data fmnist --arch %s", base_ckpt());
    char mf[600];
    snprintf(mf, sizeof mf, "%s", tu_path(g_dir, "good-model.txt"));
    write_text(mf, "conv c1 8 3 1 1\nrelu\ngap\nlinear fc 10\n");
    expect_usage("not a safetensors file", "distill --teacher %s --data fmnist", mf);
    expect_usage("not a safetensors file", "train " SMALL " --resume %s", mf);
    /* plain weights: the hint names the flags of the command; extra tensors are named, never silently dropped */
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(base_ckpt(), &st), FR_STATUS_OK);
    struct fr_st_entry e[64];
    int n = 0;
    for (int i = 0; i < st->n_tensors && n < 63; i++)
        if ((!strncmp(st->tensors[i].name, "conv", 4) || !strncmp(st->tensors[i].name, "fc", 2)) &&
            !strstr(st->tensors[i].name, ".exp_avg")) /* the model's parameters, not the optimizer's moments */
            e[n++] = (struct fr_st_entry){st->tensors[i].name, st->tensors[i].dtype, st->tensors[i].ndim,
                                          st->tensors[i].shape, st->tensors[i].data};
    float extra[3] = {1, 2, 3};
    e[n++] = (struct fr_st_entry){"aux.head.weight", FR_ST_F32, 1, (int64_t[]){3}, extra};
    char plain[600];
    snprintf(plain, sizeof plain, "%s", tu_path(g_dir, "plain.safetensors"));
    assert_int_equal(fr_st_write(plain, e, n, NULL, 0), FR_STATUS_OK);
    fr_st_free(st);
    expect_usage("use --from FILE with --arch", "finetune --from %s --data fmnist --train-limit 500 --labels 100", plain);
    expect_usage("weights load only in eval", "predict --checkpoint %s %s", plain, tu_path(g_dir, "pngs20"));
    /* weights that do not fit the architecture are refused naming every unexpected tensor (as PyTorch's strict load) */
    expect_usage("1 unexpected: aux.head.weight", "eval --weights %s --arch t --test-limit 50", plain);
    expect_usage("(the default)", "noisy-student --data fmnist --train-limit 1000");
}

/* ---------- finding 40: the eval table lines up UTF-8 class names ---------- */
static void test_eval_utf8_names(void **state)
{
    (void)state;
    NEED_DATA();
    char root[600];
    snprintf(root, sizeof root, "%s", tu_path(g_dir, "utf8"));
    write_pngs(tu_path(root, "\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\xc3\xa9\xc3\xa8\xc3\xaa\xc3\xab\xc3\xa0\xc3\xa2\xc3\xa7\xc3\xb1"), 3, 0, 0, "", 0);
    write_pngs(tu_path(root, "b"), 3, 1, 0, "", 0);
    assert_int_equal(run("train --data folder:%s --arch t --epochs 1 --batch 2 --val 0 --out %s", root,
                         tu_path(g_dir, "utf8run")),
                     0);
    assert_int_equal(run("eval --checkpoint %s/utf8run/model.safetensors --data folder:%s", g_dir, root), 0);
    /* "   0 <name padded to 14 columns> 0.xxxx": the accuracy starts at the same column on both lines */
    int cols[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        char key[8];
        snprintf(key, sizeof key, "\n   %d ", k);
        const char *l = strstr(g_out, key);
        assert_non_null(l);
        l++;
        const char *end = strchr(l, '\n'), *num_at = end;
        assert_non_null(end);
        while (num_at > l && num_at[-1] != ' ') /* the accuracy is the last word */
            num_at--;
        int c = 0;
        for (const char *p = l; p < num_at; p++)
            c += ((unsigned char)*p & 0xC0) != 0x80; /* code points */
        cols[k] = c;
    }
    assert_int_equal(cols[0], cols[1]);
}

/* ---------- finding 34: predict works through a directory in chunks ---------- */
static void test_predict_many(void **state)
{
    (void)state;
    NEED_DATA();
    char dir[600];
    snprintf(dir, sizeof dir, "%s", tu_path(g_dir, "many"));
    write_pngs(dir, 300, -1, 0, "", 0);
    assert_int_equal(run("predict --checkpoint %s %s --top-k 1 --json", base_ckpt(), dir), 0);
    cJSON *o = json_out();
    cJSON *preds = cJSON_GetObjectItem(o, "predictions");
    assert_int_equal(cJSON_GetArraySize(preds), 300);
    cJSON *last = cJSON_GetArrayItem(preds, 299);
    double p_many = num(cJSON_GetArrayItem(cJSON_GetObjectItem(last, "top"), 0), "probability");
    char one[700];
    snprintf(one, sizeof one, "%s", cJSON_GetObjectItem(last, "path")->valuestring);
    cJSON_Delete(o);
    assert_int_equal(run("predict --checkpoint %s %s --top-k 1 --json", base_ckpt(), one), 0);
    o = json_out();
    double p_one = num(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "predictions"), 0), "top"), 0),
                       "probability");
    cJSON_Delete(o);
    assert_true(fabs(p_many - p_one) < 1e-6);
}

/* ---------- findings 29, 37: every command line of the README parses (its flags exist, values have the
 * right type and range), and the training commands name their data ---------- */
static void test_readme_commands(void **state)
{
    (void)state;
    const char *root = getenv("FRUGAL_SOURCE_ROOT");
    if (!root) {
        printf("skipped: FRUGAL_SOURCE_ROOT is not set\n");
        skip();
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/README.md", root);
    char *text = read_text(path);
    assert_non_null(text);
    int checked = 0;
    bool code = false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "```", 3))
            code = !code;
        if (!code || strncmp(line, "frugal ", 7) != 0) /* command lines of the code blocks */
            continue;
        char cmdline[4096];
        snprintf(cmdline, sizeof cmdline, "%s", line + 7);
        for (size_t l = strlen(cmdline); l > 0 && cmdline[l - 1] == '\\';) { /* continued on the next line */
            cmdline[l - 1] = ' ';
            char *more = strtok(NULL, "\n");
            if (!more)
                break;
            strncat(cmdline, more, sizeof cmdline - strlen(cmdline) - 1);
            l = strlen(cmdline);
        }
        char *gap = strstr(cmdline, "   "); /* a comment after three spaces */
        if (gap)
            *gap = 0;
        for (char *p = cmdline; *p; p++) /* optional parts: [--cutmix 1] -> --cutmix 1; a|b choices -> a */
            if (*p == '[' || *p == ']')
                *p = ' ';
        char *bar;
        while ((bar = strchr(cmdline, '|'))) {
            char *end = bar;
            while (*end && *end != ' ')
                end++;
            memmove(bar, end, strlen(end) + 1);
        }
        char word[64];
        sscanf(cmdline, "%63s", word);
        bool trains = !strcmp(word, "train") || !strcmp(word, "finetune") || !strcmp(word, "distill") ||
                      !strcmp(word, "pseudo-label") || !strcmp(word, "noisy-student");
        if (trains && !strstr(cmdline, "--data "))
            fail_msg("README: 'frugal %s' has no --data", line + 7);
        int rc = run("%s --help", cmdline);
        if (rc != 0)
            fail_msg("README: 'frugal %s' -> %d: %s", line + 7, rc, stderr_text());
        if (strstr(stderr_text(), "is deprecated")) /* the README shows the current spellings */
            fail_msg("README: 'frugal %s': %s", line + 7, stderr_text());
        checked++;
    }
    free(text);
    assert_true(checked >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_train_outputs),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_eval_matches_train),
        cmocka_unit_test(test_predict_topk),
        cmocka_unit_test(test_pseudo_label_csv),
        cmocka_unit_test(test_finetune_frozen_backbone),
        cmocka_unit_test(test_distill),
        cmocka_unit_test(test_noisy_student_rounds),
        cmocka_unit_test(test_demo_tiny),
        cmocka_unit_test(test_fixmatch_tiny),
        cmocka_unit_test(test_model_file),
        cmocka_unit_test(test_full_disk),
        cmocka_unit_test(test_pseudo_label_fresh_images),
        cmocka_unit_test(test_pseudo_label_interrupted),
        cmocka_unit_test(test_train_sigterm),
        cmocka_unit_test(test_augment_outputs),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_flag_ranges),
        cmocka_unit_test(test_label_checks),
        cmocka_unit_test(test_eval_checks),
        cmocka_unit_test(test_resume_checks),
        cmocka_unit_test(test_pseudo_label_round_trip),
        cmocka_unit_test(test_config_files),
        cmocka_unit_test(test_consistent_flags),
        cmocka_unit_test(test_out_lock),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_eval_utf8_names),
        cmocka_unit_test(test_predict_many),
        cmocka_unit_test(test_readme_commands),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
