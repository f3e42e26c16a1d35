/* A growing text buffer for the library's reports (bench tables, profiles, expanded kernel sources). */
#ifndef FRUGAL_SBUF_H
#define FRUGAL_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct fr_sbuf {
    char *s; /* NUL-terminated once anything was added */
    size_t len, cap;
    bool oom; /* an allocation failed: later additions are dropped, fr_sbuf_finish returns NULL */
};

void fr_sbuf_add(struct fr_sbuf *b, const char *s, size_t n);
void fr_sbuf_printf(struct fr_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, "" when nothing was added) or NULL after an allocation failure (the buffer is freed). */
char *fr_sbuf_finish(struct fr_sbuf *b);

#endif
