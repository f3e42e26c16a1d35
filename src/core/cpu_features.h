/* Runtime CPU SIMD detection: the widest vector extension usable here and a features line for `frugal devices`. */
#ifndef FRUGAL_CPU_FEATURES_H
#define FRUGAL_CPU_FEATURES_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "avx512f", "avx2+fma", "sse2", "neon" or "generic": the widest family this CPU (and build) can run. */
const char *fr_cpu_simd_name(void);
/* True when the CPU supports the named family (same names as above). */
bool fr_cpu_has_simd(const char *name);
/* e.g. "x86_64 avx512f avx512bw avx512vl avx2 fma sse4.2 sse2, 2 cores": static storage. */
const char *fr_cpu_features(void);

#ifdef __cplusplus
}
#endif
#endif
