/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/evfd.h"
#include "agent/log.h"

void agent_timer_arm(int tfd, uint64_t when_ns)
{
    struct itimerspec its = {0};
    if (when_ns) {
        its.it_value.tv_sec = (time_t)(when_ns / 1000000000u);
        its.it_value.tv_nsec = (long)(when_ns % 1000000000u);
    }
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        DIE("timerfd_settime: %s", strerror(errno));
}

void agent_fd_drain(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

void agent_epoll_add(struct agent *a, int fd, uint32_t events, int tag)
{
    struct epoll_event ev = {.events = events, .data.u64 = EV_TAG(tag, 0)};
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        DIE("epoll_ctl(add %d): %s", tag, strerror(errno));
}

/* The signals the loop takes through its signalfd, and its timers. */
void agent_loop_open(struct agent *a)
{
    a->ep = epoll_create1(EPOLL_CLOEXEC);
    if (a->ep < 0)
        DIE("start-up: %s", strerror(errno));
    /* A shell starting us in the background may have set SIGINT to
     * SIG_IGN, and an ignored signal never reaches a signalfd. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    a->sig_fd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    a->probe_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    a->hb_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    a->pub_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->sig_fd < 0 || a->probe_tfd < 0 || a->hb_tfd < 0 || a->pub_tfd < 0)
        DIE("start-up: %s", strerror(errno));
    agent_epoll_add(a, a->sig_fd, EPOLLIN, EV_SIG);
    agent_epoll_add(a, a->probe_tfd, EPOLLIN, EV_PROBE);
    agent_epoll_add(a, a->hb_tfd, EPOLLIN, EV_HB);
    agent_epoll_add(a, a->pub_tfd, EPOLLIN, EV_PUB);
}
