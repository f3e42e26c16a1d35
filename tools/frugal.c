/* The frugal command-line tool: global flags and dispatch to the subcommands of commands.def. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dist_cli.h"

#define CMD(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef CMD

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
};

static const struct command commands[] = {
#define CMD(name, summary) {#name, cmd_##name, summary},
#include "commands.def"
#undef CMD
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: frugal [--version] [--help] <command> [flags]\n\n"
               "frugal: data-efficient learning (augmentation, transfer learning, distillation,\n"
               "pseudo-labelling, Noisy Student) on any OpenCL device or the CPU.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s", commands[i].name);
        for (char *p = name; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(f, "  %-14s %s\n", name, commands[i].summary);
    }
    fprintf(f, "\nRun 'frugal help <command>' (or 'frugal <command> --help') for the flags of a command.\n"
               "Built-in models (--arch): t (conv 8, 16; 9,098 parameters), c (conv 16, 32 with batch-norm, dropout; 20,538),\n"
               "s (conv 32, 64, fc 128; 421,642), m (ResNet with batch-norm; about 0.7 M), or a model file.\n"
               "Exit codes: 0 done, 1 the run failed, 2 bad flags or input files, 130 interrupted (SIGINT/SIGTERM).\n"
               "Environment: FRUGAL_DEVICE (auto, cpu, cl:P:D), FRUGAL_THREADS, FRUGAL_DATA (dataset directory),\n"
               "FRUGAL_CACHE_DIR (kernel cache, off), FRUGAL_CL_PATH (kernel sources), FRUGAL_DEBUG (sched,cache,clsync,fault,dist,plan,all),\n"
               "FRUGAL_GUARD=1 (guard bytes after every planned tensor).\n");
}

static int run(int argc, char **argv);

/* under mpirun, every rank runs the command as one job (tools/dist_cli.c) */
int main(int argc, char **argv)
{
    int rc = dcli_init();
    return rc ? rc : dcli_finish(run(argc, argv));
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    char help_flag[] = "--help";
    char *help_argv[4] = {argv[0], NULL, help_flag, NULL};
    if (strcmp(cmd, "help") == 0 && argc >= 3) { /* frugal help CMD = frugal CMD --help */
        cmd = help_argv[1] = argv[2];
        argc = 3;
        argv = help_argv;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("frugal %s\n", fr_version());
        return CLI_OK;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", cmd);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) {
            int rc = cli_check_env(cmd);
            return rc != CLI_OK ? rc : commands[i].fn(argc - 1, argv + 1);
        }
    if (cmd[0] == '-')
        fprintf(stderr, "frugal: unknown flag '%s' (try 'frugal --help')\n", cmd);
    else
        fprintf(stderr, "frugal: unknown command '%s' (try 'frugal --help')\n", cmd);
    return CLI_USAGE;
}
