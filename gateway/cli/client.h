/*
 * The client a team runs ("hssgw export"): starts an export through a
 * hssgw front, polls the task's status at the pace HSS's limit allows and
 * downloads the file.  Talks HTTPS through the upstream module (the one
 * libcurl user), so it verifies TLS like the gateway does.  Never prints
 * the bearer token.
 */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

/*
 * Runs "hssgw export" with argv[0] == "export".  Returns the exit status:
 * 0 when the file is in place, 1 on failure (the server's error on
 * stderr), 2 on a usage error.
 */
int gw_client_export(int argc, char *argv[]);
/*
 * Runs "hssgw whoami" with argv[0] == "whoami": prints GET /v1/whoami's
 * answer.  0 on a 200, 1 on failure, 2 on a usage error.
 */
int gw_client_whoami(int argc, char *argv[]);

#endif
