/* Linked into the bundle's binary only (tools/bundle.sh): arc4random for the static libstdc++ of a glibc 2.36
 * build machine, so that the bundle runs on glibc 2.34 (Ubuntu 22.04, RHEL 9) as well. */
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

uint32_t arc4random(void);

uint32_t arc4random(void)
{
    uint32_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
        return v;
    struct timespec ts; /* getrandom unavailable (very old kernel): not secure, std::random_device only */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_nsec * 2654435761u ^ (uint32_t)ts.tv_sec;
}
