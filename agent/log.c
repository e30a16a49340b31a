/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "agent/log.h"
/* log.c is also built into unit tests that do not define it */
#if defined(NETELECT_HAVE_SYSTEMD) && NETELECT_HAVE_SYSTEMD
/* CODE_FILE= etc. would all name this file: the fields carry the context */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#endif

static int cur_level = NETELECT_LOG_INFO;
static int journal;

void agent_log_init(int level)
{
    cur_level = level;
    journal = getenv("JOURNAL_STREAM") != NULL;
}

void agent_log_set_level(int level)
{
    cur_level = level;
}

int agent_log_enabled(int level)
{
    return level <= cur_level;
}

static void vlog(int level, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (journal) {
        fprintf(stderr, "<%d>%s\n", level, msg);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ netelectd %s: %s\n",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, agent_log_level_name(level), msg);
    }
    fflush(stderr);
}

void agent_log(int level, const char *fmt, ...)
{
    if (level > cur_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void agent_log_about(int level, uint64_t node, const struct sockaddr *addr,
                         const char *channel, const char *fmt, ...)
{
    if (level > cur_level)
        return;
    va_list ap;
    va_start(ap, fmt);
#if defined(NETELECT_HAVE_SYSTEMD) && NETELECT_HAVE_SYSTEMD
    if (journal) {
        char msg[1024 + 8], prio[16], nid[32], peer[96], ab[80], chan[80 + 8];
        char ident[] = "SYSLOG_IDENTIFIER=netelectd";
        int n = snprintf(msg, sizeof msg, "MESSAGE=");
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
        va_end(ap);
        struct iovec iov[6];
        size_t k = 0;
        iov[k++] = (struct iovec){msg, strlen(msg)};
        snprintf(prio, sizeof prio, "PRIORITY=%d", level);
        iov[k++] = (struct iovec){prio, strlen(prio)};
        if (node) {
            snprintf(nid, sizeof nid, "NODE_ID=0x%llx", (unsigned long long)node);
            iov[k++] = (struct iovec){nid, strlen(nid)};
        }
        if (addr) {
            snprintf(peer, sizeof peer, "PEER=%s", agent_fmt_addr(addr, ab, sizeof ab));
            iov[k++] = (struct iovec){peer, strlen(peer)};
        }
        if (channel) {
            snprintf(chan, sizeof chan, "CHANNEL=%s", channel);
            iov[k++] = (struct iovec){chan, strlen(chan)};
        }
        /* the identifier the stdout stream of the unit gets, so one
         * `journalctl -t netelectd` shows both kinds of lines */
        iov[k++] = (struct iovec){ident, sizeof ident - 1};
        if (sd_journal_sendv(iov, (int)k) >= 0)
            return;
        /* no journal socket after all: the plain line */
        fprintf(stderr, "<%d>%s\n", level, msg + n);
        fflush(stderr);
        return;
    }
#else
    (void)node, (void)addr, (void)channel;
#endif
    vlog(level, fmt, ap);
    va_end(ap);
}

void agent_die(const char *file, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    agent_log(NETELECT_LOG_ERR, "fatal at %s:%d: %s", file, line, msg);
    abort();
}
