/* Splits (balanced counts, disjoint cover, determinism) and the loader (every index once per epoch, reshuffled per
 * epoch, partial batch kept/dropped, resume mid-epoch, prefetch = synchronous, training-set sources with their rows,
 * the prepare hook and its errors), plus a throughput measurement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "frugal/data.h"

/* n images of 1x4 whose pixels spell their index; label = lab(i) (255 → unlabeled via a second pass) */
static struct fr_dataset *make_ds(int64_t n, int n_classes, int h, int w)
{
    size_t isz = (size_t)h * w;
    uint8_t *img = malloc(16 + (size_t)n * isz), *lab = malloc(8 + (size_t)n);
    uint32_t dims[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    img[0] = img[1] = 0, img[2] = 8, img[3] = 3;
    for (int d = 0; d < 3; d++)
        for (int b = 0; b < 4; b++)
            img[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
    lab[0] = lab[1] = 0, lab[2] = 8, lab[3] = 1;
    for (int b = 0; b < 4; b++)
        lab[4 + b] = (uint8_t)((uint32_t)n >> (24 - 8 * b));
    for (int64_t i = 0; i < n; i++) {
        uint8_t *p = img + 16 + i * isz;
        memset(p, 0, isz);
        p[0] = (uint8_t)i, p[1] = (uint8_t)(i >> 8), p[2] = (uint8_t)(i >> 16);
        /* unbalanced on purpose: class k gets more images as k grows */
        lab[8 + i] = (uint8_t)((i * 7) % 11 % n_classes);
    }
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_idx_from_memory(img, 16 + n * isz, lab, 8 + n, "synthetic", &ds), FR_STATUS_OK);
    free(img);
    free(lab);
    return ds;
}

static int64_t pix_index(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16; }

static void check_split(const struct fr_dataset *ds, const struct fr_split *s)
{
    char *seen = calloc((size_t)ds->n, 1);
    const int64_t *arr[3] = {s->labeled, s->val, s->unlabeled};
    int64_t cnt[3] = {s->n_labeled, s->n_val, s->n_unlabeled};
    for (int a = 0; a < 3; a++)
        for (int64_t i = 0; i < cnt[a]; i++) {
            assert_true(arr[a][i] >= 0 && arr[a][i] < ds->n);
            assert_int_equal(seen[arr[a][i]], 0); /* disjoint */
            seen[arr[a][i]] = 1;
            if (i)
                assert_true(arr[a][i] > arr[a][i - 1]); /* sorted */
        }
    assert_int_equal(cnt[0] + cnt[1] + cnt[2], ds->n); /* cover */
    free(seen);
}

static void per_class(const struct fr_dataset *ds, const int64_t *idx, int64_t n, int64_t *counts)
{
    for (int k = 0; k < ds->n_classes; k++)
        counts[k] = 0;
    for (int64_t i = 0; i < n; i++)
        counts[ds->labels[idx[i]]]++;
}

static void test_split_balanced(void **state)
{
    (void)state;
    struct fr_dataset *ds = make_ds(1000, 10, 1, 4);
    struct fr_split s;
    assert_int_equal(fr_split_make(ds, 100, 20, 42, &s), FR_STATUS_OK);
    check_split(ds, &s);
    assert_int_equal(s.n_labeled, 80);
    assert_int_equal(s.n_val, 20);
    assert_int_equal(s.n_unlabeled, 900);
    int64_t c[10];
    per_class(ds, s.labeled, s.n_labeled, c);
    for (int k = 0; k < 10; k++)
        assert_int_equal(c[k], 8);
    per_class(ds, s.val, s.n_val, c);
    for (int k = 0; k < 10; k++)
        assert_int_equal(c[k], 2);
    /* deterministic for a seed, different for another */
    struct fr_split s2, s3;
    assert_int_equal(fr_split_make(ds, 100, 20, 42, &s2), FR_STATUS_OK);
    assert_memory_equal(s.labeled, s2.labeled, 80 * sizeof(int64_t));
    assert_memory_equal(s.val, s2.val, 20 * sizeof(int64_t));
    assert_int_equal(fr_split_make(ds, 100, 20, 43, &s3), FR_STATUS_OK);
    assert_true(memcmp(s.labeled, s3.labeled, 80 * sizeof(int64_t)) != 0);
    fr_split_free(&s3);
    /* a larger budget with the same seed and validation size keeps the smaller one's images */
    assert_int_equal(fr_split_make(ds, 300, 20, 42, &s3), FR_STATUS_OK);
    assert_memory_equal(s.val, s3.val, 20 * sizeof(int64_t));
    for (int64_t i = 0, j = 0; i < s.n_labeled; i++) {
        while (j < s3.n_labeled && s3.labeled[j] < s.labeled[i])
            j++;
        assert_true(j < s3.n_labeled && s3.labeled[j] == s.labeled[i]);
    }
    fr_split_free(&s3);
    /* uneven budget: 45 over 10 classes = 4 or 5 each */
    assert_int_equal(fr_split_make(ds, 45, 0, 1, &s3), FR_STATUS_OK);
    check_split(ds, &s3);
    assert_int_equal(s3.n_labeled, 45);
    per_class(ds, s3.labeled, s3.n_labeled, c);
    int fives = 0;
    for (int k = 0; k < 10; k++) {
        assert_true(c[k] == 4 || c[k] == 5);
        fives += c[k] == 5;
    }
    assert_int_equal(fives, 5);
    fr_split_free(&s3);
    /* 12 labels, 11 for validation: the extra validation image must come from a class that got 2 labels */
    assert_int_equal(fr_split_make(ds, 12, 11, 3, &s3), FR_STATUS_OK);
    check_split(ds, &s3);
    assert_int_equal(s3.n_labeled, 1);
    assert_int_equal(s3.n_val, 11);
    fr_split_free(&s3);
    /* everything labeled */
    assert_int_equal(fr_split_make(ds, 0, 10, 1, &s3), FR_STATUS_OK);
    check_split(ds, &s3);
    assert_int_equal(s3.n_labeled, 990);
    assert_int_equal(s3.n_unlabeled, 0);
    fr_split_free(&s3);
    /* errors */
    assert_int_equal(fr_split_make(ds, 10, 20, 1, &s3), FR_STATUS_INVALID_ARGUMENT);
    int64_t counts[10];
    fr_dataset_class_counts(ds, counts);
    /* class 1 (~91 images, class 0 has ~182) cannot give its share of a budget below the labeled total: it gives
     * all it has and the other classes share the rest as evenly as they can (balanced as far as the data allows) */
    int64_t budget = 10 * (counts[1] + 1);
    assert_true(budget < ds->n);
    assert_int_equal(fr_split_make(ds, budget, 0, 1, &s3), FR_STATUS_OK);
    check_split(ds, &s3);
    assert_int_equal(s3.n_labeled, budget);
    per_class(ds, s3.labeled, s3.n_labeled, c);
    assert_int_equal(c[1], counts[1]);
    int64_t lo = INT64_MAX, hi = 0;
    for (int k = 0; k < 10; k++)
        if (c[k] < counts[k]) { /* the classes that were not exhausted */
            lo = c[k] < lo ? c[k] : lo;
            hi = c[k] > hi ? c[k] : hi;
        }
    assert_true(hi - lo <= 1 && lo > counts[1]);
    fr_split_free(&s3);
    /* unlabeled images never enter the labeled side */
    for (int64_t i = 0; i < ds->n; i += 2)
        ds->labels[i] = -1;
    assert_int_equal(fr_split_make(ds, 0, 0, 1, &s3), FR_STATUS_OK);
    check_split(ds, &s3);
    for (int64_t i = 0; i < s3.n_labeled; i++)
        assert_true(ds->labels[s3.labeled[i]] >= 0);
    assert_int_equal(s3.n_labeled, 500);
    fr_split_free(&s3);
    /* the unlabeled rest as a dataset without labels */
    struct fr_dataset *u;
    assert_int_equal(fr_dataset_subset(ds, s.unlabeled, s.n_unlabeled, true, &u), FR_STATUS_OK);
    assert_int_equal(u->n, 900);
    assert_int_equal(u->labels[5], -1);
    assert_int_equal(pix_index(u->pixels + 5 * 4), s.unlabeled[5]);
    fr_dataset_free(u);
    fr_split_free(&s);
    fr_split_free(&s2);
    fr_dataset_free(ds);
}

/* Runs one epoch; returns the dataset indices in order into out (n). */
static int64_t run_epoch(struct fr_loader *l, const struct fr_dataset *ds, int64_t epoch, int64_t first, int64_t *out,
                         int *last_n, int64_t *n_batches)
{
    assert_int_equal(fr_loader_start(l, epoch, first), FR_STATUS_OK);
    const struct fr_batch *b;
    int64_t k = 0;
    *n_batches = 0;
    while (fr_loader_next(l, &b) == FR_STATUS_OK && b) {
        assert_int_equal(b->epoch, epoch);
        assert_int_equal(b->step, first + *n_batches);
        for (int i = 0; i < b->n; i++) {
            int64_t j = b->index[i];
            assert_int_equal(pix_index(b->images + (size_t)i * 4), j); /* the image is the indexed one */
            assert_int_equal(b->labels[i], ds->labels[j]);
            if (b->soft)
                assert_true(b->soft[i * ds->n_classes + 1] == (float)j);
            out[k++] = j;
        }
        *last_n = b->n;
        (*n_batches)++;
    }
    return k;
}

static void test_loader_epochs(void **state)
{
    (void)state;
    struct fr_dataset *ds = make_ds(103, 10, 1, 4);
    ds->soft = calloc(103 * 10, sizeof(float));
    for (int i = 0; i < 103; i++)
        ds->soft[i * 10 + 1] = (float)i;
    int64_t e0[103], e1[103], e0b[103], tail[103];
    int last_n;
    int64_t nb;
    for (int pf = 0; pf < 2; pf++) {
        struct fr_loader_opts o;
        fr_loader_opts_init(&o);
        o.batch = 16, o.seed = 7, o.prefetch = pf;
        struct fr_loader *l;
        assert_int_equal(fr_loader_new(ds, NULL, 0, &o, &l), FR_STATUS_OK);
        assert_int_equal(fr_loader_batches_per_epoch(l), 7);
        assert_int_equal(run_epoch(l, ds, 0, 0, e0, &last_n, &nb), 103);
        assert_int_equal(nb, 7);
        assert_int_equal(last_n, 7); /* 103 = 6*16 + 7, kept */
        char seen[103] = {0};
        for (int i = 0; i < 103; i++) {
            assert_int_equal(seen[e0[i]], 0);
            seen[e0[i]] = 1;
        }
        assert_int_equal(run_epoch(l, ds, 1, 0, e1, &last_n, &nb), 103);
        assert_true(memcmp(e0, e1, sizeof e0) != 0); /* reshuffled */
        if (pf == 0)
            memcpy(e0b, e0, sizeof e0);
        else
            assert_memory_equal(e0, e0b, sizeof e0); /* prefetch changes nothing */
        /* resume at batch 3 of epoch 0 = the tail of the full epoch */
        assert_int_equal(run_epoch(l, ds, 0, 3, tail, &last_n, &nb), 103 - 48);
        assert_memory_equal(tail, e0 + 48, (103 - 48) * sizeof(int64_t));
        /* restart in the middle of an epoch (a batch still being prefetched) */
        const struct fr_batch *b;
        assert_int_equal(fr_loader_start(l, 1, 0), FR_STATUS_OK);
        assert_int_equal(fr_loader_next(l, &b), FR_STATUS_OK);
        assert_int_equal(run_epoch(l, ds, 1, 0, tail, &last_n, &nb), 103);
        assert_memory_equal(tail, e1, sizeof e1);
        fr_loader_free(l);
        /* drop the last partial batch */
        o.drop_last = true;
        assert_int_equal(fr_loader_new(ds, NULL, 0, &o, &l), FR_STATUS_OK);
        assert_int_equal(fr_loader_batches_per_epoch(l), 6);
        assert_int_equal(run_epoch(l, ds, 0, 0, tail, &last_n, &nb), 96);
        assert_int_equal(last_n, 16);
        assert_memory_equal(tail, e0, 96 * sizeof(int64_t));
        fr_loader_free(l);
    }
    /* a subset, unshuffled: its indices in the given order */
    int64_t idx[5] = {100, 3, 50, 7, 9}, got[5];
    struct fr_loader_opts o;
    fr_loader_opts_init(&o);
    o.batch = 2, o.shuffle = false;
    struct fr_loader *l;
    assert_int_equal(fr_loader_new(ds, idx, 5, &o, &l), FR_STATUS_OK);
    assert_int_equal(run_epoch(l, ds, 0, 0, got, &last_n, &nb), 5);
    assert_memory_equal(got, idx, sizeof idx);
    assert_int_equal(last_n, 1);
    fr_loader_free(l);
    idx[0] = 103;
    assert_int_equal(fr_loader_new(ds, idx, 5, &o, &l), FR_STATUS_INVALID_ARGUMENT);
    o.batch = 0;
    assert_int_equal(fr_loader_new(ds, NULL, 0, &o, &l), FR_STATUS_INVALID_ARGUMENT);
    fr_dataset_free(ds);
}

/* the prepare hook: records what it saw per slot; fails at epoch 1 step 2 */
struct hook {
    int64_t step[2], first[2];
    int calls;
};

static enum fr_status prepare(void *user, const struct fr_batch *b)
{
    struct hook *h = user;
    h->calls++;
    h->step[b->slot] = b->step;
    h->first[b->slot] = pix_index(b->images);
    if (b->epoch == 1 && b->step == 2)
        return fr_error(FR_STATUS_NUMERIC, "hook: failing on purpose at step %lld", (long long)b->step);
    return FR_STATUS_OK;
}

/* A training set's entries (two datasets, own labels, soft targets and extra rows) and the prepare hook: every
 * entry once per epoch with its own rows; the hook has prepared a batch's slot before it is handed out; its error
 * stops the epoch at that batch. */
static void test_loader_sources_and_hook(void **state)
{
    (void)state;
    struct fr_dataset *a = make_ds(30, 3, 1, 4), *b = make_ds(20, 3, 1, 4);
    enum { N = 37 };
    uint8_t which[N];
    int64_t idx[N];
    int32_t lab[N];
    float soft[N * 2], extra[N * 3];
    for (int i = 0; i < N; i++) {
        which[i] = (uint8_t)(i % 3 == 0), idx[i] = which[i] ? i % 20 : (i * 7) % 30, lab[i] = i % 3;
        soft[2 * i] = (float)i, soft[2 * i + 1] = -(float)i;
        for (int q = 0; q < 3; q++)
            extra[3 * i + q] = (float)(100 * i + q);
    }
    struct fr_loader_src src = {.ds = {a, b}, .n = N, .which = which, .idx = idx, .labels = lab, .soft = soft,
                                .extra = extra, .n_classes = 2, .n_extra = 3};
    struct hook h = {{0}, {0}, 0};
    for (int pf = 0; pf < 2; pf++) {
        struct fr_loader_opts o;
        fr_loader_opts_init(&o);
        o.batch = 8, o.seed = 3, o.prefetch = pf, o.prepare = prepare, o.user = &h;
        struct fr_loader *l;
        assert_int_equal(fr_loader_new_src(&src, &o, &l), FR_STATUS_OK);
        char seen[N] = {0};
        const struct fr_batch *bt;
        assert_int_equal(fr_loader_start(l, 0, 0), FR_STATUS_OK);
        int n = 0;
        while (fr_loader_next(l, &bt) == FR_STATUS_OK && bt) {
            assert_int_equal(h.step[bt->slot], bt->step); /* prepared before it was handed out */
            assert_int_equal(h.first[bt->slot], pix_index(bt->images));
            for (int i = 0; i < bt->n; i++) {
                int64_t e = bt->index[i]; /* the entry */
                assert_true(e >= 0 && e < N && !seen[e]);
                seen[e] = 1;
                assert_int_equal(pix_index(bt->images + i * 4), idx[e]);
                assert_int_equal(bt->labels[i], lab[e]);
                assert_true(bt->soft[2 * i] == (float)e && bt->extra[3 * i + 2] == (float)(100 * e + 2));
            }
            n += bt->n;
        }
        assert_int_equal(n, N);
        assert_int_equal(fr_loader_start(l, 1, 0), FR_STATUS_OK);
        assert_int_equal(fr_loader_next(l, &bt), FR_STATUS_OK);
        assert_int_equal(fr_loader_next(l, &bt), FR_STATUS_OK);
        assert_int_equal(fr_loader_next(l, &bt), FR_STATUS_NUMERIC);
        assert_null(bt);
        assert_non_null(strstr(fr_last_error(), "failing on purpose at step 2"));
        fr_loader_free(l);
    }
    fr_dataset_free(a);
    fr_dataset_free(b);
}

static void spin_us(double us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) * 1e-3 < us);
}

