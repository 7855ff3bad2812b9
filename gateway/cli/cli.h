/*
 * The command line's shared helpers and the subcommands that live outside
 * main.c (policy, audit, audit ship).  Used by main.c only.
 */
#ifndef GW_CLI_H
#define GW_CLI_H

#include <stddef.h>

/* Caps what a subcommand reads from standard input. */
#define STDIN_MAX (1024 * 1024)

/* 1 after printing USAGE to stdout if argv[1] is --help or -h, else 0. */
int gw_cli_help(int argc, char *argv[], const char *usage);
/* The --config FILE of a subcommand that takes nothing else, or NULL. */
const char *gw_cli_config_arg(int argc, char *argv[]);
/* All of standard input, up to STDIN_MAX; caller frees; NULL on error. */
char *gw_cli_read_stdin(size_t *len);
/* hssgw policy check|explain ...; exit status. */
int gw_cli_policy(int argc, char *argv[]);
/* hssgw audit verify|query ...; exit status. */
int gw_cli_audit(int argc, char *argv[]);
/* hssgw audit report ...; exit status. */
int gw_cli_audit_report(int argc, char *argv[]);
/* hssgw audit ship --config FILE: runs until a stop signal; exit status. */
int gw_cli_audit_ship(int argc, char *argv[]);

#endif
