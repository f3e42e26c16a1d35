/* `frugal augment`: applies a policy to image files and writes a contact sheet and/or each result as PNG,
 * so users can look at what their policy does. Runs the batch augmenter (the graph ops of training's input
 * stage) on the chosen device: the same bytes as training for the same seed, step and sample. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "frugal/augment.h"
#include "frugal/data.h"
#include "recipe_cli.h"

#define CMD_NAME "augment"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* --bench: images/s of the policy on random size×size×C u8 images (parameter drawing included), through the same
 * augmenter (graph ops on the device) as previews and training */
static int bench(struct fr_backend *be, const char *policy, int size, int c, int batch, double seconds)
{
    size_t in_img = (size_t)size * size * c;
    uint8_t *in = malloc(in_img * batch);
    struct fr_augmenter *a = NULL;
    struct fr_augmenter_opts ao = {.policy = policy, .seed = 1, .batch = batch, .h = size, .w = size, .c = c,
                                   .no_normalize = 1};
    if (!in)
        return cli_error(CMD_NAME, CLI_FAIL, "out of memory");
    if (fr_augmenter_new(be, &ao, &a)) {
        free(in);
        return cli_error(CMD_NAME, CLI_FAIL, "%s", fr_last_error());
    }
    int oh, ow;
    fr_augmenter_output(a, &oh, &ow, NULL, NULL);
    uint8_t *out = malloc((size_t)oh * ow * c * batch);
    if (!out) {
        free(in);
        fr_augmenter_free(a);
        return cli_error(CMD_NAME, CLI_FAIL, "out of memory");
    }
    uint32_t r = 12345;
    for (size_t i = 0; i < in_img * batch; i++) { /* smooth-ish picture with noise, so histograms are not flat */
        r = r * 1664525u + 1013904223u;
        in[i] = (uint8_t)(((i / c) % size) / 2 + ((i / c / size) % size) / 3 + (r >> 28));
    }
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t0 = now_s(), t;
    long done = 0;
    uint32_t step = 0;
    do {
        if (fr_augmenter_run(a, step, 0, batch, in, out, NULL, NULL)) {
            fr_augmenter_free(a);
            free(in), free(out);
            return cli_error(CMD_NAME, CLI_FAIL, "%s", fr_last_error());
        }
        done += batch, step++;
        t = now_s() - t0;
    } while (t < seconds);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9;
    /* images per CPU-second: the fair single-thread figure on a shared, loaded machine */
    printf("{\"images_per_s\": %.1f, \"images_per_cpu_s\": %.1f, \"threads\": %d, \"size\": %d, \"images\": %ld, "
           "\"device\": \"%s\"}\n",
           done / t, done / cpu, be->kind == FR_BACKEND_CPU ? fr_backend_cpu_threads(be) : 0, size, done,
           fr_backend_name(be));
    fr_augmenter_free(a);
    free(in), free(out);
    return CLI_OK;
}

struct img {
    char *path;
    uint8_t *pix;
    int h, w;
};

/* expands directories (their images, sorted; not recursive: fr_image_list_dir decides, as for datasets) and keeps
 * plain files; on failure *out keeps what was collected so far (the caller frees it) */
static int collect(const struct cli_list *in, char ***out, int *n_out)
{
    char **list = NULL;
    int n = 0, cap = 0;
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < in->n; i++) {
        struct stat st;
        if (stat(in->items[i], &st) != 0)
            return cli_error(CMD_NAME, CLI_USAGE, "%s: %s", in->items[i], strerror(errno));
        char **found = NULL;
        int64_t nfound = 0;
        if (S_ISDIR(st.st_mode)) {
            if (fr_image_list_dir(in->items[i], &found, &nfound, NULL, NULL) != FR_STATUS_OK)
                return cli_error(CMD_NAME, CLI_USAGE, "%s", fr_last_error());
            if (nfound == 0)
                fprintf(stderr, "frugal augment: %s: no .png/.jpg/.jpeg/.bmp files\n", in->items[i]);
        }
        for (int64_t j = 0; j < (S_ISDIR(st.st_mode) ? nfound : 1); j++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nl = realloc(list, sizeof *list * (size_t)cap);
                if (!nl) {
                    for (int64_t q = j; found && q < nfound; q++)
                        free(found[q]);
                    free(found);
                    return cli_error(CMD_NAME, CLI_FAIL, "out of memory");
                }
                list = nl;
                *out = list;
            }
            list[n++] = S_ISDIR(st.st_mode) ? found[j] : strdup(in->items[i]);
            *n_out = n;
        }
        free(found);
    }
    *out = list;
    *n_out = n;
    return CLI_OK;
}

