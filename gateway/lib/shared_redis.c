/*
 * The hiredis calls every shared-state connection makes (shared_int.h):
 * connect with connect and command timeouts, AUTH, one command from an
 * argv, and reading a password file.  Owns nothing past a call; calls no
 * other file of the module.  Never logs or returns a password.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "gw.h"
#include "shared_int.h"

#define PASSWORD_MAX 512
#define ARGV_MAX     16

redisReply *
shr_command(redisContext *c, int argc, const char **argv)
{
	size_t lens[ARGV_MAX];
	int i;

	if (argc < 1 || argc > ARGV_MAX)
		return NULL;
	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return redisCommandArgv(c, argc, argv, lens);
}

redisContext *
shr_connect(const char *unix_path, const char *host, int port,
            struct timeval tv, const char *user, const char *password,
            char *why, size_t cap)
{
	redisContext *c;
	redisReply *r = NULL;
	const char *argv[3];
	int argc;

	c = unix_path != NULL ? redisConnectUnixWithTimeout(unix_path, tv)
	                      : redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err) {
		snprintf(why, cap, "connect: %s",
		         c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(why, cap, "cannot set the command timeout");
		goto fail;
	}
	if (password != NULL) {
		/* Redis 6+ ACL: AUTH user password; else requirepass. */
		argc = 0;
		argv[argc++] = "AUTH";
		if (user != NULL)
			argv[argc++] = user;
		argv[argc++] = password;
		r = shr_command(c, argc, argv);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			/* Redis's reason (WRONGPASS...) names no secret. */
			snprintf(why, cap, "AUTH: %s",
			         r != NULL ? r->str : c->errstr);
			goto fail;
		}
		freeReplyObject(r);
	}
	return c;
fail:
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

int
shr_secret_read(const char *file, const char *key, char **out, char *err,
                size_t errlen)
{
	char *pw = NULL, rerr[256];
	size_t len = 0;

	if (gw_read_file(file, PASSWORD_MAX, 1, &pw, &len, rerr,
	                 sizeof(rerr)) == -1) {
		snprintf(err, errlen, "shared_state.%s: %s", key, rerr);
		return -1;
	}
	while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
		pw[--len] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "shared_state.%s: empty", key);
		gw_secret_free(pw);
		return -1;
	}
	*out = pw;
	return 0;
}
