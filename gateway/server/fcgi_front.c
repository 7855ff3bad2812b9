/*
 * The FastCGI front thread (fcgi_int.h): accepts (never a worker),
 * refuses TCP peers outside listen_allow, watches each connection
 * (epoll, MSG_PEEK) until its FastCGI stream has ended in the one record
 * order a request has (fcgi_record.c), delivers it to a worker
 * (fcgi_queue.c), takes kept connections back between requests, and is
 * the watchdog: connections and workers past their deadline are cut.
 */
/* accept4(2): Linux. */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/sockios.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi_int.h"

/* A kept connection no byte of whose next request has arrived. */
static int
idle(const struct conn *c)
{
	return c->kept && c->walk.fed == 0;
}

/* efd -1: the connection was never added to the epoll set. */
static void
drop_pending(struct server *sv, int efd, size_t i)
{
	if (idle(&sv->pend[i]))
		sv->nidle--;
	if (efd != -1)
		epoll_ctl(efd, EPOLL_CTL_DEL, sv->pend[i].fd, NULL);
	close(sv->pend[i].fd);
	sv->pend[i].fd = -1;
	sv->npend--;
}

/*
 * Arms c's one event (EPOLLONESHOT): the next arrival reports it once,
 * and the registration then stays, disarmed, while a worker holds the
 * connection, so a kept connection costs one epoll_ctl a request, not an
 * add and a delete.  A connection never registered (its first request
 * came whole at accept) is added.  -1 with errno.
 */