/* runs the policy on n_img images of one size, `count` samples each, through the augmenter on `be` */
static int augment_group(struct fr_backend *be, const char *policy, struct img **imgs, int n_img, int count, int c,
                         uint64_t seed, uint32_t step, uint32_t first_sample, uint8_t **out, int *oh, int *ow)
{
    int h = imgs[0]->h, w = imgs[0]->w, n = n_img * count;
    size_t in_img = (size_t)h * w * c;
    uint8_t *batch = malloc(in_img * n);
    struct fr_augmenter *a = NULL;
    struct fr_augmenter_opts ao = {.policy = policy, .seed = seed, .batch = n, .h = h, .w = w, .c = c,
                                   .no_normalize = 1};
    *out = NULL;
    int rc = CLI_FAIL;
    if (!batch) {
        cli_error(CMD_NAME, CLI_FAIL, "out of memory for %d images of %dx%d", n, w, h);
        goto done;
    }
    for (int i = 0; i < n; i++)
        memcpy(batch + in_img * i, imgs[i / count]->pix, in_img);
    enum fr_status st = fr_augmenter_new(be, &ao, &a);
    if (st != FR_STATUS_OK) { /* a policy that cannot run on these inputs is bad input (2), the rest a failure */
        rc = cli_error(CMD_NAME, st == FR_STATUS_INVALID_ARGUMENT ? CLI_USAGE : CLI_FAIL, "%s", fr_last_error());
        goto done;
    }
    fr_augmenter_output(a, oh, ow, NULL, NULL);
    if (!(*out = malloc((size_t)*oh * *ow * c * n))) {
        cli_error(CMD_NAME, CLI_FAIL, "out of memory for %d results of %dx%d (from %dx%d inputs)", n, *ow, *oh, w, h);
        goto done;
    }
    if (fr_augmenter_run(a, step, first_sample, n, batch, *out, NULL, NULL)) {
        cli_error(CMD_NAME, CLI_FAIL, "%s", fr_last_error());
        goto done;
    }
    rc = CLI_OK;
done:
    fr_augmenter_free(a);
    free(batch);
    return rc;
}

/* output file stems for the inputs: the file name without its extension; where two inputs share it, the
 * extension is kept ("a_png"), and where that is still shared, the input's position is added ("a_png-3") */
static char **output_stems(struct img *imgs, int n)
{
    char **stems = calloc((size_t)(n > 0 ? n : 1), sizeof *stems);
    if (!stems)
        return NULL;
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < n; i++) {
            const char *base = strrchr(imgs[i].path, '/');
            base = base ? base + 1 : imgs[i].path;
            char stem[300];
            snprintf(stem, sizeof stem, "%.255s", base);
            char *dot = strrchr(stem, '.');
            if (dot && pass == 0)
                *dot = 0;
            else if (dot)
                *dot = '_';
            if (pass == 2)
                snprintf(stem + strlen(stem), sizeof stem - strlen(stem), "-%d", i);
            if (pass > 0) { /* only the ones that collided in the previous pass change */
                bool clash = false;
                for (int j = 0; j < n; j++)
                    clash |= j != i && stems[j] && !strcmp(stems[j], stems[i]);
                if (!clash)
                    continue;
            }
            free(stems[i]);
            stems[i] = strdup(stem);
        }
    for (int i = 0; i < n; i++)
        if (!stems[i]) {
            for (int j = 0; j < n; j++)
                free(stems[j]);
            free(stems);
            return NULL;
        }
    return stems;
}

