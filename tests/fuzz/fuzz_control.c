/* SPDX-License-Identifier: MIT */
/* Control requests come from local processes over the Unix socket. */
#include <stdint.h>
#include <string.h>

#include "agent/control_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netelect_ctl_req req;
    char err[256];

    memset(&req, 0, sizeof req);
    err[0] = 0;
    int rc = agent_ctl_parse((const char *)data, size, &req, err, sizeof err);
    if (rc == 0) {
        /* What the agent relies on: a stats page is bounded, and channel
         * members are distinct (the limits count them before adding). */
        if (req.verb == NETELECT_CTL_STATS &&
            (req.limit < 1 || req.limit > NETELECT_CTL_STATS_PAGE))
            __builtin_trap();
        for (size_t i = 1; i < req.n_members && req.n_members <= 64; i++)
            for (size_t j = 0; j < i; j++)
                if (req.members[i] == req.members[j])
                    __builtin_trap();
        (void)agent_ctl_mutates(req.verb);
        (void)agent_ctl_verb_name(req.verb);
        agent_ctl_req_free(&req);
    } else if (!err[0] || !memchr(err, 0, sizeof err)) {
        __builtin_trap(); /* every rejection explains itself */
    }
    return 0;
}
