/* Transfer learning in fr_fit: a frozen backbone runs in eval mode without gradient nodes, and without augmentation
 * its outputs are computed once per image; the head trained on those features equals the head trained through the
 * whole graph (a policy that leaves the images unchanged forces that path) within float rounding, batch-norm
 * statistics and frozen weights untouched. A policy's leading rrc(size = the model's input) on a photo folder is
 * made when the photos are read (the loss of a step equals the model's loss on fr_dataset_read's random crops of the
 * whole photos); the rule's other cases keep it on the device. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "frugal/augment.h"
#include "frugal/model.h"
#include "frugal/recipes.h"
#include "frugal/rng_host.h"
#include "testutil.h"

enum { N = 96, NV = 24, H = 16, C = 3, K = 3 };

static char dir[256];

/* conv/bn/relu/maxpool, residual blocks (one with stochastic depth, one projected), gap, dropout, linear head */
static const char *MODEL = "conv conv1 8 3 1 1 nobias\n"
                           "batchnorm bn1\n"
                           "relu\n"
                           "maxpool 3 2 1\n"
                           "residual layer1.0\n"
                           "  conv layer1.0.conv1 8 3 1 1 nobias\n"
                           "  batchnorm layer1.0.bn1\n"
                           "  relu\n"
                           "  conv layer1.0.conv2 8 3 1 1 nobias\n"
                           "  batchnorm layer1.0.bn2\n"
                           "end 0.8\n"
                           "relu\n"
                           "residual layer2.0\n"
                           "  conv layer2.0.conv1 16 3 2 1 nobias\n"
                           "  batchnorm layer2.0.bn1\n"
                           "end\n"
                           "gap\n"
                           "dropout 0.3\n"
                           "linear fc 3\n";
enum { HEAD_LAYER = 18, FROZEN_LAYERS = 17 }; /* the dropout before the head trains with it */

