/* The recipe commands end to end: runs the built `frugal` binary (FRUGAL_EXE) on small slices of Fashion-MNIST
 * for a few steps and checks files, JSON results, CSVs read back by the loader, frozen backbones, Noisy Student
 * round chaining, bit-identical resume, and exit status 2 for bad flags and missing files. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "frugal/augment.h"
#include "frugal/data.h"
#include "frugal/io.h"
#include "testutil.h"

static char g_dir[512];
static char g_exe[1024];
static bool g_have_data;
static char g_out[1 << 16];

static const char *stderr_text(void);

/* Runs `frugal ARGS` with stdout captured into g_out (stderr to <dir>/stderr.txt); returns the exit status. */
static int run(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "FRUGAL_DEVICE=cpu FRUGAL_THREADS=2 %s %s 2>%s/stderr.txt", g_exe, args, g_dir);
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
    static char buf[8192];
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
    assert_int_equal(run("train %s --epochs 2 --out %s --resume %s", common, tu_path(g_dir, "split"),
                         tu_path(g_dir, "split/model.safetensors")),
                     0);
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
    assert_int_equal(run("distill --teacher %s " SMALL " --epochs 1 --augment hflip --json", ckpt), 0);
    o = json_out();
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "teacher_logits_cached")));
    cJSON_Delete(o);
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
    assert_int_equal(run("demo --quick --labels 200 --sup-epochs 1 --aug-epochs 1 --student-epochs 1 --unlabeled-ratio 1 "
                         "--test-limit 300 --json"),
                     0);
    cJSON *o = json_out();
    cJSON *rows = cJSON_GetObjectItem(o, "rows");
    const char *want[] = {"supervised", "supervised+augment", "pseudo-label", "noisy-student round 1",
                          "noisy-student round 2"};
    assert_int_equal(cJSON_GetArraySize(rows), 5);
    for (int i = 0; i < 5; i++) {
        cJSON *r = cJSON_GetArrayItem(rows, i);
        assert_string_equal(cJSON_GetObjectItem(r, "method")->valuestring, want[i]);
        assert_int_equal((int)num(r, "labels"), 200);
        double a = num(r, "test_accuracy");
        assert_true(a >= 0 && a <= 1);
        assert_true(num(r, "seconds") > 0);
    }
    cJSON_Delete(o);
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
        cmocka_unit_test(test_model_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