static int
arm(int efd, int fd, size_t i)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | EPOLLONESHOT;
	ev.data.u64 = i;
	if (epoll_ctl(efd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	return errno == ENOENT ? epoll_ctl(efd, EPOLL_CTL_ADD, fd, &ev) : -1;
}

static void
hand_over(struct server *sv, int efd, size_t i)
{
	struct idler *w;

	(void)efd; /* its event is disarmed (arm) */
	sv->pend[i].queued_us = gw_mono_us();
	pthread_mutex_lock(&sv->qlock);
	/* Room is certain: the front accepts only while npend + qlen +
	 * nparked is below CONN_MAX. */
	w = fcgi_deliver(sv, &sv->pend[i]);
	pthread_mutex_unlock(&sv->qlock);
	if (w != NULL)
		sem_post(&w->sem);
	sv->pend[i].fd = -1;
	sv->npend--;
}

/*
 * The bytes of c not walked yet, into buf: -1 with errno, 0 for EOF.
 * With SO_PEEK_OFF each peek starts where the last ended; without it
 * (TCP before Linux 6.9) the kernel's count of queued bytes skips the
 * copy until the walk can move on, so a trickle still costs one copy a
 * record, not one per byte.
 */
static ssize_t
peek_new(struct conn *c, unsigned char *buf)
{
	size_t want = PEEK_MAX - c->walk.fed;
	ssize_t n;
	int avail;

	if (c->peek_off)
		return recv(c->fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
	if (ioctl(c->fd, SIOCINQ, &avail) == 0 && avail > 0 &&
	    (size_t)avail < c->walk.fed + gw_fcgi_walk_need(&c->walk) &&
	    (size_t)avail < PEEK_MAX) {
		errno = EAGAIN;
		return -1;
	}
	n = recv(c->fd, buf, PEEK_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)
		return n;
	if ((size_t)n <= c->walk.fed) {
		errno = EAGAIN;
		return -1;
	}
	memmove(buf, buf + c->walk.fed, (size_t)n - c->walk.fed);
	return n - (ssize_t)c->walk.fed;
}

/*
 * New data on a connection being read: walk its records, hand it over
 * once they end (or PEEK_MAX of them are buffered), close it when they
 * break the order.  Returns 1 if it was handed over or dropped, 0 if it
 * waits for more.
 */
static int
peek(struct server *sv, int efd, size_t i, unsigned char *buf)
{
	struct conn *c = &sv->pend[i];
	ssize_t n;
	int rc = 0;

	/* Edge-triggered: read until nothing is left. */
	while (rc == 0 && c->walk.fed < PEEK_MAX) {
		n = peek_new(c, buf);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			drop_pending(sv, efd, i); /* the peer left or failed */
			return 1;
		}
		if (idle(c)) {
			/* A kept connection's next request: its read window
			 * starts with its first byte. */
			sv->nidle--;
			c->deadline_ms = fcgi_mono_ms() + sv->read_ms;
		}
		rc = gw_fcgi_walk(&c->walk, buf, (size_t)n);
	}
	if (rc == -1) {
		fcgi_rejected(sv, &c->walk);
		drop_pending(sv, efd, i);
		return 1;
	}
	c->complete = rc == 1;
	hand_over(sv, efd, i);
	return 1;
}

static int
peer_allowed(const struct server *sv, const struct sockaddr_storage *sa)
{
	struct in6_addr a;
	size_t i;

	if (sa->ss_family == AF_INET) {
		memset(&a, 0, sizeof(a));
		a.s6_addr[10] = a.s6_addr[11] = 0xff;
		memcpy(&a.s6_addr[12],
		       &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6)
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return 0;
	for (i = 0; i < sv->nallow; i++)
		if (memcmp(&a, &sv->allow[i], sizeof(a)) == 0)
			return 1;
	return 0;
}

/*
 * A connection into the front's table, which fcgi_room() (or, for a kept one,
 * the caller) found space for: just accepted, with its request's read
 * window from now; or kept after a request (or passed on by the previous
 * process), idle for up to keepalive_timeout_ms.  ours: kept by this
 * process's workers, whose reads left the peek offset at 0.
 */
static void
adopt(struct server *sv, int efd, int fd, int kept, int ours,
      unsigned char *buf)
{
	struct conn *c;
	size_t i;
	int zero = 0;

	for (i = 0; i < CONN_MAX - 1 && sv->pend[i].fd != -1; i++)
		;
	c = &sv->pend[i];
	c->fd = fd;
	c->deadline_ms = fcgi_mono_ms() + (kept ? sv->idle_ms : sv->read_ms);
	c->complete = c->cut = 0;
	c->kept = kept;
	gw_fcgi_walk_init(&c->walk);
	/*
	 * Peeks start where the last ended (SO_PEEK_OFF), from the stream's
	 * start.  A connection this process served comes back at 0: reads
	 * move the offset back by what they take, and libfcgi took what the
	 * walk peeked, to the request's end (bytes after it would have made
	 * the walk reject the connection).  The listener's kind says whether
	 * the kernel has the option, so only new and inherited connections
	 * need the call.
	 */
	if (ours && sv->peek_ok != -1)
		c->peek_off = sv->peek_ok;
	else {
		c->peek_off = setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero,
		                         sizeof(zero)) == 0;
		sv->peek_ok = c->peek_off;
	}
	sv->npend++;
	if (kept)
		sv->nidle++;
	/* nginx writes the request as soon as it has connected: most
	 * streams are whole by now and skip the epoll set.  A kept one's
	 * next request has rarely begun: the epoll set reports it if it
	 * has (EPOLL_CTL_ADD queues an event for a ready descriptor). */
	if (!kept && peek(sv, -1, i, buf))
		return;
	/* Edge-triggered: one event per arrival, though peek leaves the
	 * bytes in place for libfcgi; one-shot (arm). */
	if (arm(efd, fd, i) == -1)
		drop_pending(sv, efd, i);
}

/*
 * The kept connections the workers handed back, into the table: at most
 * KEPT_MAX idle at once and never past the table's size (room for new
 * connections stays); past that, or while stopping, closed (nginx opens
 * another when it needs one).
 */
static void
take_back(struct server *sv, int efd, unsigned char *buf)
{
	int fds[CONN_MAX];
	size_t i, n;
	size_t queued;
	uint64_t v;
	int fit;

	(void)!read(sv->back_efd, &v, sizeof(v));
	pthread_mutex_lock(&sv->qlock);
	n = sv->nback;
	memcpy(fds, sv->back, n * sizeof(fds[0]));
	sv->nback = 0;
	pthread_mutex_unlock(&sv->qlock);
	/* Only the front adds to these three but for answers the workers
	 * park (from connections they hold, at most one each: QUEUE_MAX
	 * has room for them). */
	pthread_mutex_lock(&sv->qlock);
	queued = sv->qlen + sv->nparked;
	pthread_mutex_unlock(&sv->qlock);
	for (i = 0; i < n; i++) {
		fit = sv->npend + queued < CONN_MAX;
		if (atomic_load(&sv->stopping))
			fcgi_retire(sv, fds[i]);
		else if (fit && sv->nidle < KEPT_MAX)
			adopt(sv, efd, fds[i], 1, 1, buf);
		else {
			/* nginx may send on it next: say why it broke. */
			fcgi_complain(
			    sv,
			    "kept connection closed: the front's table is "
			    "full",
			    "");
			close(fds[i]);
		}
	}
}

static void
accept_some(struct server *sv, int efd, unsigned char *buf)
{
	struct sockaddr_storage sa;
	char addr[INET6_ADDRSTRLEN];
	socklen_t len;
	int fd, one = 1;

	while (fcgi_room(sv)) {
		memset(&sa, 0, sizeof(sa));
		len = sizeof(sa);
		fd = accept4(sv->listen_fd, (struct sockaddr *)&sa, &len,
		             SOCK_CLOEXEC);
		if (fd == -1 && (errno == EMFILE || errno == ENFILE)) {
			/* The listener stays readable: pause rather than spin
			 * until requests in flight free descriptors. */
			fcgi_complain(
			    sv, "accept paused: out of file descriptors", "");
			sv->pause_until_ms = fcgi_mono_ms() + 100;
		}
		if (fd == -1)
			return; /* EAGAIN, or a connection gone before accept */
		if (sv->check_peer && !peer_allowed(sv, &sa)) {
			addr[0] = '\0';
			if (sa.ss_family == AF_INET)
				inet_ntop(
				    AF_INET,
				    &((struct sockaddr_in *)&sa)->sin_addr,
				    addr, sizeof(addr));
			else if (sa.ss_family == AF_INET6)
				inet_ntop(
				    AF_INET6,
				    &((struct sockaddr_in6 *)&sa)->sin6_addr,
				    addr, sizeof(addr));
			fcgi_complain(
			    sv,
			    "connection refused: peer not in listen_allow: ",
			    addr);
			close(fd);
			continue;
		}
		if (sv->check_peer)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			           sizeof(one));
		adopt(sv, efd, fd, 0, 0, buf);
	}
}