static int setup(void **state)
{
    (void)state;
    if (tu_tmpdir_create(dir, sizeof dir, "transfer") || tu_cpu_setup(state))
        return -1;
    FILE *f = fopen(tu_path(dir, "net.txt"), "w");
    if (!f)
        return -1;
    fputs(MODEL, f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    tu_tmpdir_remove(dir);
    return tu_cpu_teardown(state);
}

struct data {
    struct fr_dataset ds;
    struct fr_trainset ts;
    int64_t val[NV];
};

/* images whose class shows in a colour and a stripe, plus noise */
static void data_init(struct data *d)
{
    memset(d, 0, sizeof *d);
    d->ds.n = N + NV, d->ds.c = C, d->ds.h = d->ds.w = H, d->ds.n_classes = K;
    d->ds.source = (char *)"synthetic";
    d->ds.pixels = malloc((size_t)d->ds.n * H * H * C);
    d->ds.labels = malloc((size_t)d->ds.n * sizeof(int32_t));
    for (int64_t i = 0; i < d->ds.n; i++) {
        int y = (int)(i % K);
        d->ds.labels[i] = y;
        for (int p = 0; p < H * H * C; p++) {
            int ch = p % C, x = p / C % H;
            double u = fr_rng_uniform_f64(5, 0, 0, (uint32_t)i, (uint32_t)p);
            double v = 60 * u + (ch == y ? 120 : 40) + ((x / 4) % K == y ? 50 : 0);
            d->ds.pixels[i * H * H * C + p] = (uint8_t)v;
        }
    }
    int64_t train[N];
    for (int i = 0; i < N; i++)
        train[i] = i;
    for (int i = 0; i < NV; i++)
        d->val[i] = N + i;
    d->ts.n_classes = K;
    assert_int_equal(fr_trainset_add(&d->ts, 0, &d->ds, train, N, NULL, NULL), FR_STATUS_OK);
}

static void data_free(struct data *d)
{
    fr_trainset_free(&d->ts);
    free(d->ds.pixels);
    free(d->ds.labels);
}

/* a fresh net of MODEL with batch-norm statistics away from their initial 0 and 1 (folding them matters) */
static struct fr_net *new_net(void)
{
    struct fr_net *net;
    assert_int_equal(fr_net_new(tu_cpu, tu_path(dir, "net.txt"), C, H, H, K, NULL, 7, &net), FR_STATUS_OK);
    for (int i = 0; i < fr_model_n_tensors(net->model); i++) {
        struct fr_model_entry e = fr_model_tensor(net->model, i);
        int64_t n = fr_nelements(e.t);
        float *v = malloc((size_t)n * sizeof *v);
        bool var = strstr(e.name, "running_var") != NULL;
        if (!var && !strstr(e.name, "running_mean")) {
            free(v);
            continue;
        }
        tu_fill_uniform(v, (size_t)n, (uint32_t)i, var ? 0.5f : -0.3f, var ? 2.0f : 0.3f);
        assert_int_equal(fr_tensor_set(e.t, v, (size_t)n * sizeof *v), FR_STATUS_OK);
        free(v);
    }
    return net;
}

/* every tensor of the model (parameters and statistics), concatenated */
static float *snapshot(const struct fr_net *net, size_t *len)
{
    size_t n = 0;
    for (int i = 0; i < fr_model_n_tensors(net->model); i++)
        n += (size_t)fr_nelements(fr_model_tensor(net->model, i).t);
    float *v = malloc(n * sizeof *v), *p = v;
    for (int i = 0; i < fr_model_n_tensors(net->model); i++) {
        struct fr_tensor *t = fr_model_tensor(net->model, i).t;
        assert_int_equal(fr_tensor_get(t, p, fr_nbytes(t)), FR_STATUS_OK);
        p += fr_nelements(t);
    }
    *len = n;
    return v;
}

static int count_ops(struct fr_graph *g, const enum fr_op *ops, int n_ops)
{
    int cnt = 0;
    for (int i = 0; i < fr_graph_n_nodes(g); i++)
        for (int j = 0; j < n_ops; j++)
            cnt += fr_graph_node(g, i)->op == ops[j];
    return cnt;
}

/* 3 epochs of fine-tuning the head ("fc.") with the rest frozen (frozen = false: everything trains) */
static struct fr_net *finetune(struct data *d, const char *augment, bool frozen, struct fr_fit_result *r)
{
    struct fr_net *net = new_net();
    struct fr_param_group groups[2];
    memset(groups, 0, sizeof groups);
    snprintf(groups[0].prefix, sizeof groups[0].prefix, "fc.");
    groups[0].weight_decay = groups[1].weight_decay = -1.0f;
    groups[1].frozen = frozen;
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    fo.epochs = 3;
    fo.batch = 16;
    fo.seed = 3;
    fo.augment = augment;
    fo.groups = groups;
    fo.n_groups = 2;
    fo.val_ds = &d->ds;
    fo.val_idx = d->val;
    fo.n_val = NV;
    fo.sched.base_lr = 0.05f;
    assert_int_equal(fr_fit(net, &d->ts, &fo, r), FR_STATUS_OK);
    return net;
}

static void test_frozen_backbone(void **state)
{
    (void)state;
    struct data d;
    data_init(&d);
    struct fr_net *ref = new_net();
    size_t n0, n1, n2;
    float *before = snapshot(ref, &n0);
    fr_net_free(ref);

    struct fr_fit_result fast, slow, full;
    struct fr_net *a = finetune(&d, NULL, true, &fast);
    struct fr_net *b = finetune(&d, "hflip(p=0)", true, &slow); /* an identity policy: the backbone runs each step */
    assert_int_equal(fast.plan.frozen_layers, FROZEN_LAYERS);
    assert_true(fast.plan.cached_features && fast.plan.feature_width == 16);
    assert_int_equal(fast.feature_images, N + NV);
    assert_int_equal(slow.plan.frozen_layers, FROZEN_LAYERS);
    assert_false(slow.plan.cached_features);

    /* the same head, losses and validation within float rounding; the backbone and its statistics untouched */
    float *wa = snapshot(a, &n1), *wb = snapshot(b, &n2);
    assert_int_equal(n1, n0);
    assert_int_equal(n2, n0);
    struct fr_tensor *fc = fr_model_find(a->model, "fc.weight");
    size_t head = (size_t)fr_nelements(fc) + K, body = n0 - head;
    tu_assert_bytes_equal(wa, before, body * sizeof(float));
    tu_assert_bytes_equal(wb, before, body * sizeof(float));
    tu_assert_close(wa + body, wb + body, head, 1e-5f, 1e-4f);
    float moved = 0;
    for (size_t i = body; i < n0; i++)
        moved = fmaxf(moved, fabsf(wa[i] - before[i]));
    assert_true(moved > 1e-3f); /* the head did train */
    assert_true(fabs(fast.train_loss - slow.train_loss) <= 1e-5 * fabs(slow.train_loss));
    assert_true(fast.val_accuracy == slow.val_accuracy);
    struct fr_eval ea, eb;
    assert_int_equal(fr_net_evaluate(a, &d.ds, d.val, NV, &ea), FR_STATUS_OK);
    assert_int_equal(fr_net_evaluate(b, &d.ds, d.val, NV, &eb), FR_STATUS_OK);
    assert_true(fabs(ea.loss - eb.loss) <= 1e-5 * fabs(eb.loss) && ea.accuracy == fast.val_accuracy);
    fr_eval_free(&ea);
    fr_eval_free(&eb);

    /* the slow path's graph: no gradient nodes, no training-mode batch-norm or drop-path in the frozen layers */
    const enum fr_op backbone_ops[] = {FR_OP_CONV2D_BWD_INPUT, FR_OP_CONV2D_BWD_WEIGHT, FR_OP_BATCHNORM_BWD,
                                       FR_OP_BATCHNORM_BWD_STATS, FR_OP_MAXPOOL2D_BWD, FR_OP_BATCHNORM,
                                       FR_OP_DROP_PATH};
    struct fr_graph *gb = fr_trainer_graph(b->trainer, false);
    assert_int_equal(count_ops(gb, backbone_ops, 7), 0);
    /* ... which the same graph with nothing frozen has, at a larger arena (activations kept for the backward) */
    struct fr_net *c = finetune(&d, "hflip(p=0)", false, &full);
    assert_int_equal(full.plan.frozen_layers, 0);
    struct fr_graph *gc = fr_trainer_graph(c->trainer, false);
    assert_true(count_ops(gc, backbone_ops, 7) >= 10);
    struct fr_graph_stats sb, sc;
    fr_graph_get_stats(gb, &sb);
    fr_graph_get_stats(gc, &sc);
    assert_true(sb.arena_bytes < sc.arena_bytes / 2);
    /* the fast path's training graph starts at the features: the frozen layers are not in it */
    struct fr_graph *ga = fr_trainer_graph(a->trainer, false);
    const enum fr_op conv[] = {FR_OP_CONV2D};
    assert_int_equal(count_ops(ga, conv, 1), 0);
    assert_true(count_ops(gb, conv, 1) >= 5);

    free(before);
    free(wa);
    free(wb);
    fr_net_free(a);
    fr_net_free(b);
    fr_net_free(c);
    data_free(&d);
}

/* fr_fit_plan's cases: features only without augmentation and with a frozen prefix */
static void test_plan_rules(void **state)
{
    (void)state;
    struct data d;
    data_init(&d);
    struct fr_net *net = new_net();
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    struct fr_fit_plan p;
    assert_int_equal(fr_fit_plan(net, &d.ts, &fo, &p), FR_STATUS_OK);
    assert_true(p.frozen_layers == 0 && !p.cached_features && !p.crop_at_load);
    assert_int_equal(fr_model_freeze(net->model, "conv1.", true), 1);
    assert_int_equal(fr_model_freeze(net->model, "bn1.", true), 2);
    assert_int_equal(fr_fit_plan(net, &d.ts, &fo, &p), FR_STATUS_OK);
    assert_int_equal(p.frozen_layers, 4); /* conv, bn, relu, maxpool: the block after it trains */
    assert_true(p.cached_features && p.feature_width == 8 * 8 * 8);
    int c, h, w;
    fr_model_layer_input(net->model, 4, &c, &h, &w);
    assert_true(c == 8 && h == 8 && w == 8);
    fr_model_layer_input(net->model, HEAD_LAYER, &c, &h, &w);
    assert_true(c == 16 && h == 0 && w == 0);
    const char *augmenting[] = {"hflip", "rrc(size=16)", "randaugment(n=1,m=5)", "mixup(alpha=0.2)"};
    for (int i = 0; i < 4; i++) {
        fo.augment = augmenting[i];
        assert_int_equal(fr_fit_plan(net, &d.ts, &fo, &p), FR_STATUS_OK);
        assert_true(p.frozen_layers == 4 && !p.cached_features && !p.crop_at_load); /* in memory: rrc on the device */
    }
    fo.augment = "normalize(mean=0.5,std=0.25)"; /* not an augmentation */
    assert_int_equal(fr_fit_plan(net, &d.ts, &fo, &p), FR_STATUS_OK);
    assert_true(p.cached_features);
    fo.augment = NULL;
    fo.cutmix = 1.0;
    assert_int_equal(fr_fit_plan(net, &d.ts, &fo, &p), FR_STATUS_OK);
    assert_false(p.cached_features);
    fr_net_free(net);
    data_free(&d);
}

/* photos of 40x30 to 52x44 pixels in three class folders */
static void write_photos(const char *root, int n)
{
    for (int i = 0; i < n; i++) {
        char path[512];
        mkdir(root, 0777);
        snprintf(path, sizeof path, "%s/c%d", root, i % K);
        mkdir(path, 0777);
        int h = 30 + 7 * (i % 3), w = 40 + 4 * (i % 4);
        uint8_t *px = malloc((size_t)h * w * C);
        for (int p = 0; p < h * w * C; p++) {
            int y = p / C / w, x = p / C % w;
            double u = fr_rng_uniform_f64(9, 0, 0, (uint32_t)i, (uint32_t)p);
            px[p] = (uint8_t)(x * 5 + y * 3 + 40 * (p % C) + 80 * (i % K) + (int)(30 * u));
        }
        snprintf(path + strlen(path), sizeof path - strlen(path), "/%03d.png", i);
        assert_int_equal(fr_aug_write_png(path, px, h, w, C), FR_STATUS_OK);
        free(px);
    }
}

/* mean cross-entropy of logits [n, k] against labels */
static double mean_ce(const float *z, const int32_t *y, int n, int k)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double mx = z[i * k], se = 0;
        for (int j = 1; j < k; j++)
            mx = fmax(mx, z[i * k + j]);
        for (int j = 0; j < k; j++)
            se += exp(z[i * k + j] - mx);
        s += log(se) - (z[i * k + y[i]] - mx);
    }
    return s / n;
}

