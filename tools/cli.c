/* Shared flag parsing for the subcommands: --flag VALUE / --flag=VALUE, ranges, aliases, --config INI files. */
#include "cli.h"
#include "dist_cli.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_COMMAND_LINE 1000000 /* struct cli_opt.source of a flag set on the command line */

int cli_exit_code(enum fr_status st)
{
    switch (st) {
    case FR_STATUS_OK: return CLI_OK;
    case FR_STATUS_INTERRUPTED: return CLI_INTERRUPTED;
    case FR_STATUS_INVALID_ARGUMENT:
    case FR_STATUS_SHAPE:
    case FR_STATUS_FORMAT:
    case FR_STATUS_NOT_FOUND:
    case FR_STATUS_UNSUPPORTED: return CLI_USAGE;
    default: return CLI_FAIL; /* I/O, out of memory, device, numeric */
    }
}

int cli_input_code(enum fr_status st) { return st == FR_STATUS_IO ? CLI_USAGE : cli_exit_code(st); }

static void vmsg(const char *cmd, const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "frugal %s: %s", cmd, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, "", fmt, ap);
    va_end(ap);
    return code;
}

void cli_warn(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(cmd, "warning: ", fmt, ap);
    va_end(ap);
}

/* the subcommand names, for [section] headers of config files */
static const char *const command_names[] = {
#define CMD(name, summary) #name,
#include "commands.def"
#undef CMD
};

/* "train" == "train", "pseudo-label" == "pseudo_label" */
static bool same_name(const char *a, const char *b, size_t blen)
{
    if (strlen(a) != blen)
        return false;
    for (size_t i = 0; i < blen; i++) {
        char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
        if (x != y)
            return false;
    }
    return true;
}

static void print_value(const struct cli_opt *o, char *buf, size_t size)
{
    buf[0] = 0;
    switch (o->type) {
    case CLI_INT:
        if (*(int64_t *)o->dest)
            snprintf(buf, size, "%lld", (long long)*(int64_t *)o->dest);
        break;
    case CLI_FLOAT:
        if (*(double *)o->dest != 0 && *(double *)o->dest >= 0) /* negative = "unset" sentinels */
            snprintf(buf, size, "%g", *(double *)o->dest);
        break;
    case CLI_STR:
        if (*(const char **)o->dest)
            snprintf(buf, size, "%s", *(const char **)o->dest);
        break;
    default: break;
    }
}

static void print_usage(const char *cmd, const char *usage, const struct cli_opt *opts)
{
    printf("usage: frugal %s %s\n\nflags:\n", cmd, usage ? usage : "[flags]");
    char aliases[1024] = "";
    for (const struct cli_opt *o = opts; o->name; o++) {
        if (o->type == CLI_ALIAS) {
            size_t l = strlen(aliases);
            snprintf(aliases + l, sizeof aliases - l, "%s--%s (= --%s)", l ? ", " : "", o->name, o->alias);
            continue;
        }
        char left[64], dflt[256];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->type == CLI_BOOL ? "" : " ",
                 o->type == CLI_BOOL ? "" : (o->meta ? o->meta : "X"));
        const char *help = o->help ? o->help : "";
        size_t hl = strlen(help);
        print_value(o, dflt, sizeof dflt);
        /* the default as this command sets it, unless the help text already ends with one "(...)" */
        if (dflt[0] && (hl == 0 || help[hl - 1] != ')'))
            printf("  %-26s %s (default %s)\n", left, help, dflt);
        else
            printf("  %-26s %s\n", left, help);
    }
    printf("  %-26s %s\n", "--config FILE", "INI file of flags (key = value; [command] sections); repeatable;");
    printf("  %-26s %s\n", "", "later files and the command line win");
    printf("  %-26s %s\n", "--help", "this text");
    if (aliases[0])
        printf("\nold spellings, still accepted: %s\n", aliases);
}

/* the option `name` (with `-` and `_` equal), following an alias to its flag; NULL if unknown */
static struct cli_opt *lookup(const char *cmd, struct cli_opt *opts, const char *name, size_t len, bool note)
{
    for (struct cli_opt *o = opts; o->name; o++) {
        if (!same_name(o->name, name, len))
            continue;
        if (o->type != CLI_ALIAS)
            return o;
        if (note && !o->seen) { /* once per run */
            o->seen = true;
            fprintf(stderr, "frugal %s: note: --%s is deprecated, use --%s\n", cmd, o->name, o->alias);
        }
        return lookup(cmd, opts, o->alias, strlen(o->alias), false);
    }
    return NULL;
}

