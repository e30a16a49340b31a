/* SPDX-License-Identifier: MIT */
/* Shared by the shm tests: unique segment names and clean-up. */
#ifndef TESTS_SHM_HELPERS_H
#define TESTS_SHM_HELPERS_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Criterion runs tests in parallel workers, and meson runs binaries in
 * parallel: names carry the pid and a per-process counter. */
static inline void t_name(char *buf, size_t n, const char *tag)
{
    static unsigned counter;
    snprintf(buf, n, "netelect-t-%s-%d-%u", tag, (int)getpid(), counter++);
}

static inline void t_unlink(const char *name)
{
    char p[512];
    static const char *const suffix[] = {"", ".lock", ".readers"};
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(p, sizeof p, "%s%s%s", strchr(name, '/') ? "" : "/dev/shm/", name, suffix[i]);
        unlink(p);
    }
}

static inline void t_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s%s", strchr(name, '/') ? "" : "/dev/shm/", name);
}

/* Appends a suffix (".lock", ".readers") to a path in buf[n], bounded. */
static inline void t_append(char *buf, size_t n, const char *suffix)
{
    const size_t l = strnlen(buf, n);
    if (l < n)
        snprintf(buf + l, n - l, "%s", suffix);
}

#endif /* TESTS_SHM_HELPERS_H */
