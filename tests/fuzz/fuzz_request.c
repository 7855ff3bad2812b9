/*
 * libFuzzer harness for the simplified export request: gw_tr_parse on the
 * input, gw_tr_build on what it accepts, and gw_tr_check_hss on the built
 * request, which must always pass (what the gateway sends, HSS accepts).
 * The config is built in code; nothing is read from disk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_conf_project projects[] = {
    {.alias = "demo",
     .project_id = "0123456789abcdef0123456789abcdef",
     .region = "cn-north-4",
     .endpoint = "https://hss.cn-north-4.myhuaweicloud.com",
     .enterprise_project_id = "0"},
    {.alias = "noeps",
     .project_id = "fedcba9876543210fedcba9876543210",
     .region = "ap-southeast-1",
     .endpoint = "https://hss.ap-southeast-1.myhuaweicloud.com/",
     .enterprise_project_id = NULL},
};

static const struct gw_config conf = {
    .projects = projects,
    .nprojects = sizeof(projects) / sizeof(projects[0]),
    .default_export_size = 1000,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_export_req *req = NULL;
	struct gw_upreq *up = NULL;
	struct gw_fault fault;
	const char *q = NULL;

	memset(&fault, 0, sizeof(fault));
	if (gw_tr_parse(&conf, (const char *)data, size, &req, &fault) != GW_OK)
		goto out;
	if (gw_tr_build(req, &up, &fault) != GW_OK)
		abort();
	q = strchr(up->url, '?');
	if (q == NULL ||
	    gw_tr_check_hss(q + 1, up->body, up->bodylen, &fault) != GW_OK)
		abort();
out:
	gw_upreq_free(up);
	gw_tr_req_free(req);
	return 0;
}
