/* SPDX-License-Identifier: MIT */
/*
 * Who may publish a view: the uids whose files the reader trusts, and the
 * writer's rule for names that someone else occupies.  The trust model is
 * in shm/README.md ("Trust").
 */
#ifndef SHM_TRUST_H
#define SHM_TRUST_H

#include <stdbool.h>
#include <sys/types.h>

/* At most: root, the compiled-in agent user, our own euid. */
#define NETELECT__TRUST_MAX 3

struct netelect__trust {
    uid_t uid[NETELECT__TRUST_MAX];
    unsigned n;
};

/*
 * The default set: root, the agent user compiled in (meson option
 * agent_user, resolved with getpwnam_r() if such a user exists), and our
 * own euid (a process trusts itself: whoever writes as our uid could as
 * well change our memory).  With `only_set`, just `only`.
 */
void netelect__trust_init(struct netelect__trust *t, bool only_set, uid_t only);
bool netelect__trust_has(const struct netelect__trust *t, uid_t uid);

/*
 * Makes sure `path` is either absent or a regular file the writer may take
 * over (ours, or, for root, a trusted uid's).  Anything else under the name
 * (a file of another uid, a symlink, a FIFO) is a squatter: it is unlinked
 * if we may (root in sticky /dev/shm, or the owner of the directory), and
 * its owner reported in `*squatter` (else left alone).
 * @return 0 absent (now), 1 present and ours, -EPERM a squatter we cannot
 *         remove or a trusted uid's file we must not take, or -errno.
 */
int netelect__claim_name(const char *path, const struct netelect__trust *t, uid_t *squatter);

#endif /* SHM_TRUST_H */