struct cli_opt *cli_find(struct cli_opt *opts, const char *name)
{
    for (struct cli_opt *o = opts; o->name; o++)
        if (o->type != CLI_ALIAS && !strcmp(o->name, name))
            return o;
    return NULL;
}

int cli_refuse(const char *cmd, struct cli_opt *opts, const char *name, const char *why)
{
    struct cli_opt *o = cli_find(opts, name);
    if (o && o->seen)
        return cli_error(cmd, CLI_USAGE, "--%s has no effect in %s: %s", name, cmd, why);
    return CLI_OK;
}

static int range_error(const char *cmd, const struct cli_opt *o, const char *v, const char *where)
{
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%.10g", o->min);
    snprintf(hi, sizeof hi, "%.10g", o->max);
    if (o->type == CLI_INT && o->max >= 1e12)
        return cli_error(cmd, CLI_USAGE, "%s--%s %s: must be at least %s", where, o->name, v, lo);
    if (o->type == CLI_INT)
        return cli_error(cmd, CLI_USAGE, "%s--%s %s: must be between %s and %s", where, o->name, v, lo, hi);
    return cli_error(cmd, CLI_USAGE, "%s--%s %s: must be in %c%s, %s%c", where, o->name, v, o->min_open ? '(' : '[', lo,
                     hi, o->max_open ? ')' : ']');
}

static bool in_range(const struct cli_opt *o, double x)
{
    if (!o->ranged)
        return true;
    return (o->min_open ? x > o->min : x >= o->min) && (o->max_open ? x < o->max : x <= o->max);
}

static int set_value(const char *cmd, struct cli_opt *o, const char *v, const char *where, int source)
{
    char *end;
    switch (o->type) {
    case CLI_BOOL:
        if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
            *(bool *)o->dest = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
            *(bool *)o->dest = false;
        else
            return cli_error(cmd, CLI_USAGE, "%s--%s: expected true or false, got '%s'", where, o->name, v);
        break;
    case CLI_STR: *(const char **)o->dest = v; break;
    case CLI_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            return cli_error(cmd, CLI_USAGE, "%s--%s: expected an integer, got '%s'", where, o->name, v);
        if (!in_range(o, (double)x))
            return range_error(cmd, o, v, where);
        *(int64_t *)o->dest = x;
        break;
    }
    case CLI_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return cli_error(cmd, CLI_USAGE, "%s--%s: expected a finite number, got '%s'", where, o->name, v);
        if (!in_range(o, x))
            return range_error(cmd, o, v, where);
        *(double *)o->dest = x;
        break;
    }
    case CLI_STR_LIST: {
        struct cli_list *l = o->dest;
        if (o->source != source) /* a later config file or the command line replaces the list */
            l->n = 0;
        const char **items = realloc(l->items, (size_t)(l->n + 1) * sizeof *items);
        if (!items)
            return cli_error(cmd, CLI_FAIL, "out of memory");
        l->items = items;
        l->items[l->n++] = v;
        break;
    }
    case CLI_ALIAS: break;
    }
    o->seen = true;
    o->source = source;
    return CLI_OK;
}

/* config values must outlive the parse: they are kept (reachable) for the life of the process */
static char **config_values;
static int n_config_values;

static const char *keep_string(const char *v)
{
    char *s = strdup(v);
    char **kept = s ? realloc(config_values, (size_t)(n_config_values + 1) * sizeof *kept) : NULL;
    if (!kept) {
        free(s);
        return NULL;
    }
    config_values = kept;
    config_values[n_config_values++] = s;
    return s;
}

struct ini_state {
    const char *cmd, *path;
    struct cli_opt *opts;
    int source, rc;
    FILE *f;
    char *line; /* the physical line being read (getline's) */
    size_t cap;
    int lineno, too_long, max; /* the line that does not fit inih's buffer (0: none); the longest that does */
};

