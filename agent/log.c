/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "agent/log.h"

static int cur_level = NETELECT_LOG_INFO;
static int journal;

void netelect__log_init(int level)
{
    cur_level = level;
    journal = getenv("JOURNAL_STREAM") != NULL;
}

void netelect__log_set_level(int level)
{
    cur_level = level;
}

int netelect__log_enabled(int level)
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
                ts.tv_nsec / 1000000, netelect__log_level_name(level), msg);
    }
    fflush(stderr);
}

void netelect__log(int level, const char *fmt, ...)
{
    if (level > cur_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void netelect__die(const char *file, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    netelect__log(NETELECT_LOG_ERR, "fatal at %s:%d: %s", file, line, msg);
    abort();
}