/*
 * Queued connections past their deadline are shut down: their peer (nginx)
 * hears at once, and the worker that takes one drops it (stale).
 */
static void
watch_queue(struct server *sv, int64_t now)
{
	struct conn *c;
	size_t i;

	pthread_mutex_lock(&sv->qlock);
	for (i = 0; i < sv->qlen; i++) {
		c = &sv->q[(sv->qhead + i) % QUEUE_MAX];
		if (!c->cut && now >= c->deadline_ms) {
			shutdown(c->fd, SHUT_RDWR);
			c->cut = 1;
		}
	}
	pthread_mutex_unlock(&sv->qlock);
}

/* The watchdog: connections and workers past their deadline are cut. */
static void
watch(struct server *sv, int efd)
{
	int64_t now = fcgi_mono_ms();
	struct slot *sl;
	size_t i;
	int cut;

	watch_queue(sv, now);

	for (i = 0; i < CONN_MAX; i++)
		if (sv->pend[i].fd != -1 && now >= sv->pend[i].deadline_ms) {
			/* A kept connection idle past keepalive_timeout_ms is
			 * no fault of anyone's. */
			if (!idle(&sv->pend[i]))
				fcgi_complain(
				    sv,
				    "connection closed: request not read "
				    "within request_read_timeout_ms",
				    "");
			drop_pending(sv, efd, i);
		}
	for (i = 0; i < sv->nslots; i++) {
		sl = &sv->slots[i];
		cut = 0;
		pthread_mutex_lock(&sl->lock);
		if (sl->fd != -1 && sl->deadline_ms != 0 &&
		    now >= sl->deadline_ms && !sl->fired) {
			/* Every blocked read and write on it returns now. */
			shutdown(sl->fd, SHUT_RDWR);
			sl->fired = cut = 1;
		}
		pthread_mutex_unlock(&sl->lock);
		if (cut)
			fcgi_complain(
			    sv,
			    "connection shut down: a worker's read or "
			    "send deadline passed",
			    "");
	}
}

