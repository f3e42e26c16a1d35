/* Progress bar on a terminal (redrawn at most 10 times a second), periodic plain lines otherwise. */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void progress_init(struct progress *p, const char *cmd, const char *stage)
{
    p->cmd = cmd;
    p->stage = stage;
    p->tty = isatty(2);
    p->quiet = false;
    p->drawn = false;
    p->last = now_s();
    p->interval = 10.0;
}

const char *progress_fmt_time(double s, char *buf, int size)
{
    if (!(s >= 0) || s > 1e7)
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, (size_t)size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, (size_t)size, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

static void prefix(const struct progress *p)
{
    fprintf(stderr, "frugal %s: ", p->cmd);
    if (p->stage)
        fprintf(stderr, "[%s] ", p->stage);
}

void progress_step(void *user, const struct fr_fit_progress *fp)
{
    struct progress *p = user;
    if (p->quiet)
        return;
    double t = now_s();
    bool last = fp->step == fp->steps_per_epoch;
    char eta[32];
    if (p->tty) {
        if (t - p->last < 0.1 && !last)
            return;
        p->last = t;
        const int width = 24;
        int fill = fp->steps_per_epoch ? (int)(width * fp->step / fp->steps_per_epoch) : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[width] = 0;
        fprintf(stderr, "\r");
        prefix(p);
        fprintf(stderr, "epoch %lld/%lld [%s] %lld/%lld  %.0f img/s  loss %.4f  ETA %s \033[K", (long long)fp->epoch + 1,
                (long long)fp->epochs, bar, (long long)fp->step, (long long)fp->steps_per_epoch, fp->images_per_second,
                (double)fp->loss, progress_fmt_time(fp->eta, eta, sizeof eta));
        p->drawn = true;
        fflush(stderr);
    } else {
        if (t - p->last < p->interval)
            return;
        p->last = t;
        prefix(p);
        fprintf(stderr, "epoch %lld/%lld step %lld/%lld  %.0f img/s  loss %.4f  ETA %s\n", (long long)fp->epoch + 1,
                (long long)fp->epochs, (long long)fp->step, (long long)fp->steps_per_epoch, fp->images_per_second,
                (double)fp->loss, progress_fmt_time(fp->eta, eta, sizeof eta));
    }
}

void progress_done(struct progress *p)
{
    if (p->drawn) {
        fprintf(stderr, "\r\033[K");
        p->drawn = false;
    }
}

void progress_epoch(void *user, const struct fr_epoch_stats *e)
{
    struct progress *p = user;
    if (p->quiet)
        return;
    progress_done(p);
    prefix(p);
    fprintf(stderr, "epoch %lld/%lld  train loss %.4f", (long long)e->epoch, (long long)e->epochs, e->train_loss);
    if (!isnan(e->val_accuracy))
        fprintf(stderr, "  val acc %.4f  val loss %.4f", e->val_accuracy, e->val_loss);
    fprintf(stderr, "  lr %.3g  %.1f s  %.0f img/s\n", (double)e->lr, e->seconds, e->images_per_second);
    p->last = now_s();
}
