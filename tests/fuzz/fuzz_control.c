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
    int rc = netelect__ctl_parse((const char *)data, size, &req, err, sizeof err);
    if (rc == 0) {
        (void)netelect__ctl_mutates(req.verb);
        (void)netelect__ctl_verb_name(req.verb);
        netelect__ctl_req_free(&req);
    } else if (!err[0] || !memchr(err, 0, sizeof err)) {
        __builtin_trap(); /* every rejection explains itself */
    }
    return 0;
}
