/* The kernel sources embedded at build time by cl/embed.py (the last resort of the source lookup). */
#ifndef FRUGAL_OPENCL_EMBEDDED_H
#define FRUGAL_OPENCL_EMBEDDED_H

struct fr_cl_embedded {
    const char *name; /* file name without directory, e.g. "elementwise.cl"; NULL ends the table */
    const char *data; /* NUL-terminated */
    int size;
};

extern const struct fr_cl_embedded fr_cl_embedded_files[];

#endif