/* Not a timed test: prints images/s for a Fashion-MNIST-sized set (60000 x 28x28), batch 64, with a consumer that
 * does nothing, and with one that works 200 us per batch (where prefetch should hide the gather). */
static void test_loader_throughput(void **state)
{
    (void)state;
    struct fr_dataset *ds = make_ds(60000, 10, 28, 28);
    for (int work = 0; work < 2; work++)
        for (int pf = 0; pf < 2; pf++) {
            struct fr_loader_opts o;
            fr_loader_opts_init(&o);
            o.batch = 64, o.seed = 1, o.prefetch = pf;
            struct fr_loader *l;
            assert_int_equal(fr_loader_new(ds, NULL, 0, &o, &l), FR_STATUS_OK);
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int64_t total = 0;
            uint64_t check = 0;
            for (int e = 0; e < (work ? 1 : 3); e++) {
                const struct fr_batch *b;
                fr_loader_start(l, e, 0);
                while (fr_loader_next(l, &b) == FR_STATUS_OK && b) {
                    total += b->n;
                    check += b->images[0];
                    if (work)
                        spin_us(200);
                }
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
            printf("loader (prefetch %s, consumer %s): %lld images of 28x28 in %.3f s = %.0f images/s (batch 64)\n",
                   pf ? "on " : "off", work ? "200 us/batch" : "idle", (long long)total, s, total / s);
            assert_int_equal(total, work ? 60000 : 180000);
            assert_true(check > 0);
            fr_loader_free(l);
        }
    fr_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_balanced),
        cmocka_unit_test(test_loader_epochs),
        cmocka_unit_test(test_loader_sources_and_hook),
        cmocka_unit_test(test_loader_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
