/*
 * The token_file provider: an IAM token an operator keeps in a private
 * file (owner, mode checked at load), re-read when the file's inode, size
 * or mtime changes; a changed file that fails the checks leaves the old
 * token in use.  Owns the token (wiped when replaced or freed) behind its
 * own mutex.  Never logs or returns the token but into the request it
 * decorates.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cred_int.h"

/* token_file state: the token and the file identity it was read from. */
struct token_file {
	pthread_mutex_t mu;
	char *path;
	char *token; /* NUL-terminated, validated */
	size_t size; /* bytes allocated, all wiped on free */
	char fp[17];
	struct stat seen; /* last stat we (tried to) read */
};

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int
token_file_load(struct gw_cred *c, const struct gw_conf_cred *cc, char *err,
                size_t errlen)
{
	struct token_file *t = NULL;
	int rc = -1;

	t = calloc(1, sizeof(*t));
	if (t == NULL || pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	c->state = t;
	t->path = strdup(cc->file);
	if (t->path == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		goto out;
	}
	/* stat first: a change between stat and read is seen next time. */
	if (stat(t->path, &t->seen) == -1)
		memset(&t->seen, 0, sizeof(t->seen));
	if (gw_cred_token_read(c->name, t->path, &t->token, &t->size, err,
	                       errlen) == -1)
		goto out;
	gw_fingerprint(t->token, strlen(t->token), t->fp);
	rc = 0;
out:
	return rc;
}

/*
 * Re-reads the file when it changed since the last look.  A new file that
 * fails the checks leaves the old token in use (the operator is mid-edit
 * or made a mistake; the next change is tried again).  Called locked.
 */
static void
token_file_refresh(struct gw_cred *c, struct token_file *t)
{
	struct stat st;
	char err[8];
	char *tok = NULL;
	size_t size = 0;

	if (stat(t->path, &st) == -1 || same_file(&st, &t->seen))
		return;
	t->seen = st;
	if (gw_cred_token_read(c->name, t->path, &tok, &size, err,
	                       sizeof(err)) == -1)
		return;
	if (t->token != NULL) {
		gw_wipe(t->token, t->size);
		free(t->token);
	}
	t->token = tok;
	t->size = size;
	gw_fingerprint(tok, strlen(tok), t->fp);
}

static enum gw_err
token_file_apply(struct gw_cred *c, struct gw_upreq *req,
                 const char *project_id, int64_t now_ms, char fp[17],
                 struct gw_fault *f)
{
	struct token_file *t = c->state;
	enum gw_err rc = GW_OK;

	(void)project_id; /* the operator scoped the token */
	(void)now_ms;     /* a token file does not expire on our clock */
	pthread_mutex_lock(&t->mu);
	token_file_refresh(c, t);
	if (t->token == NULL)
		rc =
		    gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                 "no token loaded for credentials %s", c->name);
	else if (gw_upreq_set_header(req, "X-Auth-Token", t->token, 1) == -1)
		rc = gw_fault_set(f, GW_ERR_INTERNAL, "",
		                  "could not add the credential header");
	else
		memcpy(fp, t->fp, 17);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static void
token_file_free(void *state)
{
	struct token_file *t = state;

	if (t == NULL)
		return;
	if (t->token != NULL) {
		gw_wipe(t->token, t->size);
		free(t->token);
	}
	free(t->path);
	pthread_mutex_destroy(&t->mu);
	gw_wipe(t, sizeof(*t));
	free(t);
}

const struct cred_ops gw_cred_token_file_ops = {
    .load = token_file_load,
    .apply = token_file_apply,
    .free = token_file_free,
};