static void test_rrc_at_load(void **state)
{
    (void)state;
    enum { NP = 12, S = 16 };
    const char *root = tu_path(dir, "photos");
    write_photos(root, NP);
    char spec[300];
    snprintf(spec, sizeof spec, "folder:%s", root);
    struct fr_dataset_opts dopt;
    fr_dataset_opts_init(&dopt);
    dopt.height = dopt.width = S;
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_open(spec, &dopt, &ds), FR_STATUS_OK);
    assert_true(ds->files && ds->n == NP && ds->c == C && ds->h == S);
    struct fr_trainset ts = {.n_classes = K};
    assert_int_equal(fr_trainset_add(&ts, 0, ds, NULL, NP, NULL, NULL), FR_STATUS_OK);

    /* the rule: first op, the model's input size, bilinear, every dataset read from files */
    struct fr_net *net;
    assert_int_equal(fr_net_new(tu_cpu, "t", C, S, S, K, NULL, 4, &net), FR_STATUS_OK);
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    struct fr_fit_plan p;
    const char *at_load[] = {"rrc(size=16)", "rrc(size=16,scale=(0.5,1));hflip;randaugment(n=1,m=5)",
                             "randomresizedcrop(size=(16,16));cutmix(alpha=1)"};
    const char *on_device[] = {"hflip;rrc(size=16)", "rrc(size=16,interp=bicubic)", "resize(size=32);rrc(size=16)"};
    for (int i = 0; i < 3; i++) {
        fo.augment = at_load[i];
        assert_int_equal(fr_fit_plan(net, &ts, &fo, &p), FR_STATUS_OK);
        assert_true(p.crop_at_load);
        fo.augment = on_device[i];
        assert_int_equal(fr_fit_plan(net, &ts, &fo, &p), FR_STATUS_OK);
        assert_false(p.crop_at_load);
    }

    /* one step at learning rate 0 over the whole set: its loss is the model's mean loss on random crops of the whole
     * photos, as fr_dataset_read makes them for (seed, epoch 0, image) (model t: no batch-norm or dropout) */
    fo.augment = "rrc(size=16,scale=(0.3,1))";
    fo.epochs = 1;
    fo.batch = NP;
    fo.seed = 11;
    fo.sched.base_lr = 0.0f;
    fo.optim.weight_decay = 0;
    struct fr_fit_result r;
    assert_int_equal(fr_fit(net, &ts, &fo, &r), FR_STATUS_OK);
    assert_true(r.plan.crop_at_load);
    struct fr_read_opts ro;
    fr_read_opts_init(&ro);
    ro.crop = FR_CROP_RANDOM;
    ro.scale[0] = 0.3f;
    ro.seed = 11;
    int64_t idx[NP];
    for (int i = 0; i < NP; i++)
        idx[i] = i;
    uint8_t *img = malloc((size_t)NP * S * S * C), *centre = malloc((size_t)NP * S * S * C);
    assert_int_equal(fr_dataset_read(ds, idx, NP, &ro, img), FR_STATUS_OK);
    assert_int_equal(fr_dataset_read(ds, idx, NP, NULL, centre), FR_STATUS_OK);
    assert_true(memcmp(img, centre, (size_t)NP * S * S * C) != 0);
    float z[NP * K];
    assert_int_equal(fr_net_predict_u8(net, img, NP, z), FR_STATUS_OK);
    double want = mean_ce(z, ds->labels, NP, K);
    assert_true(fabs(r.train_loss - want) <= 1e-5 * want);
    assert_int_equal(fr_net_predict_u8(net, centre, NP, z), FR_STATUS_OK);
    assert_true(fabs(mean_ce(z, ds->labels, NP, K) - want) > 1e-3); /* a centre crop would not give it */

    free(img);
    free(centre);
    fr_net_free(net);
    fr_trainset_free(&ts);
    fr_dataset_free(ds);
}

