/* What the recipes ask of the job: checks that every rank holds the same images and the same model. */
#ifndef FRUGAL_DIST_INTERNAL_H
#define FRUGAL_DIST_INTERNAL_H

#include "frugal/data.h"
#include "frugal/dist.h"
#include "frugal/recipes.h"

/* Fails on every rank when a rank's images idx[0..n) of ds (idx NULL: the first n) differ from rank 0's: their
 * count, size, labels and pixels (in-memory datasets) or paths and file sizes (datasets decoded on demand: their
 * pixels are read only later). `what` names them in the message ("training images"). */
enum fr_status fr_dist_same_images(struct fr_dist *d, const char *what, const struct fr_dataset *ds,
                                   const int64_t *idx, int64_t n);
/* Fails on every rank when a rank's network (architecture, classes, normalisation, every parameter and state
 * tensor) differs from rank 0's. */
enum fr_status fr_dist_same_net(struct fr_dist *d, const char *what, const struct fr_net *net);

#endif
