/* The only library internals the CLI uses (it links the static library, so they need not be exported): the
 * thread pool for `augment --bench`, the CPU feature report of `devices`, and the build configuration. */
#ifndef FRUGAL_TOOLS_INTERNAL_H
#define FRUGAL_TOOLS_INTERNAL_H

#include "frugal_config.h"
#include "src/core/cpu_features.h"
#include "src/core/threadpool.h"

#endif
