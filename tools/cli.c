/* Shared flag parsing for the subcommands: --flag VALUE / --flag=VALUE, --config INI files, --help. */
#include "cli.h"
#include "dist_cli.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "frugal %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static void print_usage(const char *cmd, const char *usage, const struct cli_opt *opts)
{
    printf("usage: frugal %s %s\n\nflags:\n", cmd, usage ? usage : "[flags]");
    for (const struct cli_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->type == CLI_BOOL ? "" : " ",
                 o->type == CLI_BOOL ? "" : (o->meta ? o->meta : "X"));
        printf("  %-26s %s\n", left, o->help ? o->help : "");
    }
}

static struct cli_opt *find(struct cli_opt *opts, const char *name, size_t len)
{
    for (struct cli_opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    /* accept snake_case spellings of dashed names (config files) */
    for (struct cli_opt *o = opts; o->name; o++) {
        if (strlen(o->name) != len)
            continue;
        size_t i = 0;
        for (; i < len; i++) {
            char a = o->name[i] == '-' ? '_' : o->name[i], b = name[i] == '-' ? '_' : name[i];
            if (a != b)
                break;
        }
        if (i == len)
            return o;
    }
    return NULL;
}

static int set_value(const char *cmd, struct cli_opt *o, const char *v, const char *where)
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
        *(int64_t *)o->dest = x;
        break;
    }
    case CLI_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end)
            return cli_error(cmd, CLI_USAGE, "%s--%s: expected a number, got '%s'", where, o->name, v);
        *(double *)o->dest = x;
        break;
    }
    case CLI_STR_LIST: {
        struct cli_list *l = o->dest;
        const char **items = realloc(l->items, (size_t)(l->n + 1) * sizeof *items);
        if (!items)
            return cli_error(cmd, CLI_FAIL, "out of memory");
        l->items = items;
        l->items[l->n++] = v;
        break;
    }
    }
    o->seen = true;
    return CLI_OK;
}

static char **config_values;
static int n_config_values;

struct ini_state {
    const char *cmd, *path;
    struct cli_opt *opts;
    int rc;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_state *s = user;
    (void)section;
    if (s->rc != CLI_OK)
        return 0;
    struct cli_opt *o = find(s->opts, name, strlen(name));
    if (!o || !strcmp(o->name, "config")) {
        s->rc = cli_error(s->cmd, CLI_USAGE, "%s: unknown key '%s'", s->path, name);
        return 0;
    }
    if (o->seen) /* the command line wins */
        return 1;
    /* string values must outlive the parse: they are kept (reachable) for the life of the process */
    bool keep = o->type == CLI_STR || o->type == CLI_STR_LIST;
    char *v = strdup(value);
    char **kept = keep ? realloc(config_values, (size_t)(n_config_values + 1) * sizeof *kept) : NULL;
    if (!v || (keep && !kept)) {
        free(v);
        s->rc = CLI_FAIL;
        return 0;
    }
    if (keep) {
        config_values = kept;
        config_values[n_config_values++] = v;
    }
    char where[512];
    snprintf(where, sizeof where, "%s: ", s->path);
    s->rc = set_value(s->cmd, o, v, where);
    if (!keep)
        free(v);
    return s->rc == CLI_OK;
}

int cli_parse(const char *cmd, const char *usage, int argc, char **argv, struct cli_opt *opts,
              struct cli_list *positional)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(cmd, usage, opts);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!positional)
                return cli_error(cmd, CLI_USAGE, "unexpected argument '%s' (see --help)", a);
            const char **items = realloc(positional->items, (size_t)(positional->n + 1) * sizeof *items);
            if (!items)
                return CLI_FAIL;
            positional->items = items;
            positional->items[positional->n++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        struct cli_opt *o = find(opts, name, len);
        if (!o)
            return cli_error(cmd, CLI_USAGE, "unknown flag '--%.*s' (see --help)", (int)len, name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->type != CLI_BOOL) {
            if (i + 1 >= argc)
                return cli_error(cmd, CLI_USAGE, "--%s needs a value", o->name);
            v = argv[++i];
        }
        int rc = set_value(cmd, o, v, "");
        if (rc != CLI_OK)
            return rc;
        if (!strcmp(o->name, "config"))
            config = v;
    }
    if (config) {
        FILE *f = fopen(config, "r");
        if (!f)
            return cli_error(cmd, CLI_USAGE, "%s: cannot open config file: %s", config, strerror(errno));
        struct ini_state s = {cmd, config, opts, CLI_OK};
        int line = ini_parse_file(f, on_ini, &s);
        fclose(f);
        if (s.rc != CLI_OK)
            return s.rc;
        if (line > 0)
            return cli_error(cmd, CLI_USAGE, "%s:%d: not a 'key = value' line", config, line);
    }
    return CLI_OK;
}

int cli_open_device(const char *cmd, const char *spec, int threads, struct fr_backend **out)
{
    enum fr_status st;
    if (threads > 0)
        fr_set_threads(threads);
    st = fr_backend_open(spec, out);
    if (st != FR_STATUS_OK)
        return dcli_device(cmd, cli_error(cmd, CLI_USAGE, "%s", fr_last_error()), NULL);
    fprintf(stderr, "frugal %s: device %s\n", cmd, fr_backend_name(*out));
    return dcli_device(cmd, CLI_OK, *out); /* every rank's device opened? (mpirun) */
}