/* inih's reader (as fgets): whole lines, so that a comment longer than inih's line buffer (200 bytes in Debian's
 * build) stays a comment instead of going on as a line of its own, and a longer setting ends the file with an error
 * of its own instead of "not a 'key = value' line" */
static char *read_ini_line(char *str, int num, void *user)
{
    struct ini_state *s = user;
    ssize_t n = getline(&s->line, &s->cap, s->f);
    if (n < 0)
        return NULL;
    s->lineno++;
    s->max = num - 2; /* a newline and the terminating zero */
    const char *t = s->line + strspn(s->line, " \t");
    if (n < num)
        memcpy(str, s->line, (size_t)n + 1);
    else if (*t == ';' || *t == '#')
        snprintf(str, (size_t)num, ";\n");
    else {
        s->too_long = s->lineno;
        return NULL;
    }
    return str;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_state *s = user;
    if (s->rc != CLI_OK)
        return 0;
    if (section && section[0]) {
        if (!same_name(s->cmd, section, strlen(section))) {
            bool known = false;
            for (size_t i = 0; i < sizeof command_names / sizeof command_names[0]; i++)
                known |= same_name(command_names[i], section, strlen(section));
            if (!known) {
                s->rc = cli_error(s->cmd, CLI_USAGE, "%s: unknown section [%s] (sections name commands, e.g. [%s])",
                                  s->path, section, s->cmd);
                return 0;
            }
            return 1; /* another command's keys */
        }
    }
    if (!strcmp(name, "config")) {
        s->rc = cli_error(s->cmd, CLI_USAGE, "%s: 'config' cannot be set in a config file", s->path);
        return 0;
    }
    struct cli_opt *o = lookup(s->cmd, s->opts, name, strlen(name), true);
    if (o && o->source == SOURCE_COMMAND_LINE)
        return 1; /* the command line wins: its value stays */
    if (!o) {
        s->rc = cli_error(s->cmd, CLI_USAGE, "%s: unknown key '%s'%s%s%s", s->path, name,
                          section && section[0] ? " in [" : "", section && section[0] ? section : "",
                          section && section[0] ? "]" : " (put keys of other commands under [command])");
        return 0;
    }
    const char *v = keep_string(value);
    if (!v) {
        s->rc = cli_error(s->cmd, CLI_FAIL, "out of memory");
        return 0;
    }
    char where[512];
    snprintf(where, sizeof where, "%s: ", s->path);
    s->rc = set_value(s->cmd, o, v, where, s->source);
    return s->rc == CLI_OK;
}

static int load_config(const char *cmd, const char *path, struct cli_opt *opts, int source)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cli_error(cmd, CLI_USAGE, "%s: cannot open config file: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return cli_error(cmd, CLI_USAGE, "%s: is a directory, not a config file", path);
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_error(cmd, CLI_USAGE, "%s: cannot open config file: %s", path, strerror(errno));
    struct ini_state s = {cmd, path, opts, source, CLI_OK, f, NULL, 0, 0, 0, 0};
    int line = ini_parse_stream(read_ini_line, &s, on_ini, &s);
    fclose(f);
    free(s.line);
    if (s.rc != CLI_OK)
        return s.rc;
    if (s.too_long)
        return cli_error(cmd, CLI_USAGE, "%s:%d: a setting longer than this reader's lines (up to %d characters)", path,
                         s.too_long, s.max);
    if (line > 0)
        return cli_error(cmd, CLI_USAGE, "%s:%d: not a 'key = value' line", path, line);
    return CLI_OK;
}

/* One walk over argv. Pass 0 checks the flags, prints --help and loads the --config files in order;
 * pass 1 sets the values (so the command line wins over every file). */