/* Stopping: kept connections with no request begun are retired. */
static void
retire_idle(struct server *sv, int efd)
{
	size_t i;

	for (i = 0; i < CONN_MAX && sv->nidle > 0; i++)
		if (sv->pend[i].fd != -1 && idle(&sv->pend[i])) {
			fcgi_to_store(sv, sv->pend[i].fd);
			drop_pending(sv, efd, i);
		}
}

/*
 * The front thread: accepts (never a worker), reads each request until
 * its FastCGI stream has ended without taking its bytes (MSG_PEEK), hands
 * it to the workers and shuts down whatever passes its deadline.  A peer
 * that sends one byte and waits holds a table entry until its deadline,
 * never a worker; with the table full, new peers wait in the backlog.
 */
void *
fcgi_front(void *arg)
{
	struct server *sv = arg;
	struct epoll_event evs[16], lev, bev;
	unsigned char *buf = NULL;
	int64_t watched = 0, now;
	int efd = -1, listening = 0, n, k;
	size_t i;

	buf = malloc(PEEK_MAX);
	efd = epoll_create1(EPOLL_CLOEXEC);
	memset(&bev, 0, sizeof(bev));
	bev.events = EPOLLIN;
	bev.data.u64 = EV_BACK;
	if (buf == NULL || efd == -1 ||
	    epoll_ctl(efd, EPOLL_CTL_ADD, sv->back_efd, &bev) == -1) {
		fprintf(stderr, "hssgw: front: %s\n", strerror(errno));
		goto out;
	}
	memset(&lev, 0, sizeof(lev));
	lev.events = EPOLLIN;
	lev.data.u64 = EV_LISTEN;
	/* The previous process's kept connections (socket activation). */
	for (i = 0; i < sv->ninherit; i++)
		adopt(sv, efd, sv->inherit[i], 1, 0, buf);
	sv->ninherit = 0;
	/* Stopping: accept no more (the backlog keeps them for the next
	 * process on an inherited socket), but read what was accepted to
	 * its end or deadline, so a restart drops no request. */
	while (!atomic_load(&sv->stopping) || sv->npend > 0) {
		if (atomic_load(&sv->stopping))
			retire_idle(sv, efd);
		k = !atomic_load(&sv->stopping) && fcgi_room(sv) &&
		    fcgi_mono_ms() >= sv->pause_until_ms;
		/* Full: leave new peers in the kernel's backlog. */
		if (k != listening &&
		    epoll_ctl(efd, k ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
		              sv->listen_fd, &lev) == 0)
			listening = k;
		n = epoll_wait(efd, evs, 16, TICK_MS);
		for (k = 0; k < n; k++) {
			if (evs[k].data.u64 == EV_LISTEN)
				accept_some(sv, efd, buf);
			else if (evs[k].data.u64 == EV_BACK)
				take_back(sv, efd, buf);
			else if (sv->pend[evs[k].data.u64].fd != -1 &&
			         peek(sv, efd, (size_t)evs[k].data.u64, buf) ==
			             0 &&
			         arm(efd, sv->pend[evs[k].data.u64].fd,
			             (size_t)evs[k].data.u64) == -1)
				/* Waits for more: armed again, or dropped. */
				drop_pending(sv, efd, (size_t)evs[k].data.u64);
		}
		now = fcgi_mono_ms();
		if (now - watched >= WATCH_MS) {
			watch(sv, efd);
			watched = now;
		}
	}
	for (i = 0; i < CONN_MAX; i++)
		if (sv->pend[i].fd != -1)
			drop_pending(sv, efd, i);
out:
	/* The workers serve what is queued, then exit; what they hand back
	 * from now on they close. */
	pthread_mutex_lock(&sv->qlock);
	sv->qclosed = 1;
	fcgi_wake_idle(sv);
	for (i = 0; i < sv->nback; i++)
		close(sv->back[i]);
	sv->nback = 0;
	pthread_mutex_unlock(&sv->qlock);
	if (efd != -1)
		close(efd);
	free(buf);
	return NULL;
}
