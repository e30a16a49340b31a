/* SPDX-License-Identifier: MIT */
/* Where a segment name lives on disk (shared by writer and reader). */
#ifndef SHM_PATH_H
#define SHM_PATH_H

#include <limits.h>

struct netelect__shm_paths {
    char path[PATH_MAX];    /* the segment */
    char dir[PATH_MAX];     /* its directory (O_TMPFILE is created there) */
    char lock[PATH_MAX];    /* <path>.lock: the writer's OFD lock */
    char readers[PATH_MAX]; /* <path>.readers: the reader registry */
};

/*
 * NULL means "netelect"; a name without '/' lives in /dev/shm; a name with
 * a '/' is a path.
 * @return 0, or -EINVAL (empty, ".", "..", or a trailing '/'), -ENAMETOOLONG.
 */
int netelect__shm_paths(const char *name, struct netelect__shm_paths *p);

#endif /* SHM_PATH_H */