static int walk(const char *cmd, const char *usage, int argc, char **argv, struct cli_opt *opts,
                struct cli_list *positional, int pass, int *n_configs)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (pass == 0)
                print_usage(cmd, usage, opts);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!positional)
                return cli_error(cmd, CLI_USAGE, "unexpected argument '%s' (see --help)", a);
            if (pass == 1) {
                const char **items = realloc(positional->items, (size_t)(positional->n + 1) * sizeof *items);
                if (!items)
                    return cli_error(cmd, CLI_FAIL, "out of memory");
                positional->items = items;
                positional->items[positional->n++] = a;
            }
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        bool is_config = same_name("config", name, len);
        struct cli_opt *o = is_config ? NULL : lookup(cmd, opts, name, len, pass == 0);
        if (!o && !is_config)
            return cli_error(cmd, CLI_USAGE, "unknown flag '--%.*s' (see --help)", (int)len, name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && (is_config || o->type != CLI_BOOL)) {
            if (i + 1 >= argc)
                return cli_error(cmd, CLI_USAGE, "--%.*s needs a value", (int)len, name);
            v = argv[++i];
            /* `--json --suite x` with a value-taking --json: the next flag is not a value */
            if (v[0] == '-' && v[1] == '-' && v[2] && !isdigit((unsigned char)v[2]) && v[2] != '.')
                return cli_error(cmd, CLI_USAGE, "--%.*s needs a value, got the flag '%s' (write --%.*s=%s for a "
                                                 "value starting with --)",
                                 (int)len, name, v, (int)len, name, v);
        }
        if (is_config) {
            if (pass == 0) {
                int rc = load_config(cmd, v, opts, ++*n_configs);
                if (rc != CLI_OK)
                    return rc;
            }
            continue;
        }
        if (pass == 1 || o->type != CLI_STR_LIST) { /* pass 0 validates scalars early; lists are set once */
            int rc = set_value(cmd, o, v, "", SOURCE_COMMAND_LINE);
            if (rc != CLI_OK)
                return rc;
        }
    }
    return CLI_OK;
}

int cli_parse(const char *cmd, const char *usage, int argc, char **argv, struct cli_opt *opts,
              struct cli_list *positional)
{
    int n_configs = 0;
    /* pass 0 sets scalar flags too (so a bad value fails before any file is read), then the config files
     * overwrite them; pass 1 sets them again: the command line wins */
    int rc = walk(cmd, usage, argc, argv, opts, positional, 0, &n_configs);
    if (rc != CLI_OK)
        return rc;
    return walk(cmd, usage, argc, argv, opts, positional, 1, &n_configs);
}

int cli_check_env(const char *cmd)
{
    const char *t = getenv("FRUGAL_THREADS");
    if (t && *t) {
        char *end;
        errno = 0;
        long long n = strtoll(t, &end, 10);
        if (errno || end == t || *end || n < 0 || n > CLI_MAX_THREADS)
            return cli_error(cmd, CLI_USAGE, "FRUGAL_THREADS=%s: expected a number of threads, 0 (all cores) to %d", t,
                             CLI_MAX_THREADS);
    }
    const char *d = getenv("FRUGAL_DEBUG");
    static const char *const topics[] = {"sched", "cache", "clsync", "fault", "dist", "plan", "all"};
    for (const char *p = d; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        bool known = len == 0;
        for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
            known |= strlen(topics[i]) == len && !strncmp(topics[i], p, len);
        if (!known)
            cli_warn(cmd, "FRUGAL_DEBUG: unknown topic '%.*s' (known: sched, cache, clsync, fault, dist, plan, all)", (int)len, p);
        p = e ? e + 1 : p + len;
    }
    return CLI_OK;
}

int cli_open_device(const char *cmd, const char *spec, int threads, struct fr_backend **out)
{
    if (threads > 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        if (cores > 0 && threads > cores)
            cli_warn(cmd, "--threads %d is more than the %ld online cores: the CPU path gets slower, not faster",
                     threads, cores);
        fr_set_threads(threads);
    }
    enum fr_status st = fr_backend_open(spec, out);
    if (st != FR_STATUS_OK)
        return dcli_device(cmd, cli_error(cmd, CLI_USAGE, "%s", fr_last_error()), NULL);
    fprintf(stderr, "frugal %s: device %s\n", cmd, fr_backend_name(*out));
    return dcli_device(cmd, CLI_OK, *out); /* every rank's device opened? (mpirun) */
}

void cli_print_padded(const char *s, int width)
{
    int cols = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && cols < width) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 1;
        int ok = 1;
        for (int i = 1; i < len; i++)
            ok &= (p[i] & 0xC0) == 0x80;
        if (!ok)
            len = 1;
        fwrite(p, 1, (size_t)len, stdout);
        p += len;
        cols++;
    }
    for (; cols < width; cols++)
        fputc(' ', stdout);
}
