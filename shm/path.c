/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shm/path.h"

int netelect__shm_paths(const char *name, struct netelect__shm_paths *p)
{
    if (!name)
        name = "netelect";
    const size_t len = strlen(name);
    if (len == 0 || name[len - 1] == '/')
        return -EINVAL;
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -EINVAL;
    int n;
    if (slash) {
        n = snprintf(p->path, sizeof p->path, "%s", name);
        if (n < 0 || (size_t)n >= sizeof p->path)
            return -ENAMETOOLONG;
        size_t dl = (size_t)(slash - name);
        if (dl == 0)
            dl = 1; /* "/netelect" lives in "/" */
        memcpy(p->dir, name, dl);
        p->dir[dl] = 0;
    } else {
        n = snprintf(p->path, sizeof p->path, "/dev/shm/%s", name);
        if (n < 0 || (size_t)n >= sizeof p->path)
            return -ENAMETOOLONG;
        strcpy(p->dir, "/dev/shm");
    }
    /* Room for the suffixes below and for the writer's ".tmp.<pid>.<rand>". */
    if ((size_t)n + 32 >= sizeof p->path)
        return -ENAMETOOLONG;
    memcpy(p->lock, p->path, (size_t)n);
    memcpy(p->lock + n, ".lock", sizeof ".lock");
    memcpy(p->readers, p->path, (size_t)n);
    memcpy(p->readers + n, ".readers", sizeof ".readers");
    return 0;
}
