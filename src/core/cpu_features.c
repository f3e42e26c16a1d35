/* Runtime CPU SIMD detection (x86 via __builtin_cpu_supports, NEON at compile time) and the features line. */
#include "core/cpu_features.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define FR_X86 1
#endif

bool fr_cpu_has_simd(const char *name)
{
    if (!name)
        return false;
    if (!strcmp(name, "generic"))
        return true;
#ifdef FR_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512f"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(name, "avx2+fma"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(name, "sse2"))
        return __builtin_cpu_supports("sse2");
#endif
#if defined(__ARM_NEON) || defined(__aarch64__)
    if (!strcmp(name, "neon"))
        return true;
#endif
    return false;
}

const char *fr_cpu_simd_name(void)
{
    static const char *const order[] = {"avx512f", "avx2+fma", "sse2", "neon"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (fr_cpu_has_simd(order[i]))
            return order[i];
    return "generic";
}

const char *fr_cpu_features(void)
{
    /* Built on every call (cheap) so no once-guard is needed; the content never changes. */
    static _Thread_local char buf[256];
    size_t len = 0;
    buf[0] = '\0';
#define FR_ADD(s)                                                                                              \
    do {                                                                                                       \
        int w_ = snprintf(buf + len, sizeof buf - len, "%s%s", len ? " " : "", (s));                           \
        if (w_ > 0 && (size_t)w_ < sizeof buf - len)                                                           \
            len += (size_t)w_;                                                                                 \
    } while (0)
#if defined(__x86_64__)
    FR_ADD("x86_64");
#elif defined(__i386__)
    FR_ADD("x86");
#elif defined(__aarch64__)
    FR_ADD("aarch64");
#else
    FR_ADD("cpu");
#endif
#ifdef FR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        FR_ADD("avx512f");
    if (__builtin_cpu_supports("avx512bw"))
        FR_ADD("avx512bw");
    if (__builtin_cpu_supports("avx512vl"))
        FR_ADD("avx512vl");
    if (__builtin_cpu_supports("avx2"))
        FR_ADD("avx2");
    if (__builtin_cpu_supports("fma"))
        FR_ADD("fma");
    if (__builtin_cpu_supports("sse4.2"))
        FR_ADD("sse4.2");
    if (__builtin_cpu_supports("sse2"))
        FR_ADD("sse2");
#endif
#if defined(__ARM_NEON) || defined(__aarch64__)
    FR_ADD("neon");
#endif
#undef FR_ADD
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(buf + len, sizeof buf - len, ", %ld core%s, simd %s", cores, cores == 1 ? "" : "s",
             fr_cpu_simd_name());
    return buf;
}