/* --- the CLI with the shipped backbones (tools/models) on photos read at 64x64 --- */

static char out_text[1 << 16], err_text[1 << 16];

/* runs the built CLI (FRUGAL_EXE) on the CPU; its stdout and stderr in out_text, err_text; the exit status */
static int cli(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "FRUGAL_DEVICE=cpu FRUGAL_THREADS=2 %s %s >%s/out.txt 2>%s/err.txt", getenv("FRUGAL_EXE"),
             args, dir, dir);
    int st = system(cmd);
    char *bufs[2] = {out_text, err_text};
    const char *names[2] = {"out.txt", "err.txt"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(tu_path(dir, names[i]), "r");
        size_t n = f ? fread(bufs[i], 1, sizeof out_text - 1, f) : 0;
        bufs[i][n] = 0;
        if (f)
            fclose(f);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) > 2)
        printf("# %s\n# %.2000s\n", args, err_text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* a number of the JSON object on the last line of out_text */
static double json_num(const char *key)
{
    char k[128];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(out_text, k);
    if (!p)
        fail_msg("no '%s' in %.500s", key, out_text);
    p += strlen(k);
    return !strncmp(p, "true", 4) ? 1 : !strncmp(p, "false", 5) ? 0 : strtod(p, NULL);
}

/* plain weights of a model file with a 1000-class head (as tools/export_torchvision.py writes them) */
static void write_weights(const char *arch, const char *path)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_from_file(ctx, arch, C, 64, 64, 1000, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, tu_cpu), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 5, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    assert_int_equal(fr_model_save(m, path), FR_STATUS_OK);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void test_cli_backbones(void **state)
{
    (void)state;
    const char *src = getenv("FRUGAL_SOURCE_ROOT");
    if (!getenv("FRUGAL_EXE") || !src) {
        printf("skip: FRUGAL_EXE / FRUGAL_SOURCE_ROOT unset (built without the tools)\n");
        skip();
    }
    enum { NP = 12 };
    char photos[300], r18[400], mnv3[400], w18[300], wm[300], run[300];
    snprintf(photos, sizeof photos, "%s", tu_path(dir, "cli-photos"));
    write_photos(photos, NP); /* 3 classes, 40x30 .. 52x44 */
    snprintf(r18, sizeof r18, "%s/tools/models/resnet18.txt", src);
    snprintf(mnv3, sizeof mnv3, "%s/tools/models/mobilenet_v3_small.txt", src);
    snprintf(w18, sizeof w18, "%s", tu_path(dir, "resnet18.safetensors"));
    snprintf(wm, sizeof wm, "%s", tu_path(dir, "mnv3.safetensors"));
    snprintf(run, sizeof run, "%s", tu_path(dir, "runs"));
    write_weights(r18, w18);
    write_weights(mnv3, wm);

    /* mixed sizes without --size: the first misfit is named */
    assert_int_equal(cli("finetune --from %s --arch %s --data folder:%s --epochs 1", wm, mnv3, photos), 2);
    assert_non_null(strstr(err_text, "/c0/003.png: image is 30x52"));
    assert_non_null(strstr(err_text, "--size"));

    /* frozen backbone, no augmentation: its features once per image (9 training + 3 validation), the head on them */
    assert_int_equal(cli("finetune --from %s --arch %s --data folder:%s --size 64 --freeze backbone --val 3 --epochs 2 "
                         "--batch 4 --out %s/ft --json",
                         wm, mnv3, photos, run),
                     0);
    assert_non_null(strstr(err_text, "are computed once per image, then the head trains on them"));
    assert_true(json_num("features_cached") == 1 && json_num("frozen_layers") > 10);
    assert_true(json_num("feature_images") == NP && json_num("steps") == 4); /* full batches of 4 of 9 */
    assert_true(json_num("val_accuracy") >= 0 && json_num("train_loss") > 0);
    int frozen = (int)json_num("frozen_layers");
    /* with augmentation: the same layers in eval mode without gradients, every step */
    assert_int_equal(cli("finetune --from %s --arch %s --data folder:%s --size 64 --freeze backbone --augment hflip "
                         "--val 3 --epochs 1 --batch 4 --json",
                         wm, mnv3, photos),
                     0);
    assert_non_null(strstr(err_text, "eval mode, no gradients"));
    assert_true(json_num("features_cached") == 0 && json_num("frozen_layers") == frozen);
    /* fine-tuned ResNet-18 with a backbone learning-rate multiplier */
    assert_int_equal(cli("finetune --from %s --arch %s --data folder:%s --size 64 --freeze none --backbone-lr-mult 0.1 "
                         "--val 3 --epochs 1 --batch 4 --out %s/r18 --json",
                         w18, r18, photos, run),
                     0);
    assert_true(json_num("features_cached") == 0 && json_num("frozen_layers") == 0 && json_num("backbone_lr_mult") == 0.1);
    assert_null(strstr(err_text, "num_batches_tracked"));
    /* a checkpoint as plain weights: its optimizer state is no tensor the model lacks */
    assert_int_equal(cli("finetune --from %s/r18/model.safetensors --arch %s --data folder:%s --size 64 --freeze backbone "
                         "--val 3 --epochs 1 --batch 4 --json",
                         run, r18, photos),
                     0);
    assert_null(strstr(err_text, "ignored"));
    assert_true(json_num("features_cached") == 1);

    /* the checkpoints at their input size: eval, predict, pseudo-label */
    assert_int_equal(cli("eval --checkpoint %s/ft/model.safetensors --data folder:%s --json", run, photos), 0);
    assert_true(json_num("test_images") == NP && json_num("test_accuracy") >= 0);
    assert_int_equal(cli("predict --checkpoint %s/ft/model.safetensors --input %s/c2 --top-k 1", run, photos), 0);
    assert_non_null(strstr(out_text, "c2/002.png:"));
    assert_non_null(strstr(out_text, "c2/011.png:"));
    assert_int_equal(cli("pseudo-label --teacher %s/r18/model.safetensors --data folder:%s --size 64 --csv %s/pl.csv --json",
                         run, photos, run),
                     0);
    char line[512];
    int rows = 0;
    snprintf(line, sizeof line, "%s/pl.csv", run);
    FILE *pl = fopen(line, "r");
    assert_non_null(pl);
    while (fgets(line, sizeof line, pl))
        rows++;
    fclose(pl);
    assert_true(rows >= NP); /* a header and a row per photo kept (threshold 0: all) */
    /* distillation and Noisy Student: the fine-tuned ResNet-18 teaches a MobileNetV3 */
    assert_int_equal(cli("distill --teacher %s/r18/model.safetensors --arch %s --data folder:%s --size 64 --val 3 "
                         "--epochs 1 --batch 4 --json",
                         run, mnv3, photos),
                     0);
    assert_non_null(strstr(err_text, "teacher resnet18.txt -> student mobilenet_v3_small.txt"));
    assert_int_equal(cli("noisy-student --teacher %s/r18/model.safetensors --student %s --data folder:%s --size 64 "
                         "--labels 6 --rounds 1 --epochs 1 --batch 4 --json",
                         run, mnv3, photos),
                     0);
    assert_int_equal(cli("train --arch %s --data folder:%s --size 64 --val 3 --epochs 1 --batch 4 --json", mnv3, photos),
                     0);
    assert_true(json_num("parameters") > 1e6);

    /* weights that do not fit the model file: every missing and unexpected tensor in one message */
    assert_int_equal(cli("finetune --from %s --arch %s --data folder:%s --size 64", w18, mnv3, photos), 2);
    assert_non_null(strstr(err_text, "missing: features.0.0.weight, features.0.1.{weight,bias,running_mean,running_var}"));
    assert_non_null(strstr(err_text, "classifier.3.{weight,bias}"));
    assert_non_null(strstr(err_text, "unexpected: bn1.{bias,running_mean,running_var,weight}, conv1.weight, "
                                     "fc.{bias,weight}, layer1.0.bn1.")); /* the file's (sorted) order */
    assert_non_null(strstr(err_text, "layer4.1.conv2.weight"));
    /* a torchvision layer frugal lacks */
    FILE *f = fopen(tu_path(dir, "ln.txt"), "w");
    assert_non_null(f);
    fputs("conv c 8 3 1 1\nLayerNorm ln\ngap\nlinear fc 3\n", f);
    fclose(f);
    assert_int_equal(cli("train --arch %s --data folder:%s --size 64 --epochs 1", tu_path(dir, "ln.txt"), photos), 2);
    assert_non_null(strstr(err_text, "ln.txt:2: 'LayerNorm' is a PyTorch layer frugal does not have (missing op: layer "
                                     "normalisation)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_backbone),
        cmocka_unit_test(test_plan_rules),
        cmocka_unit_test(test_rrc_at_load),
        cmocka_unit_test(test_cli_backbones),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