int cmd_augment(int argc, char **argv)
{
    struct cli_list inputs = {0}, extra = {0};
    const char *policy = NULL, *device = NULL, *grid = NULL, *out_dir = NULL, *on_error = "stop";
    int64_t count = 8, seed = 1, step = 0, threads = 0, channels = 3, bench_size = 0;
    double bench_seconds = 2.0;
    struct cli_opt opts[] = {
        {"input", CLI_STR_LIST, &inputs, "FILE_OR_DIR", "image files (PNG/JPEG/BMP) or directories of them", false},
        {"policy", CLI_STR, &policy, "SPEC", "e.g. 'randaugment(n=2,m=9)' or 'rrc(size=224);hflip(p=0.5)'", false},
        {"count", CLI_INT, &count, "N", "augmented samples per input image (default 8)", false, CLI_RANGE(1, 4096)},
        {"seed", CLI_INT, &seed, "S", "RNG seed, as --seed of train (default 1)", false, CLI_RANGE(0, 9.2e18)},
        {"step", CLI_INT, &step, "T", "training step to reproduce (default 0)", false, CLI_RANGE(0, 4294967295.0)},
        {"device", CLI_STR, &device, "D", "cpu, cl:P:D or auto (default: FRUGAL_DEVICE or auto)", false},
        {"threads", CLI_INT, &threads, "N", "CPU threads (default: FRUGAL_THREADS or all cores)", false,
         CLI_RANGE(0, CLI_MAX_THREADS)},
        {"channels", CLI_INT, &channels, "C", "decode images to C channels, 1..4 (default 3)", false, CLI_RANGE(1, 4)},
        {"grid", CLI_STR, &grid, "OUT.png", "write a contact sheet: one row per input, one column per sample", false},
        {"out", CLI_STR, &out_dir, "DIR", "write each result as DIR/<name>_<k>.png", false},
        CLI_DEPRECATED("out-dir", "out"),
        {"on-error", CLI_STR, &on_error, "stop|skip", "an unreadable image stops the run (default) or is skipped", false},
        {"bench", CLI_INT, &bench_size, "SIZE", "time the policy on random SIZE×SIZE images instead (JSON img/s)", false,
         CLI_RANGE(1, 4096)},
        {"bench-seconds", CLI_FLOAT, &bench_seconds, "S", "with --bench: how long to run (default 2)", false,
         CLI_ABOVE(0, 3600)},
        {0},
    };
    char **files = NULL, **stems = NULL;
    int n_files = 0;
    struct img *imgs = NULL;
    int n_img = 0;
    struct fr_backend *be = NULL;
    struct fr_aug_policy *pol = NULL;
    uint8_t **results = NULL;
    int *res_h = NULL, *res_w = NULL;
    struct rc_outdir od = {.lock_fd = -1};
    int64_t written = 0;
    int rc = cli_parse(CMD_NAME,
                       "--input FILE_OR_DIR... --policy SPEC [--count N] [--seed S] [--device D] [--grid OUT.png] "
                       "[--out DIR]",
                       argc, argv, opts, &extra);
    if (rc) {
        rc = rc < 0 ? CLI_OK : rc;
        goto done;
    }
    /* `--input a b c`: the words after the first input arrive as positional arguments */
    if (extra.n) {
        const char **all = realloc(inputs.items, sizeof *all * (size_t)(inputs.n + extra.n));
        if (!all) {
            rc = cli_error(CMD_NAME, CLI_FAIL, "out of memory");
            goto done;
        }
        memcpy(all + inputs.n, extra.items, sizeof *all * (size_t)extra.n);
        inputs.items = all;
        inputs.n += extra.n;
    }
    if (!policy) {
        rc = cli_error(CMD_NAME, CLI_USAGE, "--policy is required (see --help)");
        goto done;
    }
    if (fr_aug_policy_parse(policy, &pol)) {
        rc = cli_error(CMD_NAME, CLI_USAGE, "%s", fr_last_error());
        goto done;
    }
    if (bench_size > 0) {
        if ((rc = cli_open_device(CMD_NAME, device, (int)threads, &be)) == CLI_OK)
            rc = bench(be, policy, (int)bench_size, (int)channels, 64, bench_seconds);
        goto done;
    }
    if (inputs.n == 0) {
        rc = cli_error(CMD_NAME, CLI_USAGE, "--input is required (see --help)");
        goto done;
    }
    if (!grid && !out_dir) {
        rc = cli_error(CMD_NAME, CLI_USAGE, "nothing to write: give --grid OUT.png and/or --out DIR");
        goto done;
    }
    int skip = !strcmp(on_error, "skip");
    if (!skip && strcmp(on_error, "stop")) {
        rc = cli_error(CMD_NAME, CLI_USAGE, "--on-error %s: expected stop or skip", on_error);
        goto done;
    }
    float mean[4], sd[4];
    if (fr_aug_policy_normalize(pol, mean, sd))
        fprintf(stderr, "frugal augment: normalize() is not shown in previews (pixels stay 0..255)\n");
    /* where the results go exists (and is ours) before any work */
    if (out_dir) {
        char what[4200];
        snprintf(what, sizeof what, "--out %s", out_dir);
        if ((rc = rc_mkdir(CMD_NAME, out_dir)) != CLI_OK || (rc = rc_lock(CMD_NAME, out_dir, ".frugal.lock", what, &od)))
            goto done;
    }
    if (grid) {
        struct stat sb;
        if (stat(grid, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            rc = cli_error(CMD_NAME, CLI_USAGE, "--grid %s: is a directory (give a file name ending in .png)", grid);
            goto done;
        }
        if ((rc = rc_mkdir_parent(CMD_NAME, grid)) != CLI_OK)
            goto done;
    }
    if ((rc = collect(&inputs, &files, &n_files)) != CLI_OK)
        goto done;
    imgs = calloc((size_t)n_files + 1, sizeof *imgs);
    if (!imgs) {
        rc = cli_error(CMD_NAME, CLI_FAIL, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_files; i++) {
        int c;
        struct img *im = &imgs[n_img];
        if (fr_image_load(files[i], (int)channels, 0, 0, FR_RESIZE_BILINEAR, &im->pix, &c, &im->h, &im->w)) {
            if (!skip) {
                rc = cli_error(CMD_NAME, CLI_USAGE, "%s (use --on-error skip to go on without it)", fr_last_error());
                goto done;
            }
            fprintf(stderr, "frugal augment: skipping %s\n", fr_last_error());
            continue;
        }
        im->path = files[i];
        n_img++;
    }
    if (n_img == 0) {
        rc = cli_error(CMD_NAME, CLI_USAGE, "no readable images among the inputs");
        goto done;
    }
    if (out_dir) { /* names that cannot overwrite each other; the ones of an earlier run are reported */
        if (!(stems = output_stems(imgs, n_img))) {
            rc = cli_error(CMD_NAME, CLI_FAIL, "out of memory");
            goto done;
        }
        int64_t existing = 0;
        for (int i = 0; i < n_img; i++)
            for (int s = 0; s < count; s++) {
                char path[4096];
                struct stat sb;
                snprintf(path, sizeof path, "%s/%s_%d.png", out_dir, stems[i], s);
                existing += stat(path, &sb) == 0;
            }
        if (existing)
            fprintf(stderr, "frugal augment: note: %s holds %lld files of the names this run writes: they are replaced\n",
                    out_dir, (long long)existing);
    }
    if ((rc = cli_open_device(CMD_NAME, device, (int)threads, &be)) != CLI_OK)
        goto done;
    rc_install_signals();

    /* one batch when all inputs share a size (so cutmix/mixup can pair different images), else one per image */
    int same = 1;
    for (int i = 1; i < n_img; i++)
        same &= imgs[i].h == imgs[0].h && imgs[i].w == imgs[0].w;
    if (!same && fr_aug_policy_mix(pol))
        fprintf(stderr, "frugal augment: inputs differ in size: cutmix/mixup only pairs samples of the same image\n");
    results = calloc((size_t)n_img, sizeof *results);
    res_h = calloc((size_t)n_img, sizeof *res_h);
    res_w = calloc((size_t)n_img, sizeof *res_w);
    if (!results || !res_h || !res_w) {
        rc = cli_error(CMD_NAME, CLI_FAIL, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_img; i += same ? n_img : 1) {
        if (rc_stop) {
            rc = rc_interrupted(CMD_NAME, "nothing written");
            goto done;
        }
        int ng = same ? n_img : 1, oh, ow;
        struct img *group[ng];
        for (int j = 0; j < ng; j++)
            group[j] = &imgs[i + j];
        uint8_t *out = NULL;
        rc = augment_group(be, policy, group, ng, (int)count, (int)channels, (uint64_t)seed, (uint32_t)step,
                           (uint32_t)(i * count), &out, &oh, &ow);
        if (rc != CLI_OK) {
            free(out);
            goto done;
        }
        size_t per = (size_t)count * oh * ow * channels;
        for (int j = 0; j < ng; j++) {
            results[i + j] = malloc(per);
            if (results[i + j])
                memcpy(results[i + j], out + per * j, per);
            res_h[i + j] = oh, res_w[i + j] = ow;
        }
        free(out);
        for (int j = 0; j < ng; j++)
            if (!results[i + j]) {
                rc = cli_error(CMD_NAME, CLI_FAIL, "out of memory");
                goto done;
            }
    }

    if (out_dir) {
        for (int i = 0; i < n_img; i++) {
            size_t one = (size_t)res_h[i] * res_w[i] * channels;
            for (int s = 0; s < count; s++) {
                if (rc_stop) {
                    char what[96];
                    snprintf(what, sizeof what, "%lld of %lld images written", (long long)written,
                             (long long)(count * n_img));
                    rc = rc_interrupted(CMD_NAME, what);
                    goto done;
                }
                char path[4096];
                snprintf(path, sizeof path, "%s/%s_%d.png", out_dir, stems[i], s);
                if (fr_aug_write_png(path, results[i] + one * s, res_h[i], res_w[i], (int)channels)) {
                    rc = cli_error(CMD_NAME, CLI_FAIL, "%s (%lld of %lld images written)", fr_last_error(),
                                   (long long)written, (long long)(count * n_img));
                    goto done;
                }
                written++;
            }
        }
        printf("wrote %lld images to %s\n", (long long)written, out_dir);
    }
    if (grid) { /* cells of the largest result size, 2-pixel grey gutters */
        int ch = 0, cw = 0, gap = 2;
        for (int i = 0; i < n_img; i++)
            ch = res_h[i] > ch ? res_h[i] : ch, cw = res_w[i] > cw ? res_w[i] : cw;
        int64_t gw = count * (cw + gap) + gap, gh = (int64_t)n_img * (ch + gap) + gap;
        if (gw * gh > (int64_t)1 << 28) {
            rc = cli_error(CMD_NAME, CLI_USAGE, "contact sheet of %lldx%lld is too large: use fewer inputs or --count",
                           (long long)gw, (long long)gh);
            goto done;
        }
        uint8_t *sheet = malloc((size_t)(gw * gh * channels));
        if (!sheet) {
            rc = cli_error(CMD_NAME, CLI_FAIL, "out of memory");
            goto done;
        }
        memset(sheet, 96, (size_t)(gw * gh * channels));
        for (int i = 0; i < n_img; i++)
            for (int s = 0; s < count; s++) {
                const uint8_t *src = results[i] + (size_t)res_h[i] * res_w[i] * channels * s;
                for (int y = 0; y < res_h[i]; y++)
                    memcpy(sheet + (((size_t)gap + i * (ch + gap) + y) * gw + gap + s * (cw + gap)) * channels,
                           src + (size_t)y * res_w[i] * channels, (size_t)res_w[i] * channels);
            }
        enum fr_status st = fr_aug_write_png(grid, sheet, (int)gh, (int)gw, (int)channels);
        free(sheet);
        if (st) {
            rc = cli_error(CMD_NAME, CLI_FAIL, "%s", fr_last_error());
            goto done;
        }
        printf("wrote %s (%d inputs x %lld samples, %s)\n", grid, n_img, (long long)count, fr_backend_name(be));
    }
    rc = CLI_OK;
done:
    for (int i = 0; results && i < n_img; i++)
        free(results[i]);
    free(results), free(res_h), free(res_w);
    for (int i = 0; stems && i < n_img; i++)
        free(stems[i]);
    free(stems);
    for (int i = 0; imgs && i < n_img; i++)
        free(imgs[i].pix);
    free(imgs);
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    free(inputs.items), free(extra.items); /* finding 46: the input lists leaked */
    if (be)
        fr_backend_free(be);
    fr_aug_policy_free(pol);
    rc_out_close(&od);
    return rc;
}
