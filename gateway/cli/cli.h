/*
 * The command line's shared helpers and the subcommands that live outside
 * main.c (policy, audit, audit ship, the translate output).  Used by main.c
 * only.
 */
#ifndef GW_CLI_H
#define GW_CLI_H

#include <stddef.h>

#include "gw.h"

struct gw_config;
struct gw_pol_set;

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
/*
 * The config at path and its policies_dir, as serve loads them; NULL
 * with the reason on stderr (*conf may then be set: free it).
 */
struct gw_pol_set *gw_cli_polset_load(const char *path,
                                      struct gw_config **conf);
/* hssgw policy test ...; exit status (cli_policy_test.c). */
int gw_cli_policy_test(int argc, char *argv[]);
/* hssgw policy replay ...; exit status (cli_policy_replay.c). */
int gw_cli_policy_replay(int argc, char *argv[]);
/* hssgw audit verify|query ...; exit status. */
int gw_cli_audit(int argc, char *argv[]);
/* hssgw audit report ...; exit status. */
int gw_cli_audit_report(int argc, char *argv[]);
/* hssgw audit ship --config FILE: runs until a stop signal; exit status. */
int gw_cli_audit_ship(int argc, char *argv[]);

/* The translate output (cli_translate.c). */
/*
 * Translates a simplified request for `hssgw translate`: on success the
 * upstream request JSON (token redacted) into out and 0; on failure the
 * error JSON into out and 1.  -1 on internal failure.
 */
int gw_cli_translate(const struct gw_config *, const char *body, size_t len,
                     struct gw_buf *out);
/*
 * For `hssgw translate --handle`: the HSS status request of the task a
 * handle names, and with file_id (NULL: left out) its download request,
 * as {"status": ..., "download": ...} into out (secrets redacted), built
 * as the server builds them; 0, 1 with a reason in out when the handle
 * does not open with the config's tasks.handle_key_file, -1 on failure.
 */
int gw_cli_translate_task(const struct gw_config *, const char *handle,
                          const char *file_id, struct gw_buf *out);

#endif
