/*
 * What the FastCGI front's threads hand each other (fcgi_int.h): the
 * workers' queue and the stack of idle workers a request is delivered to,
 * kept connections back to the front thread or to systemd's file
 * descriptor store, the rooms deferred answers are parked in, the
 * watchdog slots, and the front's rate-limited complaints.  Calls nothing
 * in fcgi.c or fcgi_front.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi_int.h"
#include "sd.h"

/* The rejections of the walk, as the metric counts them. */
static const enum gw_met_fcgi reject_metric[GW_FCGI_REJ__MAX] = {
    [GW_FCGI_REJ_NONE] = GW_MET_FCGI_ORDER,
    [GW_FCGI_REJ_MALFORMED] = GW_MET_FCGI_MALFORMED,
    [GW_FCGI_REJ_FOREIGN_ID] = GW_MET_FCGI_FOREIGN_ID,
    [GW_FCGI_REJ_ORDER] = GW_MET_FCGI_ORDER,
    [GW_FCGI_REJ_MANAGEMENT] = GW_MET_FCGI_MANAGEMENT,
    [GW_FCGI_REJ_ABORTED] = GW_MET_FCGI_ABORTED,
};

int64_t
fcgi_mono_ms(void)
{
	return gw_mono_us() / 1000;
}

void
fcgi_slot_set(struct slot *sl, int fd, int64_t deadline_ms)
{
	pthread_mutex_lock(&sl->lock);
	sl->fd = fd;
	sl->deadline_ms = deadline_ms;
	sl->fired = 0;
	pthread_mutex_unlock(&sl->lock);
}

void
fcgi_slot_deadline(struct slot *sl, int64_t deadline_ms)
{
	pthread_mutex_lock(&sl->lock);
	sl->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&sl->lock);
}

/*
 * Called with qlock held: c to the worker that went idle last (its
 * caches are the warmest), which the caller wakes with sem_post once the
 * lock is dropped, so it never wakes into a held lock; or, with every
 * worker busy, into the queue (NULL).
 */
struct idler *
fcgi_deliver(struct server *sv, const struct conn *c)
{
	struct idler *w = sv->idle;

	if (w == NULL) {
		sv->q[(sv->qhead + sv->qlen) % QUEUE_MAX] = *c;
		sv->qlen++;
		return NULL;
	}
	sv->idle = w->next_idle;
	w->mail = *c;
	w->mailed = 1;
	return w;
}

/* Called with qlock held: every idle worker wakes to look again. */
void
fcgi_wake_idle(struct server *sv)
{
	struct idler *w;

	while ((w = sv->idle) != NULL) {
		sv->idle = w->next_idle;
		w->mailed = 0;
		sem_post(&w->sem);
	}
}

/* Called with qlock held. */
void
fcgi_park_free(struct server *sv, struct parked *p)
{
	if (sv->npfree < PARK_FREE_MAX && p->out.cap <= 64 * 1024) {
		p->next = sv->pfree;
		sv->pfree = p;
		sv->npfree++;
		return;
	}
	gw_buf_reset(&p->out);
	free(p);
}

/* A served request's answer to the finisher; returns a free room for
 * the worker's next one, if there is one. */
struct parked *
fcgi_park(struct server *sv, struct parked *p)
{
	struct parked *spare;

	pthread_mutex_lock(&sv->qlock);
	p->next = NULL;
	if (sv->park_tail != NULL)
		sv->park_tail->next = p;
	else
		sv->park_head = p;
	sv->park_tail = p;
	sv->nparked++;
	if (sv->finisher_idle) {
		sv->finisher_idle = 0;
		pthread_cond_signal(&sv->pcond);
	}
	spare = sv->pfree;
	if (spare != NULL) {
		sv->pfree = spare->next;
		sv->npfree--;
		spare->next = NULL;
		spare->fd = -1;
		memset(&spare->d, 0, sizeof(spare->d));
	}
	pthread_mutex_unlock(&sv->qlock);
	return spare;
}

/*
 * A kept connection this process will not serve again: with socket
 * activation a copy goes to systemd's file descriptor store first, so the
 * next process serves its next request and nginx never finds it closed
 * (a request nginx sent on a connection hssgw had just closed would be a
 * 502: nginx does not resend a POST).
 */
void
fcgi_to_store(struct server *sv, int fd)
{
	if (sv->fdstore)
		(void)gw_sd_fdstore(fd);
}

void
fcgi_retire(struct server *sv, int fd)
{
	fcgi_to_store(sv, fd);
	close(fd);
}

/*
 * A kept connection back to the front thread, which reads its next
 * request: the worker never waits on an idle peer.  Retired instead once
 * the front has stopped.
 */
void
fcgi_give_back(struct server *sv, int fd)
{
	uint64_t one = 1;
	int queued = 0, wake = 0;

	pthread_mutex_lock(&sv->qlock);
	if (!sv->qclosed && sv->nback < CONN_MAX) {
		/* One wake-up for all handed back until the front takes
		 * them: it reads the eventfd before it takes the list. */
		wake = sv->nback == 0;
		sv->back[sv->nback++] = fd;
		queued = 1;
	}
	pthread_mutex_unlock(&sv->qlock);
	if (!queued) {
		fcgi_retire(sv, fd);
		return;
	}
	/* Cannot fail short of a counter at 2^64 - 1. */
	if (wake)
		(void)!write(sv->back_efd, &one, sizeof(one));
}

/* Logs at most one line a second, so a flood cannot fill the log. */
void
fcgi_complain(struct server *sv, const char *what, const char *detail)
{
	int64_t s = fcgi_mono_ms() / 1000;

	if (s == sv->last_log_s)
		return;
	sv->last_log_s = s;
	fprintf(stderr, "hssgw: FastCGI: %s%s\n", what, detail);
}

/* A walk that broke the one record order: counted and logged. */
void
fcgi_rejected(struct server *sv, const struct gw_fcgi_walk *w)
{
	gw_metrics_fcgi_rejected(sv->metrics, reject_metric[w->reject]);
	fcgi_complain(sv, "connection closed: FastCGI records out of order: ",
	              gw_fcgi_reject_name(w->reject));
}

/* Whether no request waits in the queue for a worker. */
int
fcgi_queue_empty(struct server *sv)
{
	int empty;

	pthread_mutex_lock(&sv->qlock);
	empty = sv->qlen == 0;
	pthread_mutex_unlock(&sv->qlock);
	return empty;
}

/* Whether the front may take one more connection. */
int
fcgi_room(struct server *sv)
{
	int k;

	pthread_mutex_lock(&sv->qlock);
	k = sv->npend + sv->qlen + sv->nparked < CONN_MAX;
	pthread_mutex_unlock(&sv->qlock);
	return k;
}
