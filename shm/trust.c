/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "shm/trust.h"

static void add(struct netelect__trust *t, uid_t uid)
{
    if (!netelect__trust_has(t, uid) && t->n < NETELECT__TRUST_MAX)
        t->uid[t->n++] = uid;
}

/* The agent user's uid, or (uid_t)-1 if there is no such user.  Looked up
 * on every open, never on the read path: an agent user created after the
 * reader started is honoured from its next attach. */
static uid_t agent_uid(void)
{
    struct passwd pw, *res = NULL;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = sz > 0 && sz < 65536 ? (size_t)sz : 16384;
    char *buf = malloc(len);
    if (!buf)
        return (uid_t)-1;
    uid_t uid = (uid_t)-1;
    if (getpwnam_r(NETELECT_AGENT_USER, &pw, buf, len, &res) == 0 && res)
        uid = res->pw_uid;
    free(buf);
    return uid;
}

void netelect__trust_init(struct netelect__trust *t, bool only_set, uid_t only)
{
    t->n = 0;
    if (only_set) {
        add(t, only);
        return;
    }
    add(t, 0);
    const uid_t a = agent_uid();
    if (a != (uid_t)-1)
        add(t, a);
    add(t, geteuid());
}

bool netelect__trust_has(const struct netelect__trust *t, uid_t uid)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->uid[i] == uid)
            return true;
    return false;
}

int netelect__claim_name(const char *path, const struct netelect__trust *t, uid_t *squatter)
{
    const uid_t me = geteuid();
    /* A squatter may put its file back between our unlink and our next
     * look: a few rounds, then give up rather than loop. */
    for (int round = 0; round < 4; round++) {
        struct stat st;
        if (lstat(path, &st) != 0)
            return errno == ENOENT ? 0 : -errno;
        if (S_ISREG(st.st_mode)) {
            if (st.st_uid == me)
                return 1;
            /* Root takes over what a trusted agent user left (the lock it
             * then takes decides whether that agent still runs). */
            if (netelect__trust_has(t, st.st_uid))
                return me == 0 ? 1 : -EPERM;
        }
        if (squatter)
            *squatter = st.st_uid;
        if (unlink(path) != 0)
            return errno == ENOENT ? 0 : -EPERM;
    }
    return -EPERM;
}
