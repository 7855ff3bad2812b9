/*
 * What the policy subcommands share (check, explain, test, replay): the
 * config and its policy directory loaded as serve loads them.  Calls
 * nothing in the subcommands' files, so they all depend on it one way.
 */
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "policy.h"

struct gw_pol_set *
gw_cli_polset_load(const char *path, struct gw_config **conf)
{
	struct gw_pol_set *set = NULL;
	char err[1024];

	*conf = gw_conf_load(path, err, sizeof(err));
	if (*conf == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return NULL;
	}
	set = gw_pol_load_dir((*conf)->policies_dir, err, sizeof(err));
	if (set == NULL)
		fprintf(stderr, "hssgw: %s: error: %s\n", (*conf)->policies_dir,
		        err);
	return set;
}
